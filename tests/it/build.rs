//! `build` and `export` through the real binary, with skopeo and umoci reading what we wrote.

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::support::apps::{copy_app, example_copy, example_dir, generated_app};
use crate::support::{
    assert_blobs_match_names, json_stdout, layout_digest, run_ok, spin_aks, tool,
};

fn build_json(home: &Path, app: &Path, extra: &[&str]) -> serde_json::Value {
    let output = spin_aks(home)
        .args(["--output", "json", "build", "-f"])
        .arg(app)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "build failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    json_stdout(&output)
}

#[test]
fn build_writes_a_spin_artifact_that_skopeo_reads_and_copies() {
    let Some(skopeo) = tool("skopeo") else { return };
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let report = build_json(home.path(), &app, &[]);
    let layout = app.join(".spin-aks/oci");
    assert_eq!(report["format"], "spin");
    assert_eq!(report["tag"], "0.1.0");
    assert_eq!(report["layout"], layout.to_str().unwrap());
    assert_eq!(report["digest"], layout_digest(&layout));
    assert_eq!(
        report["layers"], 6,
        "2 wasm + 3 data layers (robots.txt inlined) + locked app"
    );
    assert_blobs_match_names(&layout);

    let inspect: serde_json::Value = serde_json::from_str(&run_ok(
        Command::new(&skopeo)
            .arg("inspect")
            .arg(format!("oci:{}:0.1.0", layout.display())),
    ))
    .unwrap();
    assert_eq!(inspect["Digest"], report["digest"]);
    assert_eq!(inspect["Architecture"], "wasm");
    assert_eq!(inspect["Os"], "wasip1");

    let copied = home.path().join("copied");
    run_ok(
        Command::new(&skopeo)
            .arg("copy")
            .arg(format!("oci:{}:0.1.0", layout.display()))
            .arg(format!("dir:{}", copied.display())),
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copied.join("manifest.json")).unwrap()).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let hex = &layer["digest"].as_str().unwrap()[7..];
        assert_eq!(
            std::fs::read(copied.join(hex)).unwrap(),
            std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
        );
    }
}

#[test]
fn spin_artifact_inlines_small_files_and_lists_the_rest_by_digest() {
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    build_json(home.path(), &app, &[]);
    let layout = app.join(".spin-aks/oci");
    let manifest = read_blob_json(&layout, &layout_digest(&layout));
    assert_eq!(
        manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "Spin (through oci-client) writes the manifest's mediaType"
    );
    let layers = manifest["layers"].as_array().unwrap();
    let locked_layer = layers.last().unwrap();
    assert_eq!(
        locked_layer["mediaType"],
        "application/vnd.fermyon.spin.application.v1+config"
    );
    let locked = read_blob_json(&layout, locked_layer["digest"].as_str().unwrap());
    let hello = &locked["components"][0];
    assert_eq!(hello["id"], "hello");
    let files: Vec<&str> = hello["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "assets/logo.svg",
            "static/css/site.css",
            "static/index.html",
            "static/robots.txt"
        ],
        "sorted, notes.bak excluded"
    );
    assert_eq!(
        hello["files"][3]["inline"], "VXNlci1hZ2VudDogKgpBbGxvdzogLwo",
        "robots.txt inlined as unpadded base64"
    );
    let robots = std::fs::read(app.join("static/robots.txt")).unwrap();
    assert_eq!(
        hello["files"][3]["digest"],
        format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&robots))
        ),
        "an inlined file keeps its digest, as Spin writes it"
    );
    assert!(
        layers
            .iter()
            .all(|l| l["digest"] != hello["files"][3]["digest"]),
        "an inlined file gets no layer"
    );
    let config = read_blob_json(&layout, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(
        config["config"]["Labels"]["com.fermyon.spin.lockedAppDigest"],
        locked_layer["digest"]
    );
}

fn read_blob_json(layout: &Path, digest: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap())
        .unwrap()
}

