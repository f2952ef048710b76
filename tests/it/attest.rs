//! The SBOM and provenance of a real build, through the library (no flag makes them yet): the SBOM
//! validates against CycloneDX 1.6's published schema and matches the layout's digests; a wasm
//! built with cargo-auditable shows its crates; the statement is about the image digest.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use sha2::Digest as _;
use spin_aks::attest::ci::CiRun;
use spin_aks::attest::provenance::{self, ProvenanceInput};
use spin_aks::attest::sbom::{self, SbomInput};
use spin_aks::build::{build_image, BuildSettings, BuiltImage};
use spin_aks::oci::ImageFormat;
use spin_aks::output::{Output, OutputMode};

use crate::support::apps::{bytes, greeted, greeter, wasm, with_custom_section};

/// cargo-auditable's audit data for a crate `web` 0.1.0 using spin-sdk, written as its
/// auditable-serde serialises `VersionInfo` (packages naming dependencies by index).
const AUDIT: &str = r#"{"packages":[{"name":"web","version":"0.1.0","source":"local","dependencies":[1],"root":true},{"name":"spin-sdk","version":"3.1.0","source":"crates.io","dependencies":[2]},{"name":"serde","version":"1.0.219","source":"crates.io"}]}"#;

fn zlib(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

/// An app of three components: `web` (a module carrying audit data, with a small and a large
/// file), `api` (composed with a dependency outside the app) and `worker` (plain).
fn app(home: &Path) -> PathBuf {
    let app = home.join("app");
    std::fs::create_dir_all(app.join("static")).unwrap();
    let web = with_custom_section(wasm(3), ".dep-v0", &zlib(AUDIT));
    std::fs::write(app.join("web.wasm"), web).unwrap();
    std::fs::write(app.join("api.wasm"), greeted()).unwrap();
    std::fs::write(app.join("worker.wasm"), wasm(4)).unwrap();
    std::fs::write(app.join("static/small.txt"), b"small").unwrap();
    std::fs::write(app.join("static/large.bin"), bytes(9, 4096)).unwrap();
    std::fs::create_dir_all(home.join("libs")).unwrap();
    std::fs::write(
        home.join("libs/greet.wasm"),
        greeter("test:greet/greeter", "u32", None),
    )
    .unwrap();
    std::fs::write(
        app.join("spin.toml"),
        r#"spin_manifest_version = 2
[application]
name = "attested"
version = "1.2.3"
[[trigger.http]]
route = "/..."
component = "web"
[[trigger.http]]
route = "/api/..."
component = "api"
[[trigger.http]]
route = "/work/..."
component = "worker"
[component.web]
source = "web.wasm"
files = ["static/*"]
[component.api]
source = "api.wasm"
[component.api.dependencies]
"test:greet/greeter" = { path = "../libs/greet.wasm" }
[component.worker]
source = "worker.wasm"
"#,
    )
    .unwrap();
    app
}

async fn build(app: &Path, format: ImageFormat) -> BuiltImage {
    let loaded = spin_aks::app::load(&app.join("spin.toml")).unwrap();
    let settings = BuildSettings {
        format,
        skip_spin_build: true,
        target: spin_aks::app::compat::target_shim(spin_aks::app::compat::DEFAULT_TARGET_SHIM)
            .unwrap(),
        sbom: true,
        provenance: true,
    };
    let out = Output::new(OutputMode::Json, true, "build");
    build_image(loaded, &settings, None, &out).await.unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Validates `text` with cyclonedx-python-lib's strict JSON validator for CycloneDX 1.6 (its
/// bundled copy of the published bom-1.6.schema.json); `None` when python3 is missing (skipped).
fn cyclonedx_errors(text: &[u8]) -> Option<String> {
    const VALIDATE: &str = r#"
import sys
try:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
except ImportError as e:
    print(f"cyclonedx-python-lib is not installed (scripts/install-test-tools.sh installs it): {e}")
    sys.exit(3)
errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(sys.stdin.read(), all_errors=True)
for error in errors or []:
    print(error)
sys.exit(1 if errors else 0)
"#;
    let python = crate::support::tool("python3")?;
    let mut child = Command::new(python)
        .args(["-c", VALIDATE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text).unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    match output.status.code() {
        Some(0) => Some(String::new()),
        Some(3) => {
            crate::support::skip(&said);
            None
        }
        _ => Some(said),
    }
}

/// The layout's one image as the files say it: its manifest digest, the manifest and the
/// locked app (Spin format only), read without the library.
fn layout_image(layout: &Path) -> (String, Value, Option<Value>) {
    let blob =
        |digest: &str| std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap();
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest: Value = serde_json::from_slice(&blob(&digest)).unwrap();
    let locked = (manifest["layers"].as_array().unwrap().iter())
        .find(|l| l["mediaType"] == "application/vnd.fermyon.spin.application.v1+config")
        .map(|l| serde_json::from_slice(&blob(l["digest"].as_str().unwrap())).unwrap());
    (digest, manifest, locked)
}

/// The top-level components of a BOM by name, and every nested one by bom-ref.
fn components(bom: &Value) -> (BTreeMap<String, Value>, BTreeMap<String, Value>) {
    fn walk(list: &Value, into: &mut BTreeMap<String, Value>) {
        for c in list.as_array().into_iter().flatten() {
            into.insert(c["bom-ref"].as_str().unwrap().to_string(), c.clone());
            walk(&c["components"], into);
        }
    }
    let top = (bom["components"].as_array().unwrap().iter())
        .map(|c| (c["name"].as_str().unwrap().to_string(), c.clone()))
        .collect();
    let mut all = BTreeMap::new();
    walk(&bom["components"], &mut all);
    (top, all)
}

fn hash_of(component: &Value) -> &str {
    assert_eq!(component["hashes"][0]["alg"], "SHA-256", "{component}");
    component["hashes"][0]["content"].as_str().unwrap()
}

#[tokio::test]
async fn the_sbom_of_a_spin_artifact_validates_and_lists_what_the_layout_holds() {
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let built = build(&app, ImageFormat::Spin).await;
    let mut warnings = Vec::new();
    let input = SbomInput::from_build(&built, &mut warnings).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let text = sbom::cyclonedx(&input).unwrap();
    let Some(errors) = cyclonedx_errors(&text) else {
        return;
    };
    assert!(
        errors.is_empty(),
        "{errors}\n{}",
        String::from_utf8_lossy(&text)
    );
    let bom: Value = serde_json::from_slice(&text).unwrap();

    // Every component, with the digest of the wasm layer its locked source names.
    let (image_digest, manifest, locked) = layout_image(&app.join(".spin-aks/oci"));
    assert_eq!(image_digest, built.descriptor.digest.to_string());
    let locked = locked.unwrap();
    let wasm_layers: Vec<&str> = (manifest["layers"].as_array().unwrap().iter())
        .filter(|l| l["mediaType"] == "application/vnd.wasm.content.layer.v1+wasm")
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    let (top, all) = components(&bom);
    let locked_components = locked["components"].as_array().unwrap();
    assert_eq!(top.len(), locked_components.len());
    for component in locked_components {
        let id = component["id"].as_str().unwrap();
        let digest = component["source"]["digest"].as_str().unwrap();
        assert!(wasm_layers.contains(&digest), "{id}: {digest}");
        assert_eq!(format!("sha256:{}", hash_of(&top[id])), digest, "{id}");
        // Every file, with the digest the locked app gives it.
        for file in component["files"].as_array().into_iter().flatten() {
            let guest = format!("/{}", file["path"].as_str().unwrap());
            let part = &all[&format!("component:{id}/file:{guest}")];
            assert_eq!(part["type"], "file");
            assert_eq!(
                format!("sha256:{}", hash_of(part)),
                file["digest"],
                "{guest}"
            );
        }
    }
    assert_eq!(
        all.keys().filter(|r| r.contains("/file:")).count(),
        2,
        "both mounted files"
    );
    // The composed component: the image's composition, its own source and dependency beside it.
    let api = &top["api"];
    let properties = api["properties"].as_array().unwrap();
    let own = format!(
        "sha256:{}",
        sha256(&std::fs::read(app.join("api.wasm")).unwrap())
    );
    assert!(
        properties.contains(&serde_json::json!({"name": "spin-aks:source-digest", "value": own}))
    );
    assert_ne!(
        format!("sha256:{}", hash_of(api)),
        own,
        "composed, not the source"
    );
    let dependency = &all["component:api/dependency:test:greet/greeter"];
    assert_eq!(dependency["type"], "library");
    assert_eq!(
        hash_of(dependency),
        sha256(&std::fs::read(home.path().join("libs/greet.wasm")).unwrap())
    );
    // The crates cargo-auditable recorded in web.wasm, with their graph.
    let sdk = &all["component:web/cargo:crates.io/spin-sdk@3.1.0"];
    assert_eq!(sdk["type"], "library");
    assert_eq!(sdk["purl"], "pkg:cargo/spin-sdk@3.1.0");
    assert_eq!(
        all["component:web/cargo:crates.io/serde@1.0.219"]["purl"],
        "pkg:cargo/serde@1.0.219"
    );
    let graph: BTreeMap<&str, &Value> = (bom["dependencies"].as_array().unwrap().iter())
        .map(|d| (d["ref"].as_str().unwrap(), &d["dependsOn"]))
        .collect();
    assert_eq!(
        *graph["component:web"],
        serde_json::json!(["component:web/cargo:local/web@0.1.0"])
    );
    assert_eq!(
        *graph["component:web/cargo:crates.io/spin-sdk@3.1.0"],
        serde_json::json!(["component:web/cargo:crates.io/serde@1.0.219"])
    );
    // No crates where the wasm records none.
    assert!(!all.keys().any(|r| r.starts_with("component:worker/cargo:")));

    // The same build read again gives the same bytes.
    let again = SbomInput::from_build(&built, &mut Vec::new()).unwrap();
    assert_eq!(sbom::cyclonedx(&again).unwrap(), text);
}

#[tokio::test]
async fn the_sbom_of_a_plain_image_hashes_the_wasm_it_carries() {
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let built = build(&app, ImageFormat::Image).await;
    let input = SbomInput::from_build(&built, &mut Vec::new()).unwrap();
    let text = sbom::cyclonedx(&input).unwrap();
    let Some(errors) = cyclonedx_errors(&text) else {
        return;
    };
    assert!(errors.is_empty(), "{errors}");
    let bom: Value = serde_json::from_slice(&text).unwrap();
    let (top, all) = components(&bom);
    // The plain image carries each source as is (dependencies beside it, not composed).
    for id in ["web", "api", "worker"] {
        let wasm = std::fs::read(app.join(format!("{id}.wasm"))).unwrap();
        assert_eq!(hash_of(&top[id]), sha256(&wasm), "{id}");
    }
    assert_eq!(
        hash_of(&all["component:web/file:/static/large.bin"]),
        sha256(&bytes(9, 4096))
    );
}

#[tokio::test]
async fn the_provenance_of_a_build_is_about_its_image_digest() {
    let home = tempfile::tempdir().unwrap();
    let app = app(home.path());
    let built = build(&app, ImageFormat::Spin).await;
    let sbom_input = SbomInput::from_build(&built, &mut Vec::new()).unwrap();
    let input = ProvenanceInput::from_build(
        &built,
        &sbom_input,
        "registry.example/attested",
        CiRun::Local,
    )
    .unwrap();
    let text = provenance::statement(&input).unwrap();
    assert_eq!(provenance::statement(&input).unwrap(), text);
    let statement: Value = serde_json::from_slice(&text).unwrap();
    let (image_digest, _, _) = layout_image(&app.join(".spin-aks/oci"));
    assert_eq!(
        statement["subject"],
        serde_json::json!([{"name": "registry.example/attested",
            "digest": {"sha256": &image_digest[7..]}}])
    );
    let definition = &statement["predicate"]["buildDefinition"];
    assert_eq!(definition["externalParameters"]["manifest"], "spin.toml");
    let names: Vec<&str> = (definition["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter())
    .filter_map(|d| d["name"].as_str())
    .collect();
    assert_eq!(
        names,
        [
            "spin.toml",
            "../libs/greet.wasm",
            "api.wasm",
            "web.wasm",
            "worker.wasm"
        ]
    );
    let manifest = std::fs::read(app.join("spin.toml")).unwrap();
    assert_eq!(
        definition["resolvedDependencies"][0]["digest"]["sha256"],
        sha256(&manifest)
    );
}

#[tokio::test]
async fn two_copies_of_an_app_give_the_same_sbom_and_provenance() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut documents = Vec::new();
    for home in [one.path(), two.path()] {
        let built = build(&app(home), ImageFormat::Spin).await;
        let sbom_input = SbomInput::from_build(&built, &mut Vec::new()).unwrap();
        let input =
            ProvenanceInput::from_build(&built, &sbom_input, "r.example/a", CiRun::Local).unwrap();
        documents.push((
            sbom::cyclonedx(&sbom_input).unwrap(),
            provenance::statement(&input).unwrap(),
        ));
    }
    assert!(documents[0] == documents[1], "the two copies differ");
}
