//! The image's build provenance (docs/formats.md, "Provenance"): an in-toto Statement v1 whose
//! subject is the image digest, with a SLSA Provenance v1 predicate of spin-aks's build type.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::ci::CiRun;
use super::sbom::{Origin, SbomInput, WasmSource};
use crate::build::assemble::rfc3339;
use crate::build::BuiltImage;
use crate::git::Checkout;
use crate::oci::{Digest, ImageFormat};

/// in-toto Statement v1 (in-toto/attestation spec/v1/statement.md:11, 29-32).
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// SLSA Provenance v1 (slsa-framework/slsa spec/build-provenance.md:16-18).
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// spin-aks's build type: a Spin app built into an OCI image from spin.toml. It names the
/// definition in docs/formats.md ("Provenance"); spin-aks has no web home of its own, so the URI
/// lies under the `.invalid` top-level domain, which RFC 2606 section 2 reserves so it can never
/// be someone else's (a TypeURI "MAY be unresolvable", in-toto spec/v1/field_types.md:42).
pub const BUILD_TYPE: &str = "https://spin-aks.invalid/build-types/spin-app/v1";
/// The builder of a run outside any CI system spin-aks knows: the machine of whoever ran it.
pub const LOCAL_BUILDER: &str = "https://spin-aks.invalid/builders/local/v1";

/// Everything the provenance says ([`ProvenanceInput::from_build`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ProvenanceInput {
    /// The subject's name: the repository (or image) the image is pushed to or exported as.
    pub subject: String,
    /// The image manifest's digest.
    pub image: Digest,
    /// spin.toml's path relative to the checkout's top level (else its file name), `/`-separated.
    pub manifest: String,
    /// spin.toml's digest.
    pub manifest_digest: Digest,
    pub checkout: Option<Checkout>,
    pub format: ImageFormat,
    /// The containerd-shim-spin release targeted (`--shim-version`), e.g. `v0.25.1`.
    pub target: String,
    /// `SOURCE_DATE_EPOCH`, when set: the run's start and finish (a reproducible build's clock).
    pub source_date_epoch: Option<u64>,
    /// `SPIN_OCI_ARCHIVE_LAYERS` was set.
    pub archive_layers: bool,
    /// Every wasm the build read, with what took it (`component web`, `component web, dependency
    /// a:b/c`).
    pub sources: Vec<(String, WasmSource)>,
    pub ci: CiRun,
}

impl ProvenanceInput {
    /// The provenance input of a build just made, for `subject` (the repository or image name),
    /// reusing what [`SbomInput::from_build`] read (sources, digests, checkout).
    pub fn from_build(
        built: &BuiltImage,
        sbom: &SbomInput,
        subject: &str,
        ci: CiRun,
    ) -> anyhow::Result<Self> {
        let manifest_path = &built.app.manifest_path;
        let bytes = std::fs::read(manifest_path)
            .with_context(|| format!("cannot read {}", manifest_path.display()))?;
        let mut sources = Vec::new();
        for component in &sbom.components {
            let owner = format!("component {}", component.id);
            for dependency in &component.dependencies {
                let name = format!("{owner}, dependency {}", dependency.name);
                sources.push((name, dependency.source.clone()));
            }
            sources.push((owner, component.source.clone()));
        }
        Ok(ProvenanceInput {
            subject: subject.to_string(),
            image: sbom.image.clone(),
            manifest: relative_manifest(manifest_path, sbom.checkout.as_ref()),
            manifest_digest: Digest::of(&bytes),
            checkout: sbom.checkout.clone(),
            format: built.format,
            target: built.options.target.shim.to_string(),
            source_date_epoch: built.options.source_date_epoch,
            archive_layers: built.options.archive_layers,
            sources,
            ci,
        })
    }
}

