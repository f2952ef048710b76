//! The image's SBOM as CycloneDX 1.6 JSON (docs/formats.md, "SBOM"): the app, one component per
//! Spin component with its wasm digest, source, composed dependencies, files and Rust crates.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use sha2::Digest as _;

use super::auditable::{self, CrateKey, Crates};
use crate::app::compat::ShimRelease;
use crate::app::{DependencySource, ResolvedComponent, Source};
use crate::build::assemble::rfc3339;
use crate::build::BuiltImage;
use crate::git::Checkout;
use crate::oci::media_types::LOCKED_APP_LAYER;
use crate::oci::{Digest, HashingWriter};

/// Everything the SBOM says, gathered from one build ([`SbomInput::from_build`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SbomInput {
    /// The image manifest's digest; the BOM's serial number is derived from it.
    pub image: Digest,
    pub app: AppFacts,
    /// The git checkout the app lies in, when it does (its remote becomes the app's `vcs` link).
    pub checkout: Option<Checkout>,
    /// `SOURCE_DATE_EPOCH`, else the commit time: the BOM's timestamp; none without either.
    pub timestamp: Option<u64>,
    /// The containerd-shim-spin release the image targets.
    pub target: &'static ShimRelease,
    /// In the app's order.
    pub components: Vec<ComponentFacts>,
}

/// The application as its manifest names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppFacts {
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
}

/// One Spin component.
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentFacts {
    pub id: String,
    pub description: Option<String>,
    /// The wasm the image holds for it: its source composed with its dependencies when it has
    /// any (as the Spin artifact ships it), else the source itself.
    pub wasm: Digest,
    /// Where its own wasm came from, before composition.
    pub source: WasmSource,
    pub dependencies: Vec<DependencyFacts>,
    /// Sorted by guest path.
    pub files: Vec<FileFacts>,
    /// The Rust crates its own wasm records (cargo-auditable), if it does.
    pub crates: Option<Crates>,
}

/// A component dependency (composed in, or carried beside the component in a plain image).
#[derive(Clone, Debug, PartialEq)]
pub struct DependencyFacts {
    /// As spin.toml names it: `ns:pkg/iface@1.0.0`, or a plain name.
    pub name: String,
    pub source: WasmSource,
    pub crates: Option<Crates>,
}

/// A wasm input: where it came from and the digest of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WasmSource {
    pub origin: Origin,
    pub digest: Digest,
}

/// Where a wasm came from, as spin.toml gives it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// A file, its path relative to the manifest's directory with `/` separators.
    File(String),
    /// A download pinned by the digest.
    Url(String),
    /// Another component of the app, whose source it is.
    Component(String),
}

/// A file a component mounts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileFacts {
    /// Where the component sees it, e.g. `/static/index.html`.
    pub guest_path: String,
    pub digest: Digest,
}

impl SbomInput {
    /// The SBOM's input from a build just made: digests of wasm and files as the image holds them
    /// (from the Spin artifact's locked app; a plain image's files are hashed), every source wasm
    /// read once for its digest and crates. Unreadable audit data becomes a warning.
    pub fn from_build(built: &BuiltImage, warnings: &mut Vec<String>) -> anyhow::Result<Self> {
        let locked = locked_digests(built)?;
        let components = (built.components.iter())
            .map(|resolved| component_facts(built, resolved, locked.get(&resolved.id), warnings))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let checkout = crate::git::checkout(&built.app.dir);
        let timestamp = built
            .options
            .source_date_epoch
            .or_else(|| checkout.as_ref().and_then(|c| c.commit_time));
        Ok(SbomInput {
            image: built.descriptor.digest.clone(),
            app: AppFacts {
                name: built.app.name.clone(),
                version: built.app.version.clone(),
                description: built.app.description.clone(),
            },
            checkout,
            timestamp,
            target: built.options.target,
            components,
        })
    }
}