#[test]
fn plain_image_unpacks_to_spin_toml_and_every_referenced_file() {
    let Some(umoci) = tool("umoci") else { return };
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let layout = home.path().join("plain");
    let report = build_json(
        home.path(),
        &app,
        &["--format", "image", "--layout", layout.to_str().unwrap()],
    );
    assert_eq!(report["format"], "image");
    assert!(report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("plain image")));
    let rootfs = home.path().join("rootfs");
    run_ok(
        Command::new(umoci)
            .args(["raw", "unpack", "--rootless", "--image"])
            .arg(format!("{}:0.1.0", layout.display()))
            .arg(&rootfs),
    );

    let manifest: toml::Table = std::fs::read_to_string(rootfs.join("spin.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let components = manifest["component"].as_table().unwrap();
    for (id, component) in components {
        let source = component["source"].as_str().unwrap();
        assert_eq!(
            std::fs::read(rootfs.join(source)).unwrap(),
            std::fs::read(app.join(source)).unwrap(),
            "{id} wasm"
        );
        assert!(component.get("exclude_files").is_none());
    }
    let mount = &components["hello"]["files"][0];
    assert_eq!(mount["destination"].as_str(), Some("/"));
    let files_dir = rootfs.join(mount["source"].as_str().unwrap());
    for (guest, source) in [
        ("static/index.html", "static/index.html"),
        ("static/css/site.css", "static/css/site.css"),
        ("assets/logo.svg", "assets/logo.svg"),
        ("static/robots.txt", "static/robots.txt"),
    ] {
        assert_eq!(
            std::fs::read(files_dir.join(guest)).unwrap(),
            std::fs::read(app.join(source)).unwrap(),
            "{guest}"
        );
    }
    assert!(
        !files_dir.join("static/notes.bak").exists(),
        "excluded files stay out of the image"
    );
}

#[test]
fn plain_image_config_diff_id_is_the_uncompressed_layer_digest() {
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    build_json(home.path(), &app, &["--format", "image"]);
    let layout = app.join(".spin-aks/oci");
    let manifest = read_blob_json(&layout, &layout_digest(&layout));
    let config = read_blob_json(&layout, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("wasi"), Some("wasm"))
    );
    let layer = std::fs::read(
        layout
            .join("blobs/sha256")
            .join(&manifest["layers"][0]["digest"].as_str().unwrap()[7..]),
    )
    .unwrap();
    let mut tar = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(layer.as_slice()),
        &mut tar,
    )
    .unwrap();
    use sha2::Digest;
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&tar)))
    );
}

#[test]
fn the_same_app_elsewhere_with_new_mtimes_gives_the_same_digest_in_both_formats() {
    let home = tempfile::tempdir().unwrap();
    let one = home.path().join("one");
    let two = home.path().join("elsewhere/two");
    copy_app(
        &example_dir(),
        &one,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
    );
    copy_app(&example_dir(), &two, SystemTime::now());
    for format in ["spin", "image"] {
        let first = build_json(home.path(), &one, &["--format", format]);
        let second = build_json(home.path(), &two, &["--format", format]);
        assert_eq!(
            first["digest"], second["digest"],
            "{format} format is not reproducible"
        );
    }
}

#[test]
fn source_date_epoch_sets_created_and_stays_reproducible() {
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let run = || {
        let output = spin_aks(home.path())
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["--output", "json", "build", "-f"])
            .arg(&app)
            .output()
            .unwrap();
        json_stdout(&output)
    };
    let (first, second) = (run(), run());
    assert_eq!(first["digest"], second["digest"]);
    let layout = app.join(".spin-aks/oci");
    let manifest = read_blob_json(&layout, first["digest"].as_str().unwrap());
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
}

#[test]
fn generated_app_of_120_files_builds_in_both_formats_with_dedup() {
    let Some(skopeo) = tool("skopeo") else { return };
    let home = tempfile::tempdir().unwrap();
    let app = generated_app(home.path(), 120, 4096);
    let spin = build_json(home.path(), &app, &[]);
    let layout = app.join(".spin-aks/oci");
    let manifest = read_blob_json(&layout, spin["digest"].as_str().unwrap());
    let digests: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    let unique: std::collections::HashSet<_> = digests.iter().collect();
    assert_eq!(unique.len(), digests.len(), "identical layers appear once");
    run_ok(
        Command::new(&skopeo)
            .arg("inspect")
            .arg(format!("oci:{}:1.0.0", layout.display())),
    );
    assert_blobs_match_names(&layout);

    let image = build_json(home.path(), &app, &["--format", "image"]);
    run_ok(
        Command::new(&skopeo)
            .arg("inspect")
            .arg(format!("oci:{}:1.0.0", layout.display())),
    );
    assert_ne!(spin["digest"], image["digest"]);
    let left: std::collections::HashSet<String> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    let spin_blobs = std::iter::once(spin["digest"].as_str().unwrap())
        .chain(digests.iter().copied())
        .chain(manifest["config"]["digest"].as_str());
    for blob in spin_blobs {
        assert!(
            !left.contains(blob),
            "the spin artifact's blob {blob} was removed"
        );
    }
    // The image's 3 blobs, and its SBOM and provenance: 2 documents, 2 manifests, the empty config.
    assert_eq!(left.len(), 8, "{left:?}");
}