/// `manifest` relative to the checkout's top level, else its file name.
fn relative_manifest(manifest: &Path, checkout: Option<&Checkout>) -> String {
    let canonical = manifest
        .canonicalize()
        .unwrap_or_else(|_| manifest.to_path_buf());
    let top = checkout.and_then(|c| c.top_level.canonicalize().ok());
    let relative = top
        .as_deref()
        .and_then(|top| canonical.strip_prefix(top).ok())
        .unwrap_or_else(|| Path::new(manifest.file_name().unwrap_or_default()));
    let parts: Vec<_> = relative.iter().map(|p| p.to_string_lossy()).collect();
    parts.join("/")
}

/// The in-toto Statement as JSON: deterministic bytes (times only from `SOURCE_DATE_EPOCH`,
/// resolved dependencies sorted).
pub fn statement(input: &ProvenanceInput) -> anyhow::Result<Vec<u8>> {
    let statement = Statement {
        kind: STATEMENT_TYPE,
        subject: vec![json!({
            "name": input.subject,
            "digest": {"sha256": input.image.hex()},
        })],
        predicate_type: PREDICATE_TYPE,
        predicate: Predicate {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE,
                external_parameters: external_parameters(input),
                resolved_dependencies: resolved_dependencies(input),
            },
            run_details: RunDetails {
                builder: Builder {
                    id: input
                        .ci
                        .run_url()
                        .unwrap_or_else(|| LOCAL_BUILDER.to_string()),
                    version: BTreeMap::from([("spin-aks", env!("CARGO_PKG_VERSION"))]),
                },
                metadata: metadata(input),
            },
        },
    };
    Ok(serde_json::to_vec(&statement)?)
}

/// What the user controls: the manifest, the source it comes from, the flags and variables that
/// change the image's bytes, and the CI repository and ref (docs/formats.md lists them).
fn external_parameters(input: &ProvenanceInput) -> Map<String, Value> {
    let mut parameters = Map::new();
    parameters.insert("manifest".into(), json!(input.manifest));
    if let Some(checkout) = &input.checkout {
        let mut source = Map::new();
        if let Some(remote) = &checkout.remote {
            source.insert("repository".into(), json!(remote));
        }
        source.insert("commit".into(), json!(checkout.commit));
        parameters.insert("source".into(), Value::Object(source));
    }
    let format = match input.format {
        ImageFormat::Spin => "spin",
        ImageFormat::Image => "image",
    };
    parameters.insert("format".into(), json!(format));
    parameters.insert("shimVersion".into(), json!(input.target));
    if let Some(epoch) = input.source_date_epoch {
        parameters.insert("sourceDateEpoch".into(), json!(epoch));
    }
    if input.archive_layers {
        parameters.insert("archiveLayers".into(), json!(true));
    }
    if let Some((repository, git_ref)) = input.ci.repository_and_ref() {
        let mut ci = Map::new();
        if let Some(repository) = repository {
            ci.insert("repository".into(), json!(repository));
        }
        if let Some(git_ref) = git_ref {
            ci.insert("ref".into(), json!(git_ref));
        }
        parameters.insert("ci".into(), Value::Object(ci));
    }
    parameters
}

/// The source commit, spin.toml and every wasm read (each once, naming the components that use
/// it, sorted by name or URI), as ResourceDescriptors (in-toto spec/v1/resource_descriptor.md:24-31;
/// annotations named `<vendor>_<field>` as SLSA's extension fields, build-provenance.md:447-450).
fn resolved_dependencies(input: &ProvenanceInput) -> Vec<Value> {
    let mut resolved = Vec::new();
    if let Some(checkout) = &input.checkout {
        let mut git = json!({"digest": {"gitCommit": checkout.commit}});
        match checkout.remote.as_deref().and_then(git_uri) {
            Some(uri) => git["uri"] = json!(format!("{uri}@{}", checkout.commit)),
            None => git["name"] = json!("source"),
        }
        resolved.push(git);
    }
    resolved.push(json!({
        "name": input.manifest,
        "digest": {"sha256": input.manifest_digest.hex()},
    }));
    // (field, name or URI, digest) → the components using it.
    let mut wasm: BTreeMap<(&str, &str, &str), Vec<&str>> = BTreeMap::new();
    for (owner, source) in &input.sources {
        let (field, value) = match &source.origin {
            Origin::File(path) => ("name", path.as_str()),
            Origin::Url(url) => ("uri", url.as_str()),
            // Another component's source, listed as that component's.
            Origin::Component(_) => continue,
        };
        let users = wasm.entry((field, value, source.digest.hex())).or_default();
        users.push(owner);
        users.sort();
        users.dedup();
    }
    for ((field, value, hex), users) in wasm {
        resolved.push(json!({
            field: value,
            "digest": {"sha256": hex},
            "annotations": {"spin-aks_usedBy": users},
        }));
    }
    resolved
}

