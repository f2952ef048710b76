//! Keeps the cargo-fuzz targets (fuzz/) building and running: each replays its kept corpus and
//! fuzzes a few seconds more. Needs cargo-fuzz (scripts/install-test-tools.sh installs it) and a
//! nightly toolchain, or stable with RUSTC_BOOTSTRAP=1 where no nightly is installed.

use crate::support;

use std::path::Path;
use std::process::Command;

const TARGETS: &[&str] = &[
    "spin_toml",
    "spin_toml_v1",
    "oci_layout",
    "oci_archive",
    "docker_config",
    "kubeconfig",
    "flux_artifact",
    "component_dependencies",
    "aks_reference",
    "pkcs12",
];

/// `cargo +nightly fuzz`, or `cargo fuzz` on stable with RUSTC_BOOTSTRAP=1 (for `-Z` flags).
fn cargo_fuzz() -> Command {
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut cmd = Command::new("cargo");
    if nightly {
        cmd.arg("+nightly");
    } else {
        cmd.env("RUSTC_BOOTSTRAP", "1");
    }
    cmd.arg("fuzz")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // The outer `cargo test`'s settings must not leak into the fuzz build.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS");
    cmd
}

/// Outside the checkout, so a fresh clone (CI) reuses the instrumented dependencies.
fn fuzz_target_dir() -> std::path::PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("spin-aks").join("fuzz-target")
}

#[test]
fn every_fuzz_target_builds_replays_its_corpus_and_runs_a_few_seconds_without_a_crash() {
    if support::tool("cargo-fuzz").is_none() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for target in TARGETS {
        let corpus = root.join("fuzz/corpus").join(target);
        assert!(corpus.is_dir(), "no kept corpus for {target} at {corpus:?}");
        // A scratch corpus copy: new inputs found here are not written into the repository.
        let scratch = tempfile::tempdir().unwrap();
        let output = cargo_fuzz()
            .args(["run", "--sanitizer", "none", "--target-dir"])
            .arg(fuzz_target_dir())
            .arg(target)
            .arg(scratch.path())
            .arg(&corpus)
            .args(["--", "-max_total_time=3", "-max_len=16384"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "fuzz target {target} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
