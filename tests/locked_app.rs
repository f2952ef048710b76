//! The locked app as Spin writes it, through the binary: service chaining host requirements, and
//! component dependencies packaged as `spin registry push --compose=false` packages them.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use sha2::Digest;
use support::apps::wasm;
use support::{json_stdout, spin_aks};

const HEADER: &str = "spin_manifest_version = 2\n[application]\nname = \"locked\"\nversion = \"1.0.0\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"api\"\n";

fn app_with(dir: &Path, rest: &str) -> PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("api.wasm"), wasm(1)).unwrap();
    std::fs::write(app.join("back.wasm"), wasm(2)).unwrap();
    std::fs::write(app.join("spin.toml"), format!("{HEADER}{rest}")).unwrap();
    app
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Builds (Spin format unless `extra` says otherwise) and returns the report, the manifest and
/// the locked app.
fn build(
    home: &Path,
    app: &Path,
    extra: &[&str],
) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
    let output = spin_aks(home)
        .args(["--output", "json", "build", "--skip-spin-build", "-f"])
        .arg(app)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json_stdout(&output);
    let layout = app.join(".spin-aks/oci");
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(&layout, report["digest"].as_str().unwrap())).unwrap();
    let last = manifest["layers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    // The plain image's one layer is a tarball, not a locked app.
    let locked = serde_json::from_slice(&blob(&layout, last["digest"].as_str().unwrap()))
        .unwrap_or(serde_json::Value::Null);
    (report, manifest, locked)
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap()
}

/// Builds, expecting exit 2; the layout is left as it was.
fn refused(home: &Path, app: &Path, extra: &[&str]) -> String {
    let index = app.join(".spin-aks/oci/index.json");
    let before = std::fs::read(&index).ok();
    let output = spin_aks(home)
        .args(["build", "--skip-spin-build", "-f"])
        .arg(app)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(std::fs::read(&index).ok(), before, "the layout changed");
    stderr
}

const CHAINING: &str = "[component.api]\nsource = \"api.wasm\"\nallowed_outbound_hosts = [\"http://back.spin.internal\", \"https://example.com\"]\n[component.back]\nsource = \"back.wasm\"\n";

#[test]
fn a_service_chaining_app_locks_the_host_requirement() {
    // crates/loader/src/local.rs:119-128 and 221-228@v3.6.3 (same @v4.0.2); serialised by
    // crates/locked-app/src/locked.rs:122-152: version 1, must_understand, on the component.
    let home = tempfile::tempdir().unwrap();
    let app = app_with(home.path(), CHAINING);
    let (_, _, locked) = build(home.path(), &app, &[]);
    assert_eq!(locked["spin_lock_version"], 1);
    assert_eq!(
        locked["must_understand"],
        serde_json::json!(["component_host_requirements"])
    );
    assert_eq!(locked.get("host_requirements"), None);
    let components = locked["components"].as_array().unwrap();
    assert_eq!(
        components[0]["host_requirements"],
        serde_json::json!({"local_service_chaining": "required"})
    );
    assert_eq!(components[1].get("host_requirements"), None);

    // A v0.19 shim runs Spin 3.2, which reads the requirement on the app
    // (crates/loader/src/local.rs:114-127@v3.2.0).
    let (_, _, locked) = build(home.path(), &app, &["--shim-version", "v0.19.0"]);
    assert_eq!(
        locked["must_understand"],
        serde_json::json!(["host_requirements"])
    );
    assert_eq!(
        locked["host_requirements"],
        serde_json::json!({"local_service_chaining": "required"})
    );

    // Spin 2.3 (shim v0.13) has no local service chaining: refused, naming the first shim.
    let stderr = refused(home.path(), &app, &["--shim-version", "v0.13.0"]);
    assert!(
        stderr.contains("component `api` calls other components by *.spin.internal")
            && stderr.contains("needs containerd-shim-spin v0.14.0"),
        "{stderr}"
    );
}

#[test]
fn an_app_without_chaining_keeps_lock_version_zero() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(
        home.path(),
        "[component.api]\nsource = \"api.wasm\"\nallowed_outbound_hosts = [\"*://*:*\", \"http://*.example.spin.internal\"]\n",
    );
    let (_, _, locked) = build(home.path(), &app, &[]);
    assert_eq!(locked["spin_lock_version"], 0);
    assert_eq!(locked.get("must_understand"), None);
    assert_eq!(locked["components"][0].get("host_requirements"), None);
}