/// A git remote as an SPDX download location (`git+https://…`, `git+ssh://…`), the form the SLSA
/// spec's example uses (spec/build-provenance.md:251-254); none for a local path.
fn git_uri(remote: &str) -> Option<String> {
    match url::Url::parse(remote) {
        Ok(url) if url.has_host() => Some(format!("git+{url}")),
        // An scp-like remote, `host:path` once published.
        _ => {
            let (host, path) = remote.split_once(':')?;
            (!host.contains('/') && !host.is_empty())
                .then(|| format!("git+ssh://{host}/{}", path.trim_start_matches('/')))
        }
    }
}

/// `invocationId` from the CI run; `startedOn` and `finishedOn` only from `SOURCE_DATE_EPOCH`
/// (no wall-clock time: the same inputs give the same bytes).
fn metadata(input: &ProvenanceInput) -> Option<BuildMetadata> {
    let time = input.source_date_epoch.map(rfc3339);
    let metadata = BuildMetadata {
        invocation_id: input.ci.invocation(),
        started_on: time.clone(),
        finished_on: time,
    };
    (metadata.invocation_id.is_some() || metadata.started_on.is_some()).then_some(metadata)
}

/// The Statement (statement.md:9-22).
#[derive(Serialize)]
struct Statement {
    #[serde(rename = "_type")]
    kind: &'static str,
    subject: Vec<Value>,
    #[serde(rename = "predicateType")]
    predicate_type: &'static str,
    predicate: Predicate,
}

/// SLSA Provenance v1 (spec/schema/provenance.cue:8-28).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Predicate {
    build_definition: BuildDefinition,
    run_details: RunDetails,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildDefinition {
    build_type: &'static str,
    external_parameters: Map<String, Value>,
    resolved_dependencies: Vec<Value>,
}

#[derive(Serialize)]
struct RunDetails {
    builder: Builder,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<BuildMetadata>,
}

#[derive(Serialize)]
struct Builder {
    id: String,
    version: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    invocation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_on: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::sbom::tests::input as sbom_input;

    fn input(ci: CiRun) -> ProvenanceInput {
        let sbom = sbom_input();
        let mut sources = Vec::new();
        for c in &sbom.components {
            for d in &c.dependencies {
                sources.push((
                    format!("component {}, dependency {}", c.id, d.name),
                    d.source.clone(),
                ));
            }
            sources.push((format!("component {}", c.id), c.source.clone()));
        }
        ProvenanceInput {
            subject: "registry.example/shop".into(),
            image: sbom.image,
            manifest: "apps/shop/spin.toml".into(),
            manifest_digest: Digest::of(b"spin.toml"),
            checkout: sbom.checkout,
            format: ImageFormat::Spin,
            target: "v0.25.1".into(),
            source_date_epoch: Some(1_700_000_000),
            archive_layers: false,
            sources,
            ci,
        }
    }

    fn github() -> CiRun {
        CiRun::GitHubActions {
            server: "https://github.com".into(),
            repository: "org/shop".into(),
            run_id: "42".into(),
            run_attempt: Some("1".into()),
            git_ref: Some("refs/heads/main".into()),
        }
    }

    fn parsed(input: &ProvenanceInput) -> Value {
        serde_json::from_slice(&statement(input).unwrap()).unwrap()
    }

