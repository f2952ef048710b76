//! The Spin plugin: scripts/release.sh packs the test binary, the archive is installed the way
//! Spin's installer does it and run through a fake `spin`; completions and the man page.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest;

const BIN: &str = env!("CARGO_BIN_EXE_spin-aks");

/// Runs the release script on the already-built test binary; returns the parsed manifest.
fn release(work: &Path, base_url: &str) -> serde_json::Value {
    support::run_ok(
        Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/release.sh"))
            .arg(base_url)
            .args(["--binary", BIN])
            .arg("--out")
            .arg(work.join("dist"))
            .arg("--manifest-dir")
            .arg(work.join("manifests")),
    );
    let text = std::fs::read_to_string(work.join("manifests/aks.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// What `spin plugins install --file` does: pick the package for this OS/arch, fetch its URL,
/// check the sha256, unpack with permissions into `<plugins>/<name>/`.
fn install(manifest: &serde_json::Value, plugins: &Path) -> PathBuf {
    let (os, arch) = ("linux", "amd64");
    assert_eq!(
        std::env::consts::ARCH,
        "x86_64",
        "this test packs the host binary"
    );
    let package = manifest["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["os"] == os && p["arch"] == arch)
        .expect("a linux/amd64 package");
    let url = package["url"].as_str().unwrap();
    let archive = std::fs::read(url.strip_prefix("file://").expect("a file:// URL")).unwrap();
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&archive)),
        package["sha256"].as_str().unwrap(),
        "the manifest's sha256 is the archive's"
    );
    let name = manifest["name"].as_str().unwrap();
    let dir = plugins.join(name);
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive.as_slice()));
    tar.set_preserve_permissions(true);
    tar.unpack(&dir).unwrap();
    dir.join(name)
}

/// A `spin` that runs `spin <plugin> args…` as Spin does (SPIN_VERSION, SPIN_BIN_PATH set) and
/// records `spin build` calls.
fn fake_spin(dir: &Path, plugins: &Path) -> PathBuf {
    let spin = dir.join("spin");
    std::fs::write(
        &spin,
        format!(
            r#"#!/bin/sh
if [ "$1" = build ]; then echo "$@" > "{calls}"; exit 0; fi
plugin=$1; shift
SPIN_VERSION=3.6.3 SPIN_BIN_PATH="$0" exec "{plugins}/$plugin/$plugin" "$@"
"#,
            calls = dir.join("build-calls").display(),
            plugins = plugins.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&spin, std::fs::Permissions::from_mode(0o755)).unwrap();
    spin
}

#[test]
fn the_release_archive_installs_and_runs_as_spin_aks() {
    let work = tempfile::tempdir().unwrap();
    let base = format!("file://{}", work.path().join("dist").display());
    let manifest = release(work.path(), &base);
    assert_eq!(manifest["name"], "aks");
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["license"], "Apache-2.0");
    assert!(manifest["spinCompatibility"]
        .as_str()
        .unwrap()
        .starts_with(">="));
    let file = format!("spin-aks-v{}-linux-amd64.tar.gz", env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["packages"][0]["url"], format!("{base}/{file}"));

    let plugins = work.path().join("plugins");
    let executable = install(&manifest, &plugins);
    let mode = std::fs::metadata(&executable).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755, "the executable bit survives packing");
    let unpacked: Vec<String> = std::fs::read_dir(plugins.join("aks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        unpacked.iter().all(|f| f == "aks" || f == "LICENSE"),
        "{unpacked:?}"
    );

    let spin = fake_spin(work.path(), &plugins);
    let help = support::run_ok(Command::new(&spin).args(["aks", "--help"]));
    assert!(
        help.contains("Usage: spin aks") && help.contains("scaffold"),
        "{help}"
    );
    let version = support::run_ok(Command::new(&spin).args(["aks", "--version"]));
    assert_eq!(
        version.trim(),
        format!("spin-aks {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_plugin_runs_spin_build_through_the_spin_that_started_it() {
    let work = tempfile::tempdir().unwrap();
    let manifest = release(work.path(), "https://example.invalid/releases/v1");
    assert_eq!(
        manifest["packages"][0]["url"].as_str().unwrap(),
        format!(
            "https://example.invalid/releases/v1/spin-aks-v{}-linux-amd64.tar.gz",
            env!("CARGO_PKG_VERSION")
        )
    );
    let local = manifest["packages"][0]["url"].as_str().unwrap().replace(
        "https://example.invalid/releases/v1",
        &format!("file://{}/dist", work.path().display()),
    );
    let mut patched = manifest.clone();
    patched["packages"][0]["url"] = local.into();
    let plugins = work.path().join("plugins");
    install(&patched, &plugins);
    let spin = fake_spin(work.path(), &plugins);

    let app = work.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("spin.toml"),
        "spin_manifest_version = 2\n[application]\nname = \"p\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n[component.web]\nsource = \"web.wasm\"\n[component.web.build]\ncommand = \"true\"\n",
    )
    .unwrap();
    let output = Command::new(&spin)
        .args(["aks", "build", "-f"])
        .arg(&app)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let calls = std::fs::read_to_string(work.path().join("build-calls"))
        .expect("spin build ran through SPIN_BIN_PATH");
    assert!(calls.starts_with("build -f "), "{calls}");
    // The fake build wrote no wasm, so the build itself stops there, naming the component.
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("web.wasm"));
}

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef spin-aks"),
        ("fish", "complete -c spin-aks"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let script = support::run_ok(Command::new(BIN).args(["completions", shell]));
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(
            script.contains("scaffold") && script.contains("shim-version"),
            "{shell}"
        );
    }
    let bash = support::run_ok(Command::new(BIN).args(["completions", "bash"]));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.bash"), bash).unwrap();
    support::run_ok(
        Command::new("bash")
            .arg("-n")
            .arg(dir.path().join("c.bash")),
    );
    let refused = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn the_man_page_comes_from_the_command_definitions() {
    let page = support::run_ok(Command::new(BIN).arg("man"));
    assert!(
        page.starts_with(".ie") || page.contains(".TH spin-aks 1"),
        "{page}"
    );
    assert!(page.contains("scaffold") && !page.contains("completions\\-bash"));
    let dir = tempfile::tempdir().unwrap();
    support::run_ok(Command::new(BIN).arg("man").arg(dir.path()));
    let build = std::fs::read_to_string(dir.path().join("spin-aks-build.1")).unwrap();
    assert!(build.contains("shim\\-version"), "{build}");
}
