//! `spin build` runs only when a component's wasm is missing or older than its watched inputs,
//! through a fake `spin` on PATH (or SPIN_BIN_PATH) that records how it was called.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::support::{json_stdout, spin_aks};

const MANIFEST: &str = r#"spin_manifest_version = 2
[application]
name = "built"
version = "1.0.0"
[[trigger.http]]
route = "/..."
component = "api"
[component.api]
source = "target/api.wasm"
[component.api.build]
command = "make"
watch = ["src/**/*.rs"]
"#;

struct Fixture {
    home: tempfile::TempDir,
    app: PathBuf,
    bin: PathBuf,
}

impl Fixture {
    /// An app whose wasm is built by a fake `spin` that writes a real module and logs its args.
    fn new(exit_code: i32) -> Self {
        let home = tempfile::tempdir().unwrap();
        let app = home.path().join("app");
        std::fs::create_dir_all(app.join("src")).unwrap();
        std::fs::write(app.join("src/lib.rs"), "// source").unwrap();
        std::fs::write(app.join("spin.toml"), MANIFEST).unwrap();
        let fixture = home.path().join("fixture.wasm");
        std::fs::write(&fixture, support::apps::wasm(11)).unwrap();
        let bin = home.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let script = format!(
            "#!/bin/sh\necho \"$@\" >> '{log}'\necho 'compiling api (fake spin)'\nmkdir -p '{app}/target'\ncp '{fixture}' '{app}/target/api.wasm'\nexit {exit_code}\n",
            log = home.path().join("spin.log").display(),
            app = app.display(),
            fixture = fixture.display(),
        );
        let spin = bin.join("spin");
        std::fs::write(&spin, script).unwrap();
        std::fs::set_permissions(&spin, std::fs::Permissions::from_mode(0o755)).unwrap();
        Fixture { home, app, bin }
    }

    fn build(&self, extra: &[&str]) -> std::process::Output {
        spin_aks(self.home.path())
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()))
            .args(["--output", "json", "build", "-f"])
            .arg(&self.app)
            .args(extra)
            .output()
            .unwrap()
    }

    fn spin_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.home.path().join("spin.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn set_mtime(path: &Path, time: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

#[test]
fn a_missing_wasm_runs_spin_build_with_the_manifest_and_keeps_stdout_clean() {
    let fixture = Fixture::new(0);
    let output = fixture.build(&[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest = fixture.app.join("spin.toml").canonicalize().unwrap();
    assert_eq!(
        fixture.spin_calls(),
        [format!("build -f {}", manifest.display())]
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("compiling api (fake spin)")
            && stderr.contains("target/api.wasm is missing"),
        "{stderr}"
    );
    json_stdout(&output);
}

#[test]
fn an_up_to_date_wasm_does_not_run_spin_build() {
    let fixture = Fixture::new(0);
    assert!(fixture.build(&[]).status.success());
    set_mtime(
        &fixture.app.join("src/lib.rs"),
        SystemTime::now() - Duration::from_secs(3600),
    );
    assert!(fixture.build(&[]).status.success());
    assert_eq!(fixture.spin_calls().len(), 1);
}

#[test]
fn a_watched_input_newer_than_the_wasm_runs_spin_build() {
    let fixture = Fixture::new(0);
    assert!(fixture.build(&[]).status.success());
    set_mtime(
        &fixture.app.join("target/api.wasm"),
        SystemTime::now() - Duration::from_secs(3600),
    );
    let output = fixture.build(&[]);
    assert!(output.status.success());
    assert_eq!(fixture.spin_calls().len(), 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("is older than src/lib.rs"));
}

#[test]
fn skip_spin_build_never_runs_it() {
    let fixture = Fixture::new(0);
    let output = fixture.build(&["--skip-spin-build"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(fixture.spin_calls().is_empty());
    assert!(String::from_utf8_lossy(&output.stderr)
        .contains("target/api.wasm does not exist; run `spin build`"));
}

#[test]
fn spin_bin_path_is_preferred_over_path() {
    let fixture = Fixture::new(0);
    let output = spin_aks(fixture.home.path())
        .env("PATH", "/usr/bin:/bin")
        .env("SPIN_BIN_PATH", fixture.bin.join("spin"))
        .args(["build", "-f"])
        .arg(&fixture.app)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(fixture.spin_calls().len(), 1);
}

#[test]
fn without_spin_installed_the_error_names_the_missing_file() {
    let fixture = Fixture::new(0);
    let output = spin_aks(fixture.home.path())
        .env("PATH", "/nonexistent")
        .args(["build", "-f"])
        .arg(&fixture.app)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("component `api`: target/api.wasm is missing")
            && stderr.contains("run `spin build`"),
        "{stderr}"
    );
}

#[test]
fn a_failing_spin_build_is_an_operational_error() {
    let fixture = Fixture::new(3);
    let output = fixture.build(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("`spin build` failed"));
    assert!(!fixture.app.join(".spin-aks").exists());
}