    /// The fields a Statement and a SLSA v1 predicate may have, and those each REQUIRES: in-toto
    /// spec/v1/statement.md:29-66, resource_descriptor.md:24-31; SLSA spec/build-provenance.md
    /// (Provenance :154, BuildDefinition :176, RunDetails :311, Builder :345, BuildMetadata
    /// :415) and the field list of spec/schema/provenance.cue.
    fn check_schema(statement: &Value) {
        let object = |v: &Value, at: &str| {
            v.as_object()
                .unwrap_or_else(|| panic!("{at}: not an object"))
                .clone()
        };
        let only = |v: &Value, at: &str, allowed: &[&str], required: &[&str]| {
            let fields = object(v, at);
            for key in fields.keys() {
                assert!(allowed.contains(&key.as_str()), "{at}.{key} is not a field");
            }
            for key in required {
                let value = &fields
                    .get(*key)
                    .unwrap_or_else(|| panic!("{at}.{key} missing"));
                assert!(
                    !(value.is_null()
                        || value.as_str() == Some("")
                        || value.as_object().is_some_and(|o| o.is_empty())),
                    "{at}.{key} empty"
                );
            }
        };
        let descriptor = |v: &Value, at: &str| {
            only(
                v,
                at,
                &[
                    "uri",
                    "digest",
                    "name",
                    "downloadLocation",
                    "mediaType",
                    "content",
                    "annotations",
                ],
                &[],
            );
            assert!(
                ["uri", "digest", "content"]
                    .iter()
                    .any(|k| v.get(k).is_some()),
                "{at}: no uri, digest or content"
            );
            for (alg, hex) in object(&v["digest"], at) {
                let hex = hex.as_str().unwrap();
                assert!(
                    hex.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                    "{at}.digest.{alg}: lowercase hex"
                );
            }
        };
        only(
            statement,
            "statement",
            &["_type", "subject", "predicateType", "predicate"],
            &["_type", "subject", "predicateType"],
        );
        assert_eq!(statement["_type"], STATEMENT_TYPE);
        assert_eq!(statement["predicateType"], PREDICATE_TYPE);
        for subject in statement["subject"].as_array().unwrap() {
            descriptor(subject, "subject");
            assert!(
                subject.get("digest").is_some(),
                "a subject MUST have a digest"
            );
        }
        let predicate = &statement["predicate"];
        only(
            predicate,
            "predicate",
            &["buildDefinition", "runDetails"],
            &["buildDefinition", "runDetails"],
        );
        let definition = &predicate["buildDefinition"];
        only(
            definition,
            "buildDefinition",
            &[
                "buildType",
                "externalParameters",
                "internalParameters",
                "resolvedDependencies",
            ],
            &["buildType", "externalParameters"],
        );
        for d in definition["resolvedDependencies"]
            .as_array()
            .into_iter()
            .flatten()
        {
            descriptor(d, "resolvedDependencies[]");
        }
        let run = &predicate["runDetails"];
        only(
            run,
            "runDetails",
            &["builder", "metadata", "byproducts"],
            &["builder"],
        );
        only(
            &run["builder"],
            "builder",
            &["id", "builderDependencies", "version"],
            &["id"],
        );
        if let Some(metadata) = run.get("metadata") {
            only(
                metadata,
                "metadata",
                &["invocationId", "startedOn", "finishedOn"],
                &[],
            );
            // provenance.cue:48, `<YYYY>-<MM>-<DD>T<hh>:<mm>:<ss>Z`.
            for key in ["startedOn", "finishedOn"] {
                if let Some(time) = metadata[key].as_str() {
                    let shape: String = time
                        .chars()
                        .map(|c| if c.is_ascii_digit() { '9' } else { c })
                        .collect();
                    assert_eq!(shape, "9999-99-99T99:99:99Z", "{key}: {time}");
                }
            }
        }
    }

    #[test]
    fn the_statement_is_about_the_image_digest_and_has_the_fields_slsa_requires() {
        for ci in [CiRun::Local, github()] {
            let input = input(ci.clone());
            let statement = parsed(&input);
            check_schema(&statement);
            assert_eq!(
                statement["subject"],
                json!([{"name": "registry.example/shop", "digest": {"sha256": input.image.hex()}}]),
                "{ci:?}"
            );
            assert_eq!(
                statement["predicate"]["buildDefinition"]["buildType"],
                BUILD_TYPE
            );
        }
    }

