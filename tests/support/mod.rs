//! Shared test support: real registries on loopback ports, a fault-injecting proxy, generated
//! OCI layouts, and helpers to run the spin-aks binary and skopeo against them.
#![allow(dead_code)] // each test binary uses its own subset of the helpers

pub mod fault_proxy;
pub mod layout;
pub mod registry;
pub mod tls;

use std::path::Path;
use std::process::Command;

/// True when `tool` is installed. Missing under `CI=true` is a loud failure, elsewhere a skip.
pub fn require_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("`{tool}` is required under CI=true but is not installed (apt-get install the Debian package)");
        }
        eprintln!("skipping: `{tool}` is not installed");
    }
    found
}

/// A `spin-aks` command isolated from the user's state, Docker config and home.
pub fn spin_aks(home: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_spin-aks"));
    cmd.env("HOME", home)
        .env("SPIN_AKS_STATE_FILE", home.join("state"))
        .env("DOCKER_CONFIG", home.join("docker"))
        .env_remove("SPIN_AKS_LOG")
        .current_dir(home);
    cmd
}

/// The raw manifest bytes skopeo reads for `reference` (`host:port/repo:tag`).
pub fn skopeo_raw_manifest(reference: &str, creds: Option<&str>) -> Vec<u8> {
    let mut cmd = Command::new("skopeo");
    cmd.args([
        "--insecure-policy",
        "inspect",
        "--raw",
        "--tls-verify=false",
    ]);
    if let Some(creds) = creds {
        cmd.args(["--creds", creds]);
    }
    let output = cmd
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo inspect {reference} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// True when skopeo finds `reference` in the registry.
pub fn skopeo_finds(reference: &str) -> bool {
    Command::new("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            "--raw",
            "--tls-verify=false",
        ])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo")
        .status
        .success()
}

/// Pulls `reference` into the OCI layout `dir` with skopeo.
pub fn skopeo_copy_to_layout(reference: &str, dir: &Path) {
    let output = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:pulled", dir.display()))
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo copy {reference} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