/// A component's wasm digest and file digests as its locked app records them.
#[derive(Default)]
struct LockedDigests {
    wasm: Option<Digest>,
    /// By path relative to the component's file root (`static/a.css`).
    files: BTreeMap<String, Digest>,
}

/// The locked app's digests by component id; empty for an image without a locked app (plain).
fn locked_digests(built: &BuiltImage) -> anyhow::Result<BTreeMap<String, LockedDigests>> {
    let Some(layer) = (built.manifest.layers.iter()).find(|l| l.media_type == LOCKED_APP_LAYER)
    else {
        return Ok(BTreeMap::new());
    };
    let path = built.layout.blob_path(&layer.digest);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let locked: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not the locked app's JSON", path.display()))?;
    let digest = |value: &serde_json::Value| value["digest"].as_str()?.parse::<Digest>().ok();
    let mut by_id = BTreeMap::new();
    for component in locked["components"].as_array().into_iter().flatten() {
        let Some(id) = component["id"].as_str() else {
            continue;
        };
        let files = (component["files"].as_array().into_iter().flatten())
            .filter_map(|f| Some((f["path"].as_str()?.to_string(), digest(f)?)))
            .collect();
        let found = LockedDigests {
            wasm: digest(&component["source"]),
            files,
        };
        by_id.insert(id.to_string(), found);
    }
    Ok(by_id)
}