    #[test]
    fn parameters_and_dependencies_name_the_sources_and_their_digests() {
        let input = input(github());
        let statement = parsed(&input);
        let definition = &statement["predicate"]["buildDefinition"];
        assert_eq!(
            definition["externalParameters"],
            json!({
                "manifest": "apps/shop/spin.toml",
                "source": {"repository": "https://github.com/org/shop.git", "commit": "a".repeat(40)},
                "format": "spin",
                "shimVersion": "v0.25.1",
                "sourceDateEpoch": 1_700_000_000,
                "ci": {"repository": "https://github.com/org/shop", "ref": "refs/heads/main"},
            })
        );
        let sha = |seed: &str| Digest::of(seed.as_bytes()).hex().to_string();
        let commit = "a".repeat(40);
        assert_eq!(
            definition["resolvedDependencies"],
            json!([
                {"uri": format!("git+https://github.com/org/shop.git@{commit}"), "digest": {"gitCommit": commit}},
                {"name": "apps/shop/spin.toml", "digest": {"sha256": input.manifest_digest.hex()}},
                {"name": "../libs/greet.wasm", "digest": {"sha256": sha("greet")},
                    "annotations": {"spin-aks_usedBy": ["component api, dependency test:greet/greeter"]}},
                {"name": "target/web.wasm", "digest": {"sha256": sha("web")},
                    "annotations": {"spin-aks_usedBy": ["component web"]}},
                {"uri": "https://example.com/api.wasm", "digest": {"sha256": sha("api")},
                    "annotations": {"spin-aks_usedBy": ["component api"]}},
            ])
        );
        let run = &statement["predicate"]["runDetails"];
        assert_eq!(
            run["builder"]["id"],
            "https://github.com/org/shop/actions/runs/42"
        );
        assert_eq!(
            run["builder"]["version"]["spin-aks"],
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(
            run["metadata"],
            json!({
                "invocationId": "https://github.com/org/shop/actions/runs/42/attempts/1",
                "startedOn": "2023-11-14T22:13:20Z",
                "finishedOn": "2023-11-14T22:13:20Z",
            })
        );
    }

    #[test]
    fn without_ci_or_epoch_nothing_varies_from_run_to_run() {
        let mut local = input(CiRun::Local);
        local.source_date_epoch = None;
        let first = statement(&local).unwrap();
        assert_eq!(statement(&local).unwrap(), first);
        let parsed: Value = serde_json::from_slice(&first).unwrap();
        let run = &parsed["predicate"]["runDetails"];
        assert_eq!(run["builder"]["id"], LOCAL_BUILDER);
        assert_eq!(run.get("metadata"), None);
        assert_eq!(
            parsed["predicate"]["buildDefinition"]["externalParameters"].get("ci"),
            None
        );
    }

    #[test]
    fn git_remotes_become_download_locations() {
        for (remote, uri) in [
            (
                "https://github.com/org/app.git",
                Some("git+https://github.com/org/app.git"),
            ),
            (
                "ssh://example.com:2222/app.git",
                Some("git+ssh://example.com:2222/app.git"),
            ),
            (
                "github.com:org/app.git",
                Some("git+ssh://github.com/org/app.git"),
            ),
            ("/srv/git/app.git", None),
            ("../app", None),
        ] {
            assert_eq!(git_uri(remote).as_deref(), uri, "{remote}");
        }
    }

    #[test]
    fn the_manifest_is_named_relative_to_the_checkout() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("apps/shop")).unwrap();
        let manifest = dir.path().join("apps/shop/spin.toml");
        std::fs::write(&manifest, "").unwrap();
        let checkout = Checkout {
            top_level: dir.path().to_path_buf(),
            commit: "a".repeat(40),
            commit_time: None,
            remote: None,
        };
        assert_eq!(
            relative_manifest(&manifest, Some(&checkout)),
            "apps/shop/spin.toml"
        );
        assert_eq!(relative_manifest(&manifest, None), "spin.toml");
    }
}
