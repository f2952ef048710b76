//! Gathers what the SBOM says from a build just made: the digests the image holds, each wasm's
//! source and the Rust crates cargo-auditable recorded in it, and the files each component mounts.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::Path;

use anyhow::Context;

use super::model::{
    AppFacts, ComponentFacts, DependencyFacts, FileFacts, Origin, SbomInput, WasmSource,
};
use crate::app::{DependencySource, ResolvedComponent, Source};
use crate::attest::auditable::{self, Crates};
use crate::build::BuiltImage;
use crate::oci::media_types::LOCKED_APP_LAYER;
use crate::oci::{Digest, HashingWriter};

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
