//! Runs `bundle push`, which checks the bundle before it sends anything: its index against its
//! contents, every manifest and blob to send against its digest, and the app's signatures if asked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use futures_util::{stream, StreamExt, TryStreamExt};
use serde::Serialize;

use super::archive::Archive;
use super::contents::{Contents, Item, Kind};
use crate::oci::media_types::REF_NAME_ANNOTATION;
use crate::oci::reference::RegistryRef;
use crate::oci::{Descriptor, Digest, ImageManifest};
use crate::output::Output;
use crate::push::{RegistryConnection, RegistrySettings};
use crate::registry::client::RegistryClient;
use crate::registry::progress::PushProgress;
use crate::registry::push::PushOptions;
use crate::registry::push_tree::{children, push_tree, send_blob, tree_blobs, TreeReport};

/// Parts loaded at once.
const JOBS: usize = 4;

/// `bundle push`'s arguments, validated (made by `cli`).
#[derive(Clone, Debug)]
pub struct BundlePushSettings {
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
pub struct BundlePushReport {
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
    pub verified: Option<crate::verify::VerifiedImage>,
    pub seconds: f64,
}

/// Checks the bundle at `settings.archive` (read in place), asks the registry which items it
/// holds, hashes every blob it is about to send, and only then pushes what the registry lacks,
/// the bundle's own manifest last (so a bundle listed in the registry is whole there).
pub async fn push(settings: &BundlePushSettings, out: &Output) -> anyhow::Result<BundlePushReport> {
    let started = Instant::now();
    let archive = Archive::open(&settings.archive)?;
    let shown = settings.archive.display();
    let read = |d: &Digest| archive.read_blob(d);
    let (own, contents) = Contents::read_from(archive.index(), &read, &settings.archive)?;
    if let Some(wanted) = settings.digest.as_ref().filter(|d| **d != own.digest) {
        return Err(crate::bad_input!(
            "{shown} is bundle {}, not the {wanted} --digest names: it is another bundle, or changed on the way",
            own.digest
        ));
    }
    let damaged = |e: anyhow::Error| {
        crate::bad_input!(
            "{shown} is damaged, nothing was loaded: {e:#}; carry the bundle across again"
        )
    };
    let blobs_of = check(&archive, &contents, &own).map_err(damaged)?;
    check_app_target(&contents, &settings.registry)?;
    let verified = match &settings.trust {
        Some(policy) => Some(verify_app(settings, &contents, policy, out).await?),
        None => None,
    };
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
    // What the registry holds of each item: one request each.
    let items: Vec<&Item> = contents.items.iter().chain([&bundle]).collect();
    let host = RegistryRef::parse(&format!("{}/bundle", settings.registry))?;
    let connection = RegistryConnection::open(host.registry(), &settings.transport).await?;
    let asked: Vec<Target> = stream::iter(&items)
        .map(|item| target(item, settings, &connection, out))
        .buffered(JOBS * 2)
        .try_collect()
        .await?;
    // Every blob about to be sent hashed where it lies, before anything is.
    let missing: Vec<&Target> = asked.iter().filter(|t| !t.present).collect();
    let to_send: BTreeSet<&Digest> = (missing.iter())
        .flat_map(|t| blobs_of.get(&t.item.digest).into_iter().flatten())
        .collect();
    verify_all(&archive, &to_send).map_err(damaged)?;
    out.info(format!(
        "{shown}: bundle {} checked, {} of {} items to load into {}",
        own.digest,
        missing.len(),
        items.len(),
        settings.registry
    ));
    let total: u64 = missing.iter().map(|t| t.item.bytes).sum();
    let mut progress = PushProgress::new(out.progress(), total);
    // Every blob to send, the largest first, in one pool: the registry stays busy to the end.
    let mut blobs: Vec<(&Target, Descriptor)> = Vec::new();
    for target in &missing {
        let root = Descriptor::new(&target.item.media_type, target.item.digest.clone(), 0);
        let mut seen = BTreeSet::new();
        for blob in tree_blobs(&archive, &root)? {
            if seen.insert(blob.digest.clone()) {
                blobs.push((target, blob));
            }
        }
    }
    blobs.sort_by_key(|(_, blob)| std::cmp::Reverse(blob.size));
    let sent: Vec<Option<u64>> = stream::iter(&blobs)
        .map(|(target, blob)| send_blob(&archive, &target.client, blob, &progress))
        .buffer_unordered(settings.transport.jobs.max(1))
        .try_collect()
        .await?;
    let (last, first) = asked
        .split_last()
        .expect("the bundle's own manifest is asked about");
    let reports: Vec<TreeReport> = stream::iter(first)
        .map(|target| push_item(&archive, target, &progress, out))
        .buffer_unordered(JOBS)
        .try_collect()
        .await?;
    push_item(&archive, last, &progress, out).await?;
    progress.finish();
    Ok(BundlePushReport {
        registry: settings.registry.clone(),
        digest: own.digest.to_string(),
        items: contents.items.len(),
        pushed: reports.iter().filter(|r| !r.present).count(),
        blobs_uploaded: sent.iter().flatten().count(),
        bytes_uploaded: sent.iter().flatten().sum(),
        referrers_pushed: reports.iter().map(|r| r.referrers_pushed).sum(),
        verified,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Hashes each of `digests` where it lies, on as many threads as there are cores.
fn verify_all(archive: &Archive, digests: &BTreeSet<&Digest>) -> anyhow::Result<()> {
    let digests: Vec<&Digest> = digests.iter().copied().collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    let share = digests.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (digests.chunks(share))
            .map(|chunk| scope.spawn(move || chunk.iter().try_for_each(|d| archive.verify_blob(d))))
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a hashing thread failed")))
        })
    })
}

