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

/// The message shown to the user: the outermost context, plus the causes with `--verbose`.
pub fn render(err: &anyhow::Error, verbose: bool) -> String {
    if verbose {
        return format!("{err:#}");
    }
    match err.chain().find(|cause| is_disk_full(*cause)) {
        // Without the cause, "cannot write …" hides that only space is missing.
        Some(cause) => format!("{err}: {cause}"),
        None => err.to_string(),
    }
}

/// True for a full disk or an exceeded quota or file size limit.
fn is_disk_full(cause: &(dyn std::error::Error + 'static)) -> bool {
    cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
        use std::io::ErrorKind::{FileTooLarge, QuotaExceeded, StorageFull};
        matches!(e.kind(), StorageFull | QuotaExceeded | FileTooLarge)
    })
}
