//! `bundle push`: the bundle checked whole (every blob against its digest, the index against
//! its contents, the app's signatures where asked) before anything is sent, then loaded.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::{stream, StreamExt, TryStreamExt};
use serde::Serialize;
use sha2::Digest as _;

use super::contents::{Contents, Item, Kind};
use crate::oci::media_types::REF_NAME_ANNOTATION;
use crate::oci::reference::RegistryRef;
use crate::oci::{archive, Descriptor, Digest, Layout};
use crate::output::Output;
use crate::publish::RegistrySettings;
use crate::registry::progress::Progress;
use crate::registry::push_tree::{blobs, children, push_tree};

/// Parts loaded at once.
const JOBS: usize = 4;

/// `bundle push`'s arguments, validated (made by `cli`).
#[derive(Clone, Debug)]
pub struct PushSettings {
    pub archive: PathBuf,
    /// `host[:port][/path]`.
    pub registry: String,
    /// The digest `bundle create` printed: the bundle's manifest must be this one.
    pub digest: Option<Digest>,
    pub trust: Option<crate::attest::notation::TrustPolicy>,
    pub transport: RegistrySettings,
}

/// What `bundle push` reports.
#[derive(Debug, Serialize)]
pub struct PushReport {
    pub registry: String,
    pub digest: String,
    pub items: usize,
    /// Items the registry lacked, now sent.
    pub pushed: usize,
    pub blobs_uploaded: usize,
    pub bytes_uploaded: u64,
    pub referrers_pushed: usize,
    /// The app's signatures verified before loading (`--trust-cert`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<crate::verify::Verified>,
    pub seconds: f64,
}