/// One item, its client, and whether the registry's tag names it already.
struct Target<'a> {
    item: &'a Item,
    reference: RegistryRef,
    client: RegistryClient,
    options: PushOptions,
    current: Option<Digest>,
    present: bool,
}

/// A client for `item`'s repository, and the digest its tag names there.
async fn target<'a>(
    item: &'a Item,
    settings: &BundlePushSettings,
    connection: &RegistryConnection<'_>,
    out: &Output,
) -> anyhow::Result<Target<'a>> {
    let reference = RegistryRef::parse(&format!("{}/{}", settings.registry, item.reference()))?;
    let (mut client, options) = connection.client(&reference, None, out)?;
    let current = client.first_manifest_digest(&item.tag).await?;
    let present = current.as_ref() == Some(&item.digest);
    Ok(Target {
        item,
        reference,
        client,
        options,
        current,
        present,
    })
}

async fn push_item(
    archive: &Archive,
    target: &Target<'_>,
    progress: &PushProgress,
    out: &Output,
) -> anyhow::Result<TreeReport> {
    let item = target.item;
    let root = Descriptor::new(&item.media_type, item.digest.clone(), 0);
    let (client, options) = (&target.client, &target.options);
    let current = target.current.as_ref();
    let report = push_tree(
        archive, &root, &item.tag, client, current, true, options, progress,
    )
    .await?;
    if !report.present {
        out.info(format!("loaded {} ({})", target.reference, item.digest));
    }
    Ok(report)
}

/// The bundle's structure checked: the index lists exactly the items (by digest) and the
/// artifacts about them, and every blob a manifest names is there at its size. Each manifest
/// read is checked against its digest; the blobs of each item (its trees' and its artifacts')
/// are returned by the item's digest, to be hashed before they are sent.
fn check(
    archive: &Archive,
    contents: &Contents,
    own: &Descriptor,
) -> anyhow::Result<BTreeMap<Digest, BTreeSet<Digest>>> {
    let index = archive.index();
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
    }
    let mut blobs_of = BTreeMap::new();
    let mut trees: BTreeMap<Digest, Digest> = BTreeMap::new(); // manifest → the item it belongs to
    let roots = (contents.items.iter().map(|i| &i.digest)).chain([&own.digest]);
    for root in roots {
        let mut blobs = BTreeSet::new();
        tree(archive, root, root, &mut blobs, &mut trees)?;
        blobs_of.insert(root.clone(), blobs);
    }
    // Artifacts about a manifest of an item are that item's, and so on.
    let artifacts: Vec<&Descriptor> = index.iter().filter(|d| d.artifact_type.is_some()).collect();
    loop {
        let mut added = false;
        for descriptor in &artifacts {
            if trees.contains_key(&descriptor.digest) {
                continue;
            }
            let manifest: ImageManifest =
                serde_json::from_slice(&archive.read_blob(&descriptor.digest)?)?;
            let owner = manifest.subject.and_then(|s| trees.get(&s.digest).cloned());
            if let Some(owner) = owner {
                let mut blobs = BTreeSet::new();
                tree(archive, &descriptor.digest, &owner, &mut blobs, &mut trees)?;
                blobs_of.entry(owner).or_default().extend(blobs);
                added = true;
            }
        }
        if !added {
            break;
        }
    }
    for descriptor in index {
        if !trees.contains_key(&descriptor.digest) {
            anyhow::bail!(
                "its index lists {}, which its contents do not name",
                descriptor.digest
            );
        }
    }
    Ok(blobs_of)
}

/// Walks the manifest `digest` of item `owner`: its blobs (checked present) into `blobs`, each
/// manifest of the tree into `trees`.
fn tree(
    archive: &Archive,
    digest: &Digest,
    owner: &Digest,
    blobs: &mut BTreeSet<Digest>,
    trees: &mut BTreeMap<Digest, Digest>,
) -> anyhow::Result<()> {
    let bytes = archive.read_blob(digest)?;
    trees.insert(digest.clone(), owner.clone());
    for blob in crate::registry::push_tree::blobs(&bytes)? {
        if !archive.has(&blob.digest, blob.size) {
            anyhow::bail!("it lacks blob {} of manifest {digest}", blob.digest);
        }
        blobs.insert(blob.digest);
    }
    for child in children(&bytes)? {
        tree(archive, &child.digest, owner, blobs, trees)?;
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
    settings: &BundlePushSettings,
    contents: &Contents,
    policy: &crate::attest::notation::TrustPolicy,
    out: &Output,
) -> anyhow::Result<crate::verify::VerifiedImage> {
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
