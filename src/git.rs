//! What git says about an app's directory: the commit checked out, its time, the repository's top
//! level, and the remote `origin` as it may be published (no credentials). A leaf: imports nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The git checkout a directory lies in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkout {
    /// The repository's top-level directory, as git prints it (symbolic links resolved).
    pub top_level: PathBuf,
    /// The commit `HEAD` names, 40 (or 64) lowercase hex digits.
    pub commit: String,
    /// The commit time, seconds since 1970.
    pub commit_time: Option<u64>,
    /// The remote `origin` through [`public_source`], when there is one.
    pub remote: Option<String>,
}

/// The checkout holding `dir`, or `None` outside one (or without git, or before a first commit).
pub fn checkout(dir: &Path) -> Option<Checkout> {
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
        (output.status.success() && !text.is_empty()).then_some(text)
    };
    let head = git(&["log", "-1", "--format=%H %ct"])?;
    let (commit, time) = head.split_once(' ').unwrap_or((&head, ""));
    Some(Checkout {
        top_level: PathBuf::from(git(&["rev-parse", "--show-toplevel"])?),
        commit: commit.to_string(),
        commit_time: time.parse().ok(),
        remote: git(&["remote", "get-url", "origin"]).map(|remote| public_source(&remote)),
    })
}

/// A git remote as it may be published: without the user and password a CI checkout often
/// carries (`https://x-access-token:TOKEN@github.com/…`), nor a query or fragment (where a token
/// can ride too). An scp-like remote (`git@host:path`) keeps only `host:path`.
pub fn public_source(remote: &str) -> String {
    match url::Url::parse(remote) {
        Ok(mut url) if url.has_host() => {
            // Neither call can fail on a URL with a host.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        // `[user@]host:path` (git's scp-like form), or a local path.
        _ => match remote.split_once('@') {
            Some((_, rest)) if !remote.contains('/') || remote.find('@') < remote.find('/') => {
                rest.to_string()
            }
            _ => remote.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_source_carries_no_credential() {
        for (remote, published) in [
            (
                "https://x-access-token:hunter2@github.com/org/app.git",
                "https://github.com/org/app.git",
            ),
            (
                "https://hunter2@dev.azure.com/org/p/_git/app",
                "https://dev.azure.com/org/p/_git/app",
            ),
            (
                "https://github.com/org/app.git?token=hunter2#x",
                "https://github.com/org/app.git",
            ),
            (
                "ssh://git:hunter2@example.com:2222/app.git",
                "ssh://example.com:2222/app.git",
            ),
            ("git@github.com:org/app.git", "github.com:org/app.git"),
            (
                "https://github.com/org/app.git",
                "https://github.com/org/app.git",
            ),
            ("/srv/git/app.git", "/srv/git/app.git"),
            ("../app", "../app"),
        ] {
            assert_eq!(public_source(remote), published, "{remote}");
        }
    }

    #[test]
    fn a_checkout_names_its_commit_time_and_public_remote() {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let status = Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(args)
                .env("GIT_COMMITTER_DATE", "1700000000 +0000")
                .env("GIT_AUTHOR_DATE", "1700000000 +0000")
                .status()
                .unwrap();
            assert!(status.success(), "git {args:?}");
        };
        run(&["init", "-q"]);
        // Before the first commit there is nothing to name.
        assert_eq!(checkout(dir.path()), None);
        let remote = "https://x-access-token:hunter2@github.com/org/app.git";
        run(&["remote", "add", "origin", remote]);
        std::fs::create_dir(dir.path().join("app")).unwrap();
        std::fs::write(dir.path().join("app/spin.toml"), "").unwrap();
        run(&["add", "."]);
        run(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qm",
            "x",
        ]);
        let found = checkout(&dir.path().join("app")).unwrap();
        assert_eq!(found.commit.len(), 40, "{found:?}");
        assert!(found.commit.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(found.commit_time, Some(1_700_000_000));
        assert_eq!(
            found.remote.as_deref(),
            Some("https://github.com/org/app.git")
        );
        assert_eq!(
            found.top_level.canonicalize().unwrap(),
            dir.path().canonicalize().unwrap()
        );
    }
}