/// Serves `body` over HTTP on a loopback port for `requests` requests; returns the URL.
fn serve(body: Vec<u8>, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/dep.wasm", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(&body).unwrap();
        }
    });
    url
}

#[test]
fn path_and_url_dependencies_become_wasm_layers_and_locked_dependencies() {
    let home = tempfile::tempdir().unwrap();
    // A path dependency may lie outside the app directory: Spin joins it to the app root
    // (crates/loader/src/local.rs:858-861@v3.6.3).
    let shared = home.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let local_dep = wasm(10);
    std::fs::write(shared.join("dep.wasm"), &local_dep).unwrap();
    let remote_dep = wasm(11);
    let remote_digest = sha256(&remote_dep);
    let url = serve(remote_dep.clone(), 1);
    let app = app_with(
        home.path(),
        &format!(
            "[component.api]\nsource = \"api.wasm\"\n\
             [component.api.dependencies]\n\
             \"my:dep/remote\" = {{ url = \"{url}\", digest = \"{remote_digest}\", export = \"their:impl/remote\" }}\n\
             \"my:dep/local\" = {{ path = \"../shared/dep.wasm\" }}\n\
             [component.back]\nsource = \"back.wasm\"\ndependencies_inherit_configuration = true\n\
             [component.back.dependencies]\n\"my:dep/local\" = {{ path = \"../shared/dep.wasm\" }}\n"
        ),
    );
    let (report, manifest, locked) = build(home.path(), &app, &[]);

    // Layers (crates/oci/src/client.rs:316-357@v3.6.3): each component's wasm, then its
    // dependencies' wasm in the locked map's order; identical layers once (client.rs:303).
    let layers: Vec<(&str, &str)> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["mediaType"].as_str().unwrap(),
                l["digest"].as_str().unwrap(),
            )
        })
        .collect();
    let wasm_layer = "application/vnd.wasm.content.layer.v1+wasm";
    let local_digest = sha256(&local_dep);
    let expected = [
        sha256(&wasm(1)),
        local_digest.clone(),
        remote_digest.clone(),
        sha256(&wasm(2)),
    ];
    assert_eq!(layers.len(), expected.len() + 1, "{layers:?}");
    for ((media_type, digest), want) in layers.iter().zip(&expected) {
        assert_eq!((*media_type, *digest), (wasm_layer, want.as_str()));
    }
    let layout = app.join(".spin-aks/oci");
    assert_eq!(blob(&layout, &remote_digest), remote_dep);
    assert_eq!(blob(&layout, &local_digest), local_dep);

    // Locked dependencies (crates/locked-app/src/locked.rs:256-287@v3.6.3): by digest (inline
    // too, being at most 128 bytes), `export` null when unset, `inherit` only when inheriting.
    let inline = |bytes: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
    };
    let source = |bytes: &[u8]| serde_json::json!({"content_type": "application/wasm", "inline": inline(bytes), "digest": sha256(bytes)});
    assert_eq!(
        locked["components"][0]["dependencies"],
        serde_json::json!({
            "my:dep/local": {"source": source(&local_dep), "export": null},
            "my:dep/remote": {"source": source(&remote_dep), "export": "their:impl/remote"},
        })
    );
    assert_eq!(
        locked["components"][1]["dependencies"]["my:dep/local"]["inherit"],
        "All"
    );
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("packaged uncomposed")
                && w.as_str().unwrap().contains("--format image")),
        "{warnings:?}"
    );
    // The download is cached by digest: the server (one request) is not asked again.
    build(home.path(), &app, &[]);
}

