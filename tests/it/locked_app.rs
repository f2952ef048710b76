//! The locked app as Spin writes it, through the binary: service chaining host requirements, and
//! component dependencies composed into their component as `spin registry push` composes them.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::support::apps::{
    greeted, greeted_module, greeter, greeter_module, wasm, with_custom_section,
};
use crate::support::{json_stdout, serve_bytes, spin_aks};
use sha2::Digest;

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

/// The top-level import and export names of a component.
fn imports_and_exports(wasm: &[u8]) -> (Vec<String>, Vec<String>) {
    let (mut imports, mut exports, mut depth) = (Vec::new(), Vec::new(), 0);
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.unwrap() {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth -= 1,
            wasmparser::Payload::ComponentImportSection(reader) if depth == 1 => {
                imports.extend(reader.into_iter().map(|i| i.unwrap().name.name.to_string()))
            }
            wasmparser::Payload::ComponentExportSection(reader) if depth == 1 => {
                exports.extend(reader.into_iter().map(|e| e.unwrap().name.name.to_string()))
            }
            _ => {}
        }
    }
    (imports, exports)
}

/// An app whose component `api` (importing the greeter) has `dependencies`; `greet.wasm`,
/// `greet-u64.wasm`, `other.wasm` and `env.wasm` lie outside the app directory.
fn composed_app(home: &Path, dependencies: &str) -> PathBuf {
    let app = app_with(
        home,
        &format!("[component.api]\nsource = \"api.wasm\"\n[component.api.dependencies]\n{dependencies}\n"),
    );
    std::fs::write(app.join("api.wasm"), greeted()).unwrap();
    let libs = home.join("libs");
    std::fs::create_dir_all(&libs).unwrap();
    for (file, wasm) in [
        ("greet.wasm", greeter("test:greet/greeter", "u32", None)),
        ("hello.wasm", greeter("test:greet/hello", "u32", None)),
        ("greet-u64.wasm", greeter("test:greet/greeter", "u64", None)),
        (
            "env.wasm",
            greeter(
                "test:greet/greeter",
                "u32",
                Some("wasi:cli/environment@0.2.3"),
            ),
        ),
    ] {
        std::fs::write(libs.join(file), wasm).unwrap();
    }
    app
}

#[test]
fn dependencies_are_composed_into_one_wasm_layer_and_leave_the_locked_app() {
    // `spin registry push` composes by default (crates/oci/src/client.rs:362-386@v4.0.2): one
    // wasm layer per component, its source the composition, its dependencies cleared. Names
    // match imports by package, interface or exact name (crates/compose/src/lib.rs:526-573),
    // `export` picks another export (lib.rs:317-330), and a dependency inheriting nothing that
    // imports no capability is composed as is (crates/capabilities/src/deny.rs:76-79).
    let cases = [
        "\"test:greet/greeter\" = { path = \"../libs/greet.wasm\" }",
        "\"test:greet\" = { path = \"../libs/greet.wasm\", inherit_configuration = false }",
        "\"test:greet/greeter\" = { path = \"../libs/hello.wasm\", export = \"test:greet/hello\" }",
        "\"test:greet/greeter\" = { path = \"../libs/env.wasm\", inherit_configuration = true }",
    ];
    for dependencies in cases {
        let home = tempfile::tempdir().unwrap();
        let app = composed_app(home.path(), dependencies);
        let (report, manifest, locked) = build(home.path(), &app, &[]);
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2, "{dependencies}: {layers:?}");
        assert_eq!(
            layers[0]["mediaType"],
            "application/vnd.wasm.content.layer.v1+wasm"
        );
        let digest = layers[0]["digest"].as_str().unwrap();
        let component = &locked["components"][0];
        assert_eq!(component["source"]["digest"], digest, "{dependencies}");
        assert_eq!(component.get("dependencies"), None, "{dependencies}");
        let composed = blob(&app.join(".spin-aks/oci"), digest);
        let (imports, exports) = imports_and_exports(&composed);
        let expected_imports: Vec<String> = if dependencies.contains("env.wasm") {
            vec!["wasi:cli/environment@0.2.3".into()]
        } else {
            vec![]
        };
        assert_eq!(imports, expected_imports, "{dependencies}");
        assert_eq!(exports, ["test:app/runner"], "{dependencies}");
        let warnings = report["warnings"].as_array().unwrap();
        assert!(
            !warnings
                .iter()
                .any(|w| w.as_str().unwrap().contains("compose")),
            "{dependencies}: {warnings:?}"
        );
        // Another process composes the same bytes (wac-graph's encoding follows the graph).
        let (again, _, _) = build(home.path(), &app, &[]);
        assert_eq!(again["digest"], report["digest"], "{dependencies}");
    }
}

