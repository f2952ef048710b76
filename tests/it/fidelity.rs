//! Artifact details as Spin writes them (small files inline with digest, in archive mode too),
//! and the parallel-gzip plain image: one digest whatever the thread count, read by umoci/skopeo.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use crate::support::apps::{bytes, generated_app};
use crate::support::{json_stdout, run_ok, spin_aks, tool};
use sha2::Digest;

fn build(home: &Path, app: &Path, env: &[(&str, &str)], extra: &[&str]) -> serde_json::Value {
    let mut cmd = spin_aks(home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd
        .args(["--output", "json", "build", "-f"])
        .arg(app)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    json_stdout(&output)
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

#[test]
fn archive_mode_inlines_small_files_with_their_digest_and_archives_the_rest() {
    let home = tempfile::tempdir().unwrap();
    let app = generated_app(home.path(), 20, 1000);
    let report = build(home.path(), &app, &[("SPIN_OCI_ARCHIVE_LAYERS", "1")], &[]);
    let layout = app.join(".spin-aks/oci");
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(&layout, report["digest"].as_str().unwrap())).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    let locked: serde_json::Value = serde_json::from_slice(&blob(
        &layout,
        layers.last().unwrap()["digest"].as_str().unwrap(),
    ))
    .unwrap();
    let files = locked["components"][0]["files"].as_array().unwrap();
    let small = files
        .iter()
        .find(|f| f["path"] == "static/file-0000.dat")
        .unwrap();
    let small_bytes = bytes(7, 64);
    assert_eq!(small["digest"], sha256(&small_bytes));
    assert!(small["inline"].is_string(), "{small}");

    let archive = blob(&layout, layers[1]["digest"].as_str().unwrap());
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive.as_slice()));
    let mut names = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        let listed = files.iter().find(|f| f["path"] == name.as_str()).unwrap();
        assert_eq!(listed["digest"], sha256(&content), "{name}");
        names.push(name);
    }
    assert!(
        !names.contains(&"static/file-0000.dat".to_string()),
        "inlined files stay out of the archive"
    );
    assert_eq!(
        names.len(),
        files.iter().filter(|f| f.get("inline").is_none()).count()
    );
}

#[test]
fn plain_image_digest_is_the_same_on_one_and_many_threads_and_umoci_skopeo_read_it() {
    let home = tempfile::tempdir().unwrap();
    // 40 files of 100 KB: several gzip blocks.
    let app = generated_app(home.path(), 40, 100_000);
    let digests: Vec<String> = ["1", "3", "8"]
        .iter()
        .map(|threads| {
            let layout = home.path().join(format!("plain-{threads}"));
            let report = build(
                home.path(),
                &app,
                &[("SPIN_AKS_GZIP_THREADS", threads)],
                &["--format", "image", "--layout", layout.to_str().unwrap()],
            );
            report["digest"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
    assert_eq!(digests[0], digests[2]);

    let layout = home.path().join("plain-3");
    if let Some(umoci) = tool("umoci") {
        let rootfs = home.path().join("rootfs");
        run_ok(
            Command::new(umoci)
                .args(["raw", "unpack", "--rootless", "--image"])
                .arg(format!("{}:1.0.0", layout.display()))
                .arg(&rootfs),
        );
        assert_eq!(
            std::fs::read(rootfs.join(".spin-aks/files/web/static/nested/file-0001.dat")).unwrap(),
            std::fs::read(app.join("static/nested/file-0001.dat")).unwrap()
        );
    }
    if let Some(skopeo) = tool("skopeo") {
        let copied = home.path().join("copied");
        run_ok(
            Command::new(skopeo)
                .args(["copy", "--quiet"])
                .arg(format!("oci:{}:1.0.0", layout.display()))
                .arg(format!("dir:{}", copied.display())),
        );
        assert!(copied.join("manifest.json").is_file());
    }
}