#[test]
fn archive_layers_hold_each_components_files_when_requested() {
    let home = tempfile::tempdir().unwrap();
    let app = generated_app(home.path(), 30, 1000);
    let output = spin_aks(home.path())
        .env("SPIN_OCI_ARCHIVE_LAYERS", "1")
        .args(["--output", "json", "build", "-f"])
        .arg(&app)
        .output()
        .unwrap();
    let report = json_stdout(&output);
    let layout = app.join(".spin-aks/oci");
    let manifest = read_blob_json(&layout, report["digest"].as_str().unwrap());
    let types: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    let archive = "application/vnd.wasm.content.bundle.v1.tar+gzip";
    let wasm = "application/vnd.wasm.content.layer.v1+wasm";
    assert_eq!(
        types,
        [
            wasm,
            archive,
            wasm,
            archive,
            "application/vnd.fermyon.spin.application.v1+config"
        ]
    );
    let locked = read_blob_json(&layout, manifest["layers"][4]["digest"].as_str().unwrap());
    let files = locked["components"][0]["files"].as_array().unwrap();
    assert_eq!(files.len(), 30);
    assert!(files.iter().all(|f| f["digest"]
        .as_str()
        .is_some_and(|d| d.starts_with("sha256:"))));
}

#[test]
fn more_than_499_layers_switch_to_archive_layers() {
    let home = tempfile::tempdir().unwrap();
    let app = generated_app(home.path(), 700, 200);
    let report = build_json(home.path(), &app, &[]);
    let layout = app.join(".spin-aks/oci");
    let manifest = read_blob_json(&layout, report["digest"].as_str().unwrap());
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 5);
    assert_blobs_match_names(&layout);
}

#[test]
fn export_writes_an_oci_archive_skopeo_reads_with_the_built_digest() {
    let Some(skopeo) = tool("skopeo") else { return };
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let output = spin_aks(home.path())
        .args(["--output", "json", "export", "-f"])
        .arg(&app)
        .output()
        .unwrap();
    let report = json_stdout(&output);
    let archive = app.join("hello-aks-0.1.0.oci.tar");
    assert_eq!(report["archive"], archive.to_str().unwrap());
    assert_eq!(report["bytes"], std::fs::metadata(&archive).unwrap().len());
    // The archive also carries the image's SBOM and provenance, listed in its index.json as
    // oras lists referrers in a layout, so skopeo is told which image: its tag.
    let inspect: serde_json::Value = serde_json::from_str(&run_ok(
        Command::new(&skopeo)
            .arg("inspect")
            .arg(format!("oci-archive:{}:0.1.0", archive.display())),
    ))
    .unwrap();
    assert_eq!(inspect["Digest"], report["digest"]);

    let again = home.path().join("again.oci.tar");
    spin_aks(home.path())
        .args(["export", "-f"])
        .arg(&app)
        .arg("-o")
        .arg(&again)
        .assert()
        .success();
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        std::fs::read(&again).unwrap(),
        "export is deterministic"
    );
}

#[test]
fn rebuilding_after_a_change_removes_blobs_no_longer_referenced() {
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    build_json(home.path(), &app, &[]);
    let blobs = app.join(".spin-aks/oci/blobs/sha256");
    let before = std::fs::read_dir(&blobs).unwrap().count();
    std::fs::write(
        app.join("static/index.html"),
        "<p>a different page, long enough to get its own layer, not inlined at all.</p>\n"
            .repeat(3),
    )
    .unwrap();
    build_json(home.path(), &app, &[]);
    assert_eq!(
        std::fs::read_dir(&blobs).unwrap().count(),
        before,
        "old page, config and locked app replaced, not accumulated"
    );
    assert_blobs_match_names(&app.join(".spin-aks/oci"));
}

