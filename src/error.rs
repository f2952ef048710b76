//! Error classification for exit codes: bad input (exit 2) versus operational failure (exit 1).
//! Any error whose chain holds a [`BadInput`] is the user's to fix; everything else is ours or the network's.

use std::fmt;

/// A problem with what the user gave us: a flag, a file, a manifest field. Exit code 2.
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// Builds an `anyhow::Error` that is classified as bad input.
#[macro_export]
macro_rules! bad_input {
    ($($arg:tt)*) => { anyhow::Error::new($crate::error::BadInput(format!($($arg)*))) };
}

/// The process exit code for a failed command.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.chain().any(|cause| cause.is::<BadInput>()) {
        2
    } else {
        1
    }
}

/// The message shown to the user: the outermost context, plus the causes with `--verbose`, and
/// without it the one cause the user must act on (a full disk, a permission, a read-only place).
pub fn render(err: &anyhow::Error, verbose: bool) -> String {
    if verbose {
        return format!("{err:#}");
    }
    match err.chain().skip(1).find(|cause| is_actionable(*cause)) {
        // Without the cause, "cannot write …" hides that only space or a permission is missing.
        Some(cause) => format!("{err}: {cause}"),
        None => err.to_string(),
    }
}

/// True for a full disk, an exceeded quota or file size limit, a refused permission or a
/// read-only file system: causes only the user can remove.
fn is_actionable(cause: &(dyn std::error::Error + 'static)) -> bool {
    cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
        use std::io::ErrorKind::{
            FileTooLarge, PermissionDenied, QuotaExceeded, ReadOnlyFilesystem, StorageFull,
        };
        matches!(
            e.kind(),
            StorageFull | QuotaExceeded | FileTooLarge | PermissionDenied | ReadOnlyFilesystem
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn a_cause_the_user_must_act_on_is_shown_without_verbose() {
        let wrapped = |kind| {
            anyhow::Error::new(Error::new(kind, "the cause"))
                .context("cannot create a temporary blob in /x")
        };
        for kind in [
            ErrorKind::PermissionDenied,
            ErrorKind::ReadOnlyFilesystem,
            ErrorKind::StorageFull,
        ] {
            assert_eq!(
                render(&wrapped(kind), false),
                "cannot create a temporary blob in /x: the cause",
                "{kind:?}"
            );
        }
        assert_eq!(
            render(&wrapped(ErrorKind::ConnectionReset), false),
            "cannot create a temporary blob in /x"
        );
        assert_eq!(
            render(&wrapped(ErrorKind::ConnectionReset), true),
            "cannot create a temporary blob in /x: the cause"
        );
        let bare = anyhow::Error::new(Error::new(ErrorKind::PermissionDenied, "denied"));
        assert_eq!(render(&bare, false), "denied", "not repeated");
    }
}
