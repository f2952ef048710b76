//! Writes the SBOM as CycloneDX 1.6 JSON: deterministic bytes, a serial number named by the image,
//! the components with their parts nested, and the dependency graph. It holds the document's types.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::Digest as _;

use super::model::{ComponentFacts, Origin, SbomInput, WasmSource};
use crate::attest::auditable::{CrateKey, Crates};
use crate::build::assemble::rfc3339;
use crate::oci::Digest;

/// The CycloneDX version written (CycloneDX/specification schema/bom-1.6.schema.json).
const SPEC_VERSION: &str = "1.6";

/// The BOM as CycloneDX 1.6 JSON: deterministic bytes (no random serial number; a timestamp only
/// from [`SbomInput::timestamp`]), components, nested parts and the dependency graph sorted.
pub fn cyclonedx(input: &SbomInput) -> anyhow::Result<Vec<u8>> {
    let app_ref = "app".to_string();
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut components: Vec<Component> = (input.components.iter())
        .map(|c| spin_component(c, &mut graph))
        .collect();
    components.sort_by(|a, b| a.bom_ref.cmp(&b.bom_ref));
    graph.insert(
        app_ref.clone(),
        components
            .iter()
            .filter_map(|c| c.bom_ref.clone())
            .collect(),
    );
    let mut app = Component::new("application", Some(app_ref), &input.app.name);
    app.version = input.app.version.clone();
    app.description = input.app.description.clone();
    if let Some(remote) = input.checkout.as_ref().and_then(|c| c.remote.as_deref()) {
        app.external_references.push(ExternalReference {
            url: remote.to_string(),
            kind: "vcs",
            hashes: vec![],
        });
    }
    app.properties = vec![
        property("spin-aks:image-digest", input.image.to_string()),
        property("spin-aks:target-spin", input.target.spin.to_string()),
    ];
    if let Some(checkout) = &input.checkout {
        app.properties
            .push(property("spin-aks:git-commit", checkout.commit.clone()));
    }
    let mut spin_aks = Component::new("application", None, "spin-aks");
    spin_aks.version = Some(env!("CARGO_PKG_VERSION").to_string());
    spin_aks.description = Some("made this image and this SBOM".into());
    // The runtime the image is built for: CycloneDX's `platform`, "a runtime environment which
    // interprets or executes software" (bom-1.6.schema.json, component type meta:enum).
    let mut shim = Component::new("platform", None, "containerd-shim-spin");
    shim.version = Some(input.target.shim.to_string());
    shim.description = Some(format!("the target: Spin {}", input.target.spin));
    let bom = Bom {
        bom_format: "CycloneDX",
        spec_version: SPEC_VERSION,
        serial_number: serial_number(&input.image),
        version: 1,
        metadata: Metadata {
            timestamp: input.timestamp.map(rfc3339),
            tools: Tools {
                components: vec![spin_aks, shim],
            },
            component: app,
        },
        components,
        dependencies: graph
            .into_iter()
            .map(|(reference, mut depends_on)| {
                depends_on.sort();
                depends_on.dedup();
                Dependency {
                    reference,
                    depends_on,
                }
            })
            .collect(),
    };
    Ok(serde_json::to_vec(&bom)?)
}

/// `urn:uuid:` of a version 8 UUID named by the image digest: RFC 9562 section 5.8, built as its
/// Appendix B.2 builds a name-based UUIDv8 (SHA-256 over a namespace and a name, first 16 bytes,
/// version and variant bits set). The same image always gets the same serial number.
fn serial_number(image: &Digest) -> String {
    let mut hasher = sha2::Sha256::new();
    hasher.update(uuid::Uuid::NAMESPACE_URL.as_bytes());
    hasher.update(format!("spin-aks:sbom:{image}").as_bytes());
    let hash = hasher.finalize();
    let bytes: [u8; 16] = hash[..16].try_into().expect("SHA-256 has 32 bytes");
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .urn()
        .to_string()
}