#[test]
fn a_component_importing_spin3_interfaces_warns_for_an_older_shim() {
    let home = tempfile::tempdir().unwrap();
    let app = generated_app(home.path(), 1, 10);
    let wasm = wat::parse_str(
        r#"(module (import "wasi:config/store@0.2.0-draft-2024-09-27" "get" (func)))"#,
    )
    .unwrap();
    std::fs::write(app.join("web.wasm"), wasm).unwrap();
    let old = build_json(home.path(), &app, &["--shim-version", "v0.13.0"]);
    let warnings = old["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("imports wasi:config/store@0.2.0-draft-2024-09-27, which needs containerd-shim-spin v0.17.0 (Spin 3.0.0) or later")),
        "{warnings:?}"
    );
    let current = build_json(home.path(), &app, &["--shim-version", "v0.24.0"]);
    assert!(!current["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("needs containerd-shim-spin")));
}

#[test]
fn version_one_manifests_are_converted_and_built() {
    let home = tempfile::tempdir().unwrap();
    let app = home.path().join("v1");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("app.wasm"), support::apps::wasm(3)).unwrap();
    std::fs::write(
        app.join("spin.toml"),
        r#"spin_manifest_version = "1"
name = "legacy"
version = "2.0.0"
trigger = { type = "http", base = "/" }

[[component]]
id = "legacy"
source = "app.wasm"
allowed_http_hosts = ["example.com"]
[component.trigger]
route = "/..."
[component.config]
message = "hi"
"#,
    )
    .unwrap();
    build_json(home.path(), &app, &[]);
    let layout = app.join(".spin-aks/oci");
    let manifest = read_blob_json(&layout, &layout_digest(&layout));
    let locked = read_blob_json(&layout, manifest["layers"][1]["digest"].as_str().unwrap());
    assert_eq!(locked["triggers"][0]["trigger_config"]["route"], "/...");
    // spin v3.6.3 crates/manifest/src/compat.rs:83: v1 trigger ids are `trigger-<component>`.
    assert_eq!(locked["triggers"][0]["id"], "trigger-legacy");
    assert_eq!(locked["components"][0]["config"]["message"], "hi");
    // compat.rs:44-50 and 102-131: without `allowed_outbound_hosts`, a v1 component keeps the
    // database grants, then its converted `allowed_http_hosts`.
    assert_eq!(
        locked["components"][0]["metadata"]["allowed_outbound_hosts"],
        serde_json::json!([
            "redis://*:*",
            "mysql://*:*",
            "postgres://*:*",
            "http://example.com",
            "https://example.com"
        ])
    );
    assert_eq!(
        locked["metadata"]["trigger"],
        serde_json::json!({"type": "http", "base": "/"})
    );
}

#[test]
fn rebuilding_an_unchanged_app_writes_no_file() {
    use std::os::unix::fs::MetadataExt;
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let first = build_json(home.path(), &app, &[]);
    let layout = app.join(".spin-aks/oci");
    // Every file of the layout by name, with its inode and change time: a rewrite (temp file
    // renamed over it) gives a new inode, an in-place write a new ctime.
    let files = || -> Vec<(String, u64, i64, i64)> {
        let mut seen = Vec::new();
        for dir in [layout.clone(), layout.join("blobs/sha256")] {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let meta = entry.metadata().unwrap();
                if meta.is_file() && entry.file_name() != ".spin-aks.lock" {
                    let name = entry.path().display().to_string();
                    seen.push((name, meta.ino(), meta.ctime(), meta.ctime_nsec()));
                }
            }
        }
        seen.sort();
        seen
    };
    let before = files();
    std::thread::sleep(Duration::from_millis(20));
    let second = build_json(home.path(), &app, &[]);
    assert_eq!(first["digest"], second["digest"]);
    assert_eq!(
        files(),
        before,
        "an unchanged rebuild replaces or touches no file of the layout"
    );
}