#[test]
fn a_url_dependency_is_composed_and_its_download_cached() {
    let home = tempfile::tempdir().unwrap();
    let dependency = greeter("test:greet/greeter", "u32", None);
    let url = serve_bytes(dependency.clone(), 1, "dep.wasm");
    let app = composed_app(
        home.path(),
        &format!(
            "\"test:greet/greeter\" = {{ url = \"{url}\", digest = \"{}\" }}",
            sha256(&dependency)
        ),
    );
    let (report, manifest, _) = build(home.path(), &app, &[]);
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
    // The server answers once: the second build reads the digest-keyed cache.
    let (again, _, _) = build(home.path(), &app, &[]);
    assert_eq!(again["digest"], report["digest"]);
}

#[test]
fn a_64_mib_url_dependency_is_downloaded_and_composed() {
    // The download streams into the cache while it is hashed; the composition (wac-graph) holds
    // the dependency whole, and its layer carries all of it.
    let home = tempfile::tempdir().unwrap();
    let dependency = with_custom_section(
        greeter("test:greet/greeter", "u32", None),
        "padding",
        &vec![0; 64 << 20],
    );
    let url = serve_bytes(dependency.clone(), 1, "big.wasm");
    let app = composed_app(
        home.path(),
        &format!(
            "\"test:greet/greeter\" = {{ url = \"{url}\", digest = \"{}\" }}",
            sha256(&dependency)
        ),
    );
    let (_, manifest, _) = build(home.path(), &app, &[]);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{layers:?}");
    assert!(
        layers[0]["size"].as_u64().unwrap() > 64 << 20,
        "{:?}",
        layers[0]
    );
}

#[test]
fn dependencies_that_cannot_be_composed_exit_2_naming_component_and_dependency() {
    // crates/compose/src/lib.rs@v4.0.2: no matching import (247-262), a missing export
    // (317-346), an export that is not a subtype of the import (352-366); a denied capability
    // needs the deny-all adapter (deny.rs:47-80); a core module without wit-bindgen 0.5+
    // metadata needs Spin's own adapter (crates/componentize/src/lib.rs:113-121).
    let field = "`component.api.dependencies.\"test:greet/greeter\"`";
    let cases = [
        (
            "\"test:greet/other\" = { path = \"../libs/greet.wasm\" }",
            vec![
                "`component.api.dependencies.\"test:greet/other\"`",
                "matches no import of component `api`",
                "`test:greet/greeter`",
            ],
        ),
        (
            "\"test:greet/greeter\" = { path = \"../libs/hello.wasm\" }",
            vec![field, "does not export `test:greet/greeter`", "`test:greet/hello`"],
        ),
        (
            "\"test:greet/greeter\" = { path = \"../libs/greet-u64.wasm\" }",
            vec![
                field,
                "its export `test:greet/greeter` does not match import `test:greet/greeter` of component `api`",
            ],
        ),
        (
            "\"test:greet/greeter\" = { path = \"../libs/env.wasm\", inherit_configuration = [\"files\"] }",
            vec![
                field,
                "imports wasi:cli/environment@0.2.3",
                "deny-all adapter",
                "--format image",
            ],
        ),
        (
            "\"test:greet/greeter\" = { path = \"../libs/env.wasm\" }",
            vec![field, "inherits no configuration", "inherit_configuration = true"],
        ),
        (
            "\"test:greet/greeter\" = { path = \"../app/back.wasm\", inherit_configuration = true }",
            vec![
                field,
                "is a core wasm module without the metadata of wit-bindgen 0.5 or later",
                "--format image",
            ],
        ),
    ];
    for (dependencies, expected) in cases {
        let home = tempfile::tempdir().unwrap();
        let app = composed_app(home.path(), dependencies);
        let stderr = refused(home.path(), &app, &[]);
        for fragment in expected {
            assert!(
                stderr.contains(fragment),
                "{dependencies}: {fragment}: {stderr}"
            );
        }
        // Refused before any blob is written.
        let blobs = std::fs::read_dir(app.join(".spin-aks/oci/blobs/sha256"));
        assert!(
            blobs.map_or(true, |mut b| b.next().is_none()),
            "{dependencies}"
        );
    }
}