#[test]
fn the_plain_image_carries_dependencies_and_declares_them_by_path() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(
        home.path(),
        "[component.api]\nsource = \"api.wasm\"\n[component.api.dependencies]\n\"my:dep/x\" = { component = \"back\", export = \"e:f/g\" }\n[component.back]\nsource = \"back.wasm\"\n",
    );
    let (report, manifest, _) = build(home.path(), &app, &["--format", "image"]);
    assert!(
        report["warnings"].as_array().unwrap().is_empty(),
        "{report}"
    );
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let gz = blob(&app.join(".spin-aks/oci"), layer);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz.as_slice()));
    let mut files = std::collections::BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        files.insert(path, bytes);
    }
    // `{ component = "back" }` is back's source (crates/manifest/src/normalize.rs:185-244@v4.0.2).
    assert_eq!(files[".spin-aks/deps/api/0.wasm"], wasm(2));
    let spin_toml: toml::Table = std::str::from_utf8(&files["spin.toml"])
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        spin_toml["component"]["api"]["dependencies"]["my:dep/x"],
        toml::Value::Table(
            r#"path = ".spin-aks/deps/api/0.wasm"
export = "e:f/g""#
                .parse()
                .unwrap()
        )
    );
}

#[test]
fn dependencies_spin_or_the_target_refuses_exit_2_naming_component_and_dependency() {
    let home = tempfile::tempdir().unwrap();
    let digest = format!("sha256:{}", "0".repeat(64));
    let cases: Vec<(String, &[&str], Vec<&str>)> = vec![
        (
            "\"my:dep/x\" = { version = \"1.2.0\", registry = \"example.com\" }".into(),
            &[],
            vec![
                "`component.api.dependencies.\"my:dep/x\"`",
                "component `api`",
                "cannot fetch offline",
                "path = ",
            ],
        ),
        (
            "\"my:dep/x\" = { path = \"missing.wasm\" }".into(),
            &[],
            vec![
                "component `api`, dependency `my:dep/x`",
                "missing.wasm does not exist",
            ],
        ),
        (
            format!(
                "\"my:dep/x\" = {{ url = \"{}\", digest = \"{digest}\" }}",
                serve(wasm(12), 1)
            ),
            &[],
            vec!["component `api`, dependency `my:dep/x`", "fix the `digest`"],
        ),
        (
            "\"my:dep/x\" = { component = \"nothere\" }".into(),
            &[],
            vec![
                "`component.api.dependencies.\"my:dep/x\".component`",
                "no component named `nothere`",
            ],
        ),
        (
            "\"my:dep/x\" = { path = \"back.wasm\", inherit_configuration = [\"ai_models\"] }"
                .into(),
            &["--shim-version", "v0.24.0"],
            vec![
                "dependency `my:dep/x` of component `api`",
                "needs containerd-shim-spin v0.25.0 (Spin 4.0.1)",
            ],
        ),
        (
            // Spin 3 reads only the component-level switch from the plain image's spin.toml.
            "\"my:dep/x\" = { path = \"back.wasm\", inherit_configuration = true }\n\"my:dep/y\" = { path = \"back.wasm\" }".into(),
            &["--format", "image", "--shim-version", "v0.24.0"],
            vec![
                "the dependencies of component `api` inherit differently",
                "needs containerd-shim-spin v0.25.0",
            ],
        ),
        (
            "\"my:dep/x\" = { path = \"back.wasm\" }".into(),
            &["--shim-version", "v0.16.0"],
            vec![
                "component `api` has dependencies",
                "needs containerd-shim-spin v0.17.0",
            ],
        ),
    ];
    for (dependency, extra, expected) in cases {
        let app = app_with(
            home.path(),
            &format!("[component.api]\nsource = \"api.wasm\"\n[component.api.dependencies]\n{dependency}\n"),
        );
        let stderr = refused(home.path(), &app, extra);
        for fragment in expected {
            assert!(
                stderr.contains(fragment),
                "{dependency}: {fragment}: {stderr}"
            );
        }
    }
    // A dependency component with permissions of its own (normalize.rs:249-316@v4.0.2).
    let app = app_with(
        home.path(),
        "[component.api]\nsource = \"api.wasm\"\n[component.api.dependencies]\n\"my:dep/x\" = { component = \"back\" }\n[component.back]\nsource = \"back.wasm\"\nkey_value_stores = [\"default\"]\n",
    );
    let stderr = refused(home.path(), &app, &[]);
    assert!(
        stderr.contains("component `back` cannot be a dependency of `api`")
            && stderr.contains("key_value_stores"),
        "{stderr}"
    );
}