fn component_facts(
    built: &BuiltImage,
    resolved: &ResolvedComponent,
    locked: Option<&LockedDigests>,
    warnings: &mut Vec<String>,
) -> anyhow::Result<ComponentFacts> {
    let component = built
        .app
        .component(&resolved.id)
        .expect("resolved components come from the app");
    let owner = format!("component `{}`", resolved.id);
    let (digest, crates) = read_wasm(&resolved.wasm, &owner, warnings)?;
    let origin = match &component.source {
        Source::Local(path) => Origin::File(slashed(path)),
        Source::Remote { url, .. } => Origin::Url(url.clone()),
    };
    let dependencies = (component.dependencies.iter())
        .zip(&resolved.dependencies)
        .map(|(dependency, wasm)| {
            let owner = format!("{owner}, dependency `{}`", dependency.name);
            let (digest, crates) = read_wasm(wasm, &owner, warnings)?;
            let origin = match &dependency.source {
                DependencySource::Local(path) => Origin::File(slashed(path)),
                DependencySource::Remote { url, .. } => Origin::Url(url.clone()),
                DependencySource::Component(id) => Origin::Component(id.clone()),
            };
            Ok(DependencyFacts {
                name: dependency.name.clone(),
                source: WasmSource { origin, digest },
                crates,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut files = (resolved.files.iter())
        .map(|file| {
            let relative = file.guest_path.trim_start_matches('/');
            let digest = match locked.and_then(|l| l.files.get(relative)) {
                Some(digest) => digest.clone(),
                None => hash_file(&file.source)?,
            };
            Ok(FileFacts {
                guest_path: file.guest_path.clone(),
                digest,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    files.sort();
    Ok(ComponentFacts {
        id: resolved.id.clone(),
        description: component.description.clone(),
        wasm: locked
            .and_then(|l| l.wasm.clone())
            .unwrap_or_else(|| digest.clone()),
        source: WasmSource { origin, digest },
        dependencies,
        files,
        crates,
    })
}

/// A wasm file's digest and the crates it records; audit data that cannot be read is a warning
/// naming `owner`, not a failed build.
fn read_wasm(
    path: &Path,
    owner: &str,
    warnings: &mut Vec<String>,
) -> anyhow::Result<(Digest, Option<Crates>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let crates = auditable::crates(&bytes).unwrap_or_else(|error| {
        warnings.push(format!(
            "the SBOM lists no Rust crates for {owner}: {} ({error:#})",
            path.display()
        ));
        None
    });
    Ok((Digest::of(&bytes), crates))
}

fn hash_file(path: &Path) -> anyhow::Result<Digest> {
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hashing = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut hashing).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hashing.finish().0)
}

/// A relative path with `/` separators, as spin.toml writes it on every platform.
fn slashed(path: &Path) -> String {
    let parts: Vec<_> = path.iter().map(|p| p.to_string_lossy()).collect();
    parts.join("/")
}

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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::attest::auditable::Crate;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn digest(seed: &str) -> Digest {
        Digest::of(seed.as_bytes())
    }

    fn source(origin: Origin, seed: &str) -> WasmSource {
        WasmSource {
            origin,
            digest: digest(seed),
        }
    }

    fn key(name: &str, version: &str, source: &str) -> CrateKey {
        CrateKey {
            name: name.into(),
            version: version.into(),
            source: source.into(),
        }
    }

    /// `hello` (local, the root) → `spin-sdk` (crates.io) → `proc-macro2` (build only).
    fn crates() -> Crates {
        let hello = key("hello", "0.1.0", "local");
        let sdk = key("spin-sdk", "3.1.0", "crates.io");
        let pm = key("proc-macro2", "1.0.86", "crates.io");
        Crates::from([
            (
                hello,
                Crate {
                    build_only: false,
                    root: true,
                    dependencies: BTreeSet::from([sdk.clone()]),
                },
            ),
            (
                sdk,
                Crate {
                    build_only: false,
                    root: false,
                    dependencies: BTreeSet::from([pm.clone()]),
                },
            ),
            (
                pm,
                Crate {
                    build_only: true,
                    root: false,
                    dependencies: BTreeSet::new(),
                },
            ),
        ])
    }

    /// Two components: `web` from a file with two files and its crates; `api` from a URL,
    /// composed with a file dependency and `web`'s source.
    pub(crate) fn input() -> SbomInput {
        SbomInput {
            image: digest("image"),
            app: AppFacts {
                name: "shop".into(),
                version: Some("1.0.0".into()),
                description: None,
            },
            checkout: Some(Checkout {
                top_level: "/src".into(),
                commit: "a".repeat(40),
                commit_time: Some(1_700_000_000),
                remote: Some("https://github.com/org/shop.git".into()),
            }),
            timestamp: Some(1_700_000_000),
            target: crate::app::compat::target_shim("v0.25.1").unwrap(),
            components: vec![
                ComponentFacts {
                    id: "web".into(),
                    description: Some("the pages".into()),
                    wasm: digest("web"),
                    source: source(Origin::File("target/web.wasm".into()), "web"),
                    dependencies: vec![],
                    files: vec![
                        FileFacts {
                            guest_path: "/a.css".into(),
                            digest: digest("a"),
                        },
                        FileFacts {
                            guest_path: "/static/index.html".into(),
                            digest: digest("index"),
                        },
                    ],
                    crates: Some(crates()),
                },
                ComponentFacts {
                    id: "api".into(),
                    description: None,
                    wasm: digest("api composed"),
                    source: source(Origin::Url("https://example.com/api.wasm".into()), "api"),
                    dependencies: vec![
                        DependencyFacts {
                            name: "test:greet/greeter".into(),
                            source: source(Origin::File("../libs/greet.wasm".into()), "greet"),
                            crates: None,
                        },
                        DependencyFacts {
                            name: "my:dep/x".into(),
                            source: source(Origin::Component("web".into()), "web"),
                            crates: Some(crates()),
                        },
                    ],
                    files: vec![],
                    crates: None,
                },
            ],
        }
    }

    fn bom(input: &SbomInput) -> Value {
        serde_json::from_slice(&cyclonedx(input).unwrap()).unwrap()
    }

    /// Every component in the BOM (nested ones too) by bom-ref.
    pub(crate) fn by_ref(bom: &Value) -> BTreeMap<String, Value> {
        fn walk(list: &Value, into: &mut BTreeMap<String, Value>) {
            for c in list.as_array().into_iter().flatten() {
                let reference = c["bom-ref"].as_str().unwrap().to_string();
                assert!(
                    into.insert(reference.clone(), c.clone()).is_none(),
                    "{reference} twice"
                );
                walk(&c["components"], into);
            }
        }
        let mut found = BTreeMap::new();
        walk(&bom["components"], &mut found);
        found
    }

    #[test]
    fn the_bom_is_cyclonedx_1_6_with_a_serial_number_named_by_the_image() {
        let bom = bom(&input());
        assert_eq!(bom["bomFormat"], "CycloneDX");
        assert_eq!(bom["specVersion"], "1.6");
        assert_eq!(bom["version"], 1);
        // RFC 9562 section 5.8: version 8 (the 13th hex digit), variant 10xx (the 17th).
        let serial = bom["serialNumber"].as_str().unwrap();
        let uuid = serial.strip_prefix("urn:uuid:").unwrap();
        assert_eq!(uuid.len(), 36, "{serial}");
        assert_eq!(&uuid[14..15], "8", "{serial}");
        assert!("89ab".contains(&uuid[19..20]), "{serial}");
        assert_eq!(uuid, uuid.to_lowercase());
        let mut other = input();
        other.image = digest("another image");
        assert_ne!(self::bom(&other)["serialNumber"], serial);
        assert_eq!(bom["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
        let tools = &bom["metadata"]["tools"]["components"];
        assert_eq!(tools[0]["name"], "spin-aks");
        assert_eq!(tools[0]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(tools[1]["name"], "containerd-shim-spin");
        assert_eq!(tools[1]["version"], input().target.shim);
        assert_eq!(tools[1]["type"], "platform");
        let app = &bom["metadata"]["component"];
        assert_eq!(app["type"], "application");
        assert_eq!(app["name"], "shop");
        assert_eq!(app["version"], "1.0.0");
        assert_eq!(app["externalReferences"][0]["type"], "vcs");
        assert_eq!(
            app["externalReferences"][0]["url"],
            "https://github.com/org/shop.git"
        );
    }

    #[test]
    fn each_part_has_its_type_digest_and_source() {
        let bom = bom(&input());
        let found = by_ref(&bom);
        let hex = |seed: &str| digest(seed).hex().to_string();
        let sdk = "component:web/cargo:crates.io/spin-sdk@3.1.0";
        // (bom-ref, type, SHA-256, a property that must be there)
        type Case<'a> = (&'a str, &'a str, Option<String>, (&'a str, &'a str));
        let cases: &[Case] = &[
            (
                "component:web",
                "application",
                Some(hex("web")),
                ("spin-aks:source-file", "target/web.wasm"),
            ),
            // Composed: the image's wasm, the source's own digest beside it.
            (
                "component:api",
                "application",
                Some(hex("api composed")),
                ("spin-aks:source-digest", &digest("api").to_string()),
            ),
            (
                "component:api/dependency:test:greet/greeter",
                "library",
                Some(hex("greet")),
                ("spin-aks:source-file", "../libs/greet.wasm"),
            ),
            (
                "component:api/dependency:my:dep/x",
                "library",
                Some(hex("web")),
                ("spin-aks:source-component", "web"),
            ),
            (
                "component:web/file:/static/index.html",
                "file",
                Some(hex("index")),
                ("", ""),
            ),
            (
                "component:web/cargo:local/hello@0.1.0",
                "library",
                None,
                ("spin-aks:cargo-source", "local"),
            ),
            (sdk, "library", None, ("", "")),
            (
                "component:api/dependency:my:dep/x/cargo:crates.io/spin-sdk@3.1.0",
                "library",
                None,
                ("", ""),
            ),
        ];
        for (reference, kind, sha256, (name, value)) in cases {
            let component = &found[*reference];
            assert_eq!(component["type"], *kind, "{reference}");
            match sha256 {
                Some(hex) => assert_eq!(
                    component["hashes"],
                    serde_json::json!([{"alg": "SHA-256", "content": hex}]),
                    "{reference}"
                ),
                None => assert_eq!(component.get("hashes"), None, "{reference}"),
            }
            if !name.is_empty() {
                let properties = component["properties"].as_array().unwrap();
                assert!(
                    properties.contains(&serde_json::json!({"name": name, "value": value})),
                    "{reference}: {properties:?}"
                );
            }
        }
        // A download: a distribution reference carrying its hash.
        assert_eq!(
            found["component:api"]["externalReferences"],
            serde_json::json!([{"url": "https://example.com/api.wasm", "type": "distribution",
                "hashes": [{"alg": "SHA-256", "content": hex("api")}]}])
        );
        // Crates: a purl only for crates.io; build-only ones excluded from run time.
        assert_eq!(found[sdk]["purl"], "pkg:cargo/spin-sdk@3.1.0");
        assert_eq!(found[sdk].get("scope"), None);
        assert_eq!(
            found["component:web/cargo:local/hello@0.1.0"].get("purl"),
            None
        );
        let pm = &found["component:web/cargo:crates.io/proc-macro2@1.0.86"];
        assert_eq!(pm["scope"], "excluded");
        // Top-level: exactly the two Spin components, sorted.
        let top: Vec<&str> = (bom["components"].as_array().unwrap().iter())
            .map(|c| c["bom-ref"].as_str().unwrap())
            .collect();
        assert_eq!(top, ["component:api", "component:web"]);
    }

    #[test]
    fn the_graph_names_every_part_once_and_only_parts() {
        let bom = bom(&input());
        let found = by_ref(&bom);
        let graph: BTreeMap<&str, Vec<&str>> = (bom["dependencies"].as_array().unwrap().iter())
            .map(|d| {
                let on = (d["dependsOn"].as_array().into_iter().flatten())
                    .map(|r| r.as_str().unwrap())
                    .collect();
                (d["ref"].as_str().unwrap(), on)
            })
            .collect();
        assert_eq!(graph.len(), bom["dependencies"].as_array().unwrap().len());
        let mut refs: BTreeSet<&str> = found.keys().map(String::as_str).collect();
        refs.insert("app");
        assert_eq!(graph.keys().copied().collect::<BTreeSet<_>>(), refs);
        for (from, on) in &graph {
            assert!(on.iter().all(|r| refs.contains(r)), "{from} → {on:?}");
        }
        for (from, expected) in [
            ("app", vec!["component:api", "component:web"]),
            (
                "component:web",
                vec!["component:web/cargo:local/hello@0.1.0"],
            ),
            (
                "component:api",
                vec![
                    "component:api/dependency:my:dep/x",
                    "component:api/dependency:test:greet/greeter",
                ],
            ),
            (
                "component:web/cargo:local/hello@0.1.0",
                vec!["component:web/cargo:crates.io/spin-sdk@3.1.0"],
            ),
            ("component:web/file:/a.css", vec![]),
        ] {
            assert_eq!(graph[from], expected, "{from}");
        }
    }

    #[test]
    fn the_same_input_gives_the_same_bytes_and_the_epoch_only_the_timestamp() {
        let first = cyclonedx(&input()).unwrap();
        assert_eq!(cyclonedx(&input()).unwrap(), first);
        let mut later = input();
        later.timestamp = Some(1_800_000_000);
        let mut none = input();
        none.timestamp = None;
        let without_time = |bytes: &[u8]| {
            let mut bom: Value = serde_json::from_slice(bytes).unwrap();
            let time = bom["metadata"].as_object_mut().unwrap().remove("timestamp");
            (bom, time)
        };
        let (base, time) = without_time(&first);
        let (other, other_time) = without_time(&cyclonedx(&later).unwrap());
        assert_eq!(other, base);
        assert_ne!(other_time, time);
        assert_eq!(other_time, Some(Value::from("2027-01-15T08:00:00Z")));
        let (untimed, no_time) = without_time(&cyclonedx(&none).unwrap());
        assert_eq!(untimed, base);
        assert_eq!(no_time, None);
    }
}
