//! `push --from-archive` with hostile tars (tests/fixtures/hostile-archives, also the oci_archive fuzz
//! target's seeds): each is refused as bad input (exit 2) naming the archive and the entry, before
//! any registry is contacted.

use crate::support;

use std::path::{Path, PathBuf};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hostile-archives")
        .join(name)
}

/// Pushes `archive` to a registry address nobody answers on; returns (exit code, stderr).
fn push_archive(home: &Path, archive: &Path) -> (i32, String) {
    let output = support::spin_aks_isolated(home)
        .args([
            "push",
            "127.0.0.1:9/hostile/app:1",
            "--plain-http",
            "--from-archive",
        ])
        .arg(archive)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), stderr)
}

#[test]
fn hostile_archives_exit_2_naming_the_entry_and_write_nothing_outside() {
    let home = tempfile::tempdir().unwrap();
    for (file, expected) in [
        ("dotdot.tar", "holds an unsafe path `../escape`"),
        (
            "dotdot-inner.tar",
            "holds an unsafe path `blobs/./sha256/../../x`",
        ),
        ("absolute.tar", "holds an unsafe path `/tmp/absolute`"),
        ("symlink.tar", "holds `blobs` of unsupported type Symlink"),
        (
            "hardlink.tar",
            "holds `index.json` of unsupported type Link",
        ),
        ("huge.tar", "is not a valid tar archive"),
    ] {
        let (code, stderr) = push_archive(home.path(), &corpus(file));
        assert_eq!(code, 2, "{file}: {stderr}");
        assert!(
            stderr.contains(&format!("{file} {expected}")),
            "{file}: {stderr}"
        );
        assert!(
            !stderr.contains("127.0.0.1:9"),
            "refused before connecting: {stderr}"
        );
    }
    assert!(!home.path().parent().unwrap().join("escape").exists());
    assert!(!Path::new("/tmp/absolute").exists());
}

#[test]
fn an_archive_cut_short_inside_an_entry_exits_2() {
    let home = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(corpus("valid.tar")).unwrap();
    // valid.tar: two directories, then the manifest blob's header and its first bytes only.
    let cut = home.path().join("cut.tar");
    std::fs::write(&cut, &bytes[..3 * 512 + 100]).unwrap();
    let (code, stderr) = push_archive(home.path(), &cut);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("cut.tar is not a valid tar archive"),
        "{stderr}"
    );
}