/// Checks the bundle at `settings.archive`, then pushes every item into `settings.registry`,
/// the bundle's own manifest last (so a bundle listed in the registry is whole there).
pub async fn push(settings: &PushSettings, out: &Output) -> anyhow::Result<PushReport> {
    let started = Instant::now();
    let dir = crate::interrupt::temp_dir()?;
    let layout = archive::unpack(&settings.archive, dir.path())?;
    let (own, contents) = Contents::read(&layout, &settings.archive)?;
    let shown = settings.archive.display();
    if let Some(wanted) = settings.digest.as_ref().filter(|d| **d != own.digest) {
        return Err(crate::bad_input!(
            "{shown} is bundle {}, not the {wanted} --digest names: it is another bundle, or changed on the way",
            own.digest
        ));
    }
    check(&layout, &contents, &own).map_err(|e| {
        crate::bad_input!(
            "{shown} is damaged, nothing was loaded: {e:#}; carry the bundle across again"
        )
    })?;
    check_app_target(&contents, &settings.registry)?;
    let verified = match &settings.trust {
        Some(policy) => Some(verify_app(settings, &contents, policy, out).await?),
        None => None,
    };
    out.info(format!(
        "{shown}: bundle {} checked, {} items; loading into {}",
        own.digest,
        contents.items.len(),
        settings.registry
    ));
    let total: u64 = contents.items.iter().map(|i| i.bytes).sum();
    let mut progress = Progress::new(out.progress(), total);
    let reports: Vec<crate::registry::push_tree::TreeReport> = stream::iter(&contents.items)
        .map(|item| {
            let (layout, progress) = (&layout, &progress);
            async move {
                let root = Descriptor::new(&item.media_type, item.digest.clone(), 0);
                push_item(layout, &root, item, settings, progress, out).await
            }
        })
        .buffer_unordered(JOBS)
        .try_collect()
        .await?;
    let bundle = Item {
        kind: Kind::Image,
        part: "bundle".into(),
        name: crate::install::mirror::BUNDLE.into(),
        tag: super::contents::TAG.into(),
        digest: own.digest.clone(),
        media_type: own.media_type.clone(),
        bytes: own.size,
        source: String::new(),
        upstream_digest: None,
        referrers: 0,
    };
    push_item(&layout, &own, &bundle, settings, &progress, out).await?;
    progress.finish();
    Ok(PushReport {
        registry: settings.registry.clone(),
        digest: own.digest.to_string(),
        items: contents.items.len(),
        pushed: reports.iter().filter(|r| !r.present).count(),
        blobs_uploaded: reports.iter().map(|r| r.blobs_uploaded).sum(),
        bytes_uploaded: reports.iter().map(|r| r.bytes_uploaded).sum(),
        referrers_pushed: reports.iter().map(|r| r.referrers_pushed).sum(),
        verified,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn push_item(
    layout: &Layout,
    root: &Descriptor,
    item: &Item,
    settings: &PushSettings,
    progress: &Progress,
    out: &Output,
) -> anyhow::Result<crate::registry::push_tree::TreeReport> {
    let target = RegistryRef::parse(&format!("{}/{}", settings.registry, item.reference()))?;
    let (mut client, options) =
        crate::publish::registry_client(&target, &settings.transport, None, out).await?;
    let root = Descriptor {
        size: std::fs::metadata(layout.blob_path(&root.digest))?.len(),
        ..root.clone()
    };
    let report = push_tree(layout, &root, &item.tag, &mut client, &options, progress).await?;
    if !report.present {
        out.info(format!("loaded {target} ({})", item.digest));
    }
    Ok(report)
}

/// The whole bundle checked: every blob hashes to its name, the index lists exactly the items
/// (by digest) with the artifacts about them, and every manifest's blobs are there.
fn check(layout: &Layout, contents: &Contents, own: &Descriptor) -> anyhow::Result<()> {
    let blobs_dir = layout.root().join("blobs").join("sha256");
    let mut present = BTreeSet::new();
    for entry in std::fs::read_dir(&blobs_dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        let mut file = std::fs::File::open(entry.path())?;
        let mut hasher = sha2::Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        if hex::encode(hasher.finalize()) != name {
            anyhow::bail!("blob {name} does not hash to its name");
        }
        present.insert(name);
    }
    let index = layout.index()?;
    let mut reachable: BTreeSet<Digest> = BTreeSet::from([own.digest.clone()]);
    for item in &contents.items {
        let listed = index.iter().any(|d| {
            d.digest == item.digest
                && d.annotations.get(REF_NAME_ANNOTATION) == Some(&item.reference())
        });
        if !listed {
            anyhow::bail!(
                "its index does not list {} as {}",
                item.reference(),
                item.digest
            );
        }
        reachable.insert(item.digest.clone());
    }
    // Artifacts about what is reachable are reachable, and so on.
    loop {
        let before = reachable.len();
        for descriptor in index.iter().filter(|d| d.artifact_type.is_some()) {
            let manifest = layout.read_blob(&descriptor.digest)?;
            let subject: Option<Descriptor> =
                serde_json::from_slice::<serde_json::Value>(&manifest)
                    .ok()
                    .and_then(|m| serde_json::from_value(m["subject"].clone()).ok());
            if subject.is_some_and(|s| reachable_tree(layout, &reachable, &s.digest)) {
                reachable.insert(descriptor.digest.clone());
            }
        }
        if reachable.len() == before {
            break;
        }
    }
    for descriptor in &index {
        if !reachable.contains(&descriptor.digest) {
            anyhow::bail!(
                "its index lists {}, which its contents do not name",
                descriptor.digest
            );
        }
        check_tree(layout, &descriptor.digest, &present)?;
    }
    Ok(())
}

/// Whether `digest` is one of `roots` or a manifest an index among them lists.
fn reachable_tree(layout: &Layout, roots: &BTreeSet<Digest>, digest: &Digest) -> bool {
    roots.contains(digest)
        || roots.iter().any(|root| {
            (layout.read_blob(root).ok())
                .and_then(|bytes| children(&bytes).ok())
                .is_some_and(|c| c.iter().any(|c| c.digest == *digest))
        })
}

/// The manifest `digest` and everything it names are in the bundle.
fn check_tree(layout: &Layout, digest: &Digest, present: &BTreeSet<String>) -> anyhow::Result<()> {
    if !present.contains(digest.hex()) {
        anyhow::bail!("it lacks the manifest {digest}");
    }
    let bytes = layout.read_blob(digest)?;
    for blob in blobs(&bytes)? {
        if !present.contains(blob.digest.hex()) {
            anyhow::bail!("it lacks blob {} of manifest {digest}", blob.digest);
        }
    }
    for child in children(&bytes)? {
        check_tree(layout, &child.digest, present)?;
    }
    Ok(())
}

/// An app whose deploy artifact pins its image at another registry cannot run from this one.
fn check_app_target(contents: &Contents, registry: &str) -> anyhow::Result<()> {
    for app in contents.items.iter().filter(|i| i.kind == Kind::App) {
        let deployed = contents
            .items
            .iter()
            .any(|i| i.kind == Kind::Deploy && i.part == app.part);
        let here = format!("{registry}/{}", app.name);
        if deployed && app.source != here {
            return Err(crate::bad_input!(
                "the bundle's deploy artifact for {} runs {}@…, but the bundle goes to {registry}; export the app with --with-deploy {here} and create the bundle again, or push it to the registry it names",
                app.part,
                app.source
            ));
        }
    }
    Ok(())
}

/// The app's signatures verified under `policy`, from the bundle itself.
async fn verify_app(
    settings: &PushSettings,
    contents: &Contents,
    policy: &crate::attest::notation::TrustPolicy,
    out: &Output,
) -> anyhow::Result<crate::verify::Verified> {
    let Some(app) = contents.items.iter().find(|i| i.kind == Kind::App) else {
        return Err(crate::bad_input!(
            "--trust-cert: {} carries no app to verify",
            settings.archive.display()
        ));
    };
    let subject = crate::verify::Subject::Archive {
        file: settings.archive.clone(),
        image: Some(app.reference()),
    };
    let report = crate::verify::verify(&subject, policy, &settings.transport, out).await?;
    let verified = report.require()?;
    out.info(report.lines());
    Ok(verified)
}

/// Copies the app of the oci-archive `archive` (`spin-aks export`, with its deploy artifacts
/// and the artifacts about them) into `layout`: its items and those artifacts.
pub fn carry_app(archive: &Path, layout: &Layout) -> anyhow::Result<(Vec<Item>, Vec<Descriptor>)> {
    let dir = crate::interrupt::temp_dir()?;
    let app = archive::unpack(archive, dir.path())?;
    let (named, deploy_tags) = crate::publish::image_and_carried(&app)?;
    let (image, manifest) = app.image(named.as_deref())?;
    let title = manifest
        .annotations
        .get("org.opencontainers.image.title")
        .cloned();
    let title = title.unwrap_or_else(|| "app".into());
    let tag =
        (image.annotations.get(REF_NAME_ANNOTATION).cloned()).unwrap_or_else(|| "latest".into());
    // Where the deploy artifact runs the image: `host/path@<digest>`, else `apps/<name>`.
    let pinned = deploy_tags
        .first()
        .map(|t| pinned_repository(&app, t, &image.digest))
        .transpose()?
        .flatten();
    let (name, source) = match &pinned {
        Some(repository) => {
            let path = repository
                .split_once('/')
                .map(|(_, p)| p.to_string())
                .unwrap_or_default();
            (path, repository.clone())
        }
        None => (format!("apps/{title}"), archive.display().to_string()),
    };
    for entry in std::fs::read_dir(app.root().join("blobs").join("sha256"))? {
        let entry = entry?;
        let target = layout
            .root()
            .join("blobs")
            .join("sha256")
            .join(entry.file_name());
        if !target.exists() {
            std::fs::copy(entry.path(), target)?;
        }
    }
    let item = |kind, name: String, tag: String, d: &Descriptor| Item {
        kind,
        part: title.clone(),
        name,
        tag,
        digest: d.digest.clone(),
        media_type: d.media_type.clone(),
        bytes: d.size,
        source: source.clone(),
        upstream_digest: None,
        referrers: 0,
    };
    let mut items = vec![item(Kind::App, name.clone(), tag, &image)];
    for deploy in &deploy_tags {
        let (descriptor, _) = app.image(Some(deploy))?;
        let env = deploy
            .trim_start_matches(crate::publish::CARRIED_PREFIX)
            .to_string();
        items.push(item(
            Kind::Deploy,
            format!("{name}-deploy"),
            env,
            &descriptor,
        ));
    }
    let about: Vec<Descriptor> = app
        .index()?
        .into_iter()
        .filter(|d| d.artifact_type.is_some())
        .collect();
    items[0].referrers = about.len();
    Ok((items, about))
}

/// The repository the deploy artifact `tag` runs `digest` from, if it names one.
fn pinned_repository(app: &Layout, tag: &str, digest: &Digest) -> anyhow::Result<Option<String>> {
    let (_, manifest) = app.image(Some(tag))?;
    let Some(layer) = manifest.layers.first() else {
        return Ok(None);
    };
    let files = crate::oci::flux_artifact::read_layer(&app.read_blob(&layer.digest)?)?;
    let needle = format!("@{digest}");
    for text in files
        .values()
        .map(|f| String::from_utf8_lossy(f).to_string())
    {
        if let Some(at) = text.find(&needle) {
            let start = text[..at]
                .rfind(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                .map_or(0, |i| i + 1);
            return Ok(Some(text[start..at].to_string()));
        }
    }
    Ok(None)
}

/// Deletes the blobs no manifest of the index reaches (what a previous bundle held).
pub fn remove_unreachable(layout: &Layout) -> anyhow::Result<usize> {
    let mut keep = BTreeSet::new();
    let mut todo: Vec<Digest> = layout.index()?.into_iter().map(|d| d.digest).collect();
    while let Some(digest) = todo.pop() {
        if !keep.insert(digest.hex().to_string()) {
            continue;
        }
        let bytes = layout.read_blob(&digest)?;
        for blob in blobs(&bytes).unwrap_or_default() {
            keep.insert(blob.digest.hex().to_string());
        }
        todo.extend(
            children(&bytes)
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.digest),
        );
    }
    let mut removed = 0;
    for entry in std::fs::read_dir(layout.root().join("blobs").join("sha256"))? {
        let entry = entry?;
        if !keep.contains(entry.file_name().to_string_lossy().as_ref()) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}