#[test]
fn core_modules_are_made_into_components_and_composed_as_spin_does() {
    // Spin's loader makes every core module into a component before composing, the component's
    // source and each dependency's alike (crates/compose/src/lib.rs:104-134@v4.0.2, from
    // `spin registry push` (crates/oci/src/client.rs:371) and at start (crates/trigger/src/
    // loader.rs:93)); a module made with wit-bindgen 0.5+ gets the WASI preview 1 reactor
    // adapter (crates/componentize/src/lib.rs:54-110). Three of Spin's manifests: the component
    // is a core module; a `path` dependency is; a `component` dependency's source is.
    let cases = [
        (
            "api",
            "\"test:greet/greeter\" = { path = \"../libs/greet.wasm\" }",
        ),
        (
            "dependency",
            "\"test:greet/greeter\" = { path = \"../libs/greet-module.wasm\" }",
        ),
        (
            "component",
            "\"test:greet/greeter\" = { component = \"back\" }\n[component.back]\nsource = \"back.wasm\"",
        ),
    ];
    for (module, dependencies) in cases {
        let home = tempfile::tempdir().unwrap();
        let app = composed_app(home.path(), dependencies);
        std::fs::write(home.path().join("libs/greet-module.wasm"), greeter_module()).unwrap();
        std::fs::write(app.join("back.wasm"), greeter_module()).unwrap();
        if module == "api" {
            std::fs::write(app.join("api.wasm"), greeted_module(Some("0.41.0"), "")).unwrap();
        }
        let (report, _, locked) = build(home.path(), &app, &[]);
        let component = &locked["components"][0];
        assert_eq!(component["id"], "api", "{module}");
        assert_eq!(component.get("dependencies"), None, "{module}");
        let digest = component["source"]["digest"].as_str().unwrap();
        let composed = blob(&app.join(".spin-aks/oci"), digest);
        // A component (the preamble's layer field is 1) that wasmparser validates.
        assert_eq!(&composed[4..8], [0x0d, 0, 1, 0], "{module}");
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&composed)
            .unwrap_or_else(|e| panic!("{module}: {e}"));
        let (imports, exports) = imports_and_exports(&composed);
        // The dependency satisfied the greeter; what is left is the adapter's WASI 0.2.0
        // imports: the environment the module reads, and the stderr the adapter reports its own
        // failures on (it keeps only what those need).
        let expected: &[&str] = if module == "api" {
            &[
                "wasi:cli/environment@0.2.0",
                "wasi:io/error@0.2.0",
                "wasi:io/streams@0.2.0",
                "wasi:cli/stderr@0.2.0",
            ]
        } else {
            &[]
        };
        assert_eq!(imports, expected, "{module}");
        assert_eq!(exports, ["test:app/runner"], "{module}");
        assert!(
            report["warnings"].as_array().unwrap().is_empty(),
            "{module}: {report}"
        );
        // The same module gives the same component, in another process too.
        let (again, _, _) = build(home.path(), &app, &[]);
        assert_eq!(again["digest"], report["digest"], "{module}");
    }
}

#[test]
fn a_core_module_spin_cannot_make_into_a_component_exits_2_naming_the_component() {
    // crates/componentize/src/lib.rs@v4.0.2: a wit-bindgen version outside 0.5 to 0.x is
    // refused (55-61, 76-99); one without wit-bindgen metadata gets Spin's own adapter
    // (113-121), not published; a WASI preview 1 call the adapter lacks fails the encoding.
    let field = "`component.api.source`";
    let cases = [
        (
            greeted_module(Some("0.4.0"), ""),
            vec![field, "component `api`", "built with wit-bindgen 0.4.0"],
        ),
        (
            greeted_module(None, ""),
            vec![field, "component `api`", "Spin SDK 1.x", "--format image"],
        ),
        (
            greeted_module(
                Some("0.41.0"),
                r#"(import "wasi_snapshot_preview1" "no_such_call" (func))"#,
            ),
            vec![
                field,
                "component `api`",
                "cannot be made into a component",
                "no_such_call",
            ],
        ),
    ];
    for (module, expected) in cases {
        let home = tempfile::tempdir().unwrap();
        let app = composed_app(
            home.path(),
            "\"test:greet/greeter\" = { path = \"../libs/greet.wasm\" }",
        );
        std::fs::write(app.join("api.wasm"), module).unwrap();
        let stderr = refused(home.path(), &app, &[]);
        for fragment in &expected {
            assert!(stderr.contains(fragment), "{fragment}: {stderr}");
        }
    }
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
                serve_bytes(wasm(12), 1, "dep.wasm")
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
            &["--format", "image", "--shim-version", "v0.24.0"],
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
            // The Spin format composes at build time; the plain image's Spin composes at start.
            &["--format", "image", "--shim-version", "v0.16.0"],
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