/// A Spin component as a CycloneDX component, its parts nested, its edges added to `graph`.
///
/// Its type is `application`: the wasm is what the Spin runtime instantiates and invokes (through
/// a trigger), as an operating system runs a program, and CycloneDX gives the runtime its own
/// type (`platform`, used for the shim). Composed dependencies are `library` ("a software
/// library": they satisfy another component's imports and never run on their own), as are
/// the crates (bom-1.6.schema.json, component type meta:enum).
fn spin_component(facts: &ComponentFacts, graph: &mut BTreeMap<String, Vec<String>>) -> Component {
    let bom_ref = format!("component:{}", facts.id);
    let mut component = Component::new("application", Some(bom_ref.clone()), &facts.id);
    component.description = facts.description.clone();
    component.hashes = vec![Hash::sha256(&facts.wasm)];
    describe_source(&mut component, &facts.source);
    let mut parts = Vec::new();
    let mut depends_on = Vec::new();
    for dependency in &facts.dependencies {
        let dep_ref = format!("{bom_ref}/dependency:{}", dependency.name);
        let mut library = Component::new("library", Some(dep_ref.clone()), &dependency.name);
        library.hashes = vec![Hash::sha256(&dependency.source.digest)];
        describe_source(&mut library, &dependency.source);
        let roots = add_crates(
            &dep_ref,
            dependency.crates.as_ref(),
            &mut library.components,
            graph,
        );
        library.components.sort_by(|a, b| a.bom_ref.cmp(&b.bom_ref));
        graph.insert(dep_ref.clone(), roots);
        depends_on.push(dep_ref);
        parts.push(library);
    }
    for file in &facts.files {
        let file_ref = format!("{bom_ref}/file:{}", file.guest_path);
        let mut part = Component::new("file", Some(file_ref.clone()), &file.guest_path);
        part.hashes = vec![Hash::sha256(&file.digest)];
        graph.insert(file_ref, vec![]);
        parts.push(part);
    }
    depends_on.extend(add_crates(
        &bom_ref,
        facts.crates.as_ref(),
        &mut parts,
        graph,
    ));
    parts.sort_by(|a, b| a.bom_ref.cmp(&b.bom_ref));
    component.components = parts;
    graph.insert(bom_ref, depends_on);
    component
}

/// Where a wasm came from: a download as a `distribution` reference with its hash, a file or
/// another component as properties; the source's own digest (before composition) as a property.
fn describe_source(component: &mut Component, source: &WasmSource) {
    match &source.origin {
        Origin::File(path) => component
            .properties
            .push(property("spin-aks:source-file", path.clone())),
        Origin::Url(url) => component.external_references.push(ExternalReference {
            url: url.clone(),
            kind: "distribution",
            hashes: vec![Hash::sha256(&source.digest)],
        }),
        Origin::Component(id) => component
            .properties
            .push(property("spin-aks:source-component", id.clone())),
    }
    component.properties.push(property(
        "spin-aks:source-digest",
        source.digest.to_string(),
    ));
}

/// Adds the crates as `library` components under `parent` (refs `<parent>/cargo:<source>/<name>@<version>`)
/// with their edges; returns the refs of the root crates (the parent depends on them).
fn add_crates(
    parent: &str,
    crates: Option<&Crates>,
    into: &mut Vec<Component>,
    graph: &mut BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let Some(crates) = crates else {
        return vec![];
    };
    let crate_ref =
        |key: &CrateKey| format!("{parent}/cargo:{}/{}@{}", key.source, key.name, key.version);
    let mut roots = Vec::new();
    for (key, entry) in crates {
        let reference = crate_ref(key);
        let mut library = Component::new("library", Some(reference.clone()), &key.name);
        library.version = Some(key.version.clone());
        // A purl without a repository qualifier means crates.io (purl-spec, type `cargo`), so
        // only crates from there get one; the others say where they came from.
        if key.source == "crates.io" {
            library.purl = Some(format!("pkg:cargo/{}@{}", key.name, key.version));
        } else {
            library
                .properties
                .push(property("spin-aks:cargo-source", key.source.clone()));
        }
        // Build-only crates (proc macros, build scripts) are not in the wasm: CycloneDX's
        // `excluded`, "not reachable within a call graph at runtime".
        if entry.build_only {
            library.scope = Some("excluded");
        }
        graph.insert(
            reference.clone(),
            entry.dependencies.iter().map(crate_ref).collect(),
        );
        if entry.root {
            roots.push(reference);
        }
        into.push(library);
    }
    roots
}

fn property(name: &str, value: String) -> Property {
    Property {
        name: name.to_string(),
        value,
    }
}

/// CycloneDX 1.6 `bom` (bom-1.6.schema.json), the fields written, in the schema's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Metadata,
    components: Vec<Component>,
    dependencies: Vec<Dependency>,
}

#[derive(Serialize)]
struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    tools: Tools,
    component: Component,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Serialize)]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    bom_ref: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(rename = "externalReferences", skip_serializing_if = "Vec::is_empty")]
    external_references: Vec<ExternalReference>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    components: Vec<Component>,
}

impl Component {
    fn new(kind: &'static str, bom_ref: Option<String>, name: &str) -> Self {
        Component {
            kind,
            bom_ref,
            name: name.to_string(),
            version: None,
            description: None,
            scope: None,
            hashes: vec![],
            purl: None,
            external_references: vec![],
            properties: vec![],
            components: vec![],
        }
    }
}

#[derive(Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

impl Hash {
    fn sha256(digest: &Digest) -> Self {
        Hash {
            alg: "SHA-256",
            content: digest.hex().to_string(),
        }
    }
}

#[derive(Serialize)]
struct ExternalReference {
    url: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
}

#[derive(Serialize)]
struct Property {
    name: String,
    value: String,
}

#[derive(Serialize)]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(rename = "dependsOn", skip_serializing_if = "Vec::is_empty")]
    depends_on: Vec<String>,
}
