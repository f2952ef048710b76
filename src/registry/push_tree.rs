//! Pushes any manifest of a layout (or archive) under a tag (an image, an artifact, or an index
//! with the images it lists) and the artifacts about each. `bundle push` loads a mirror with it.

use futures_util::{stream, StreamExt, TryStreamExt};
use serde_json::Value;

use super::client::RegistryClient;
use super::progress::PushProgress;
use super::push::{push_blob, push_referrers, BlobOutcome, PushOptions};
use super::source::BlobSource;
use crate::oci::{Descriptor, Digest};

/// What pushing one tree did.
#[derive(Clone, Debug, Default)]
pub struct TreeReport {
    /// The registry had the tag at this digest already: only the artifacts were checked.
    pub present: bool,
    pub blobs_uploaded: usize,
    pub blobs_skipped: usize,
    pub bytes_uploaded: u64,
    pub manifests_put: usize,
    pub referrers_pushed: usize,
}

/// Pushes the manifest `root` of `source` as `tag` through `client` (its repository), where
/// the registry's tag names `current` (from the caller's first request,
/// [`RegistryClient::first_manifest_digest`]): nothing when that is `root` already; else each
/// image an index lists first (by digest, skipped when present), then `root`. Then the artifacts
/// about every manifest of the tree. `blobs_sent`: the caller sent the tree's blobs already
/// ([`send_blob`]), so only manifests go.
#[allow(clippy::too_many_arguments)]
pub async fn push_tree(
    source: &dyn BlobSource,
    root: &Descriptor,
    tag: &str,
    client: &RegistryClient,
    current: Option<&Digest>,
    blobs_sent: bool,
    options: &PushOptions,
    progress: &PushProgress,
) -> anyhow::Result<TreeReport> {
    let bytes = source.manifest(root)?;
    let children = children(&bytes)?;
    let mut report = TreeReport {
        present: current == Some(&root.digest),
        ..TreeReport::default()
    };
    if !report.present {
        for child in &children {
            let child_bytes = source.manifest(child)?;
            if client.has_manifest(&child.digest).await? {
                continue;
            }
            if !blobs_sent {
                push_blobs(source, client, &child_bytes, options, progress, &mut report).await?;
            }
            let media_type = media_type(&child_bytes).or(Some(child.media_type.clone()));
            client
                .put_manifest(
                    &child.digest.to_string(),
                    media_type.as_deref(),
                    &child_bytes,
                )
                .await?;
            report.manifests_put += 1;
        }
        if !blobs_sent {
            push_blobs(source, client, &bytes, options, progress, &mut report).await?;
        }
        let media_type = media_type(&bytes).or(Some(root.media_type.clone()));
        client
            .put_manifest(tag, media_type.as_deref(), &bytes)
            .await?;
        report.manifests_put += 1;
    }
    let subjects = std::iter::once(&root.digest).chain(children.iter().map(|c| &c.digest));
    for subject in subjects {
        let pushed = push_referrers(source, client, subject, options).await?;
        report.referrers_pushed += pushed.iter().filter(|r| r.pushed).count();
    }
    Ok(report)
}

/// The config and layers of an image manifest, sent unless the repository holds them.
async fn push_blobs(
    source: &dyn BlobSource,
    client: &RegistryClient,
    manifest: &[u8],
    options: &PushOptions,
    progress: &PushProgress,
    report: &mut TreeReport,
) -> anyhow::Result<()> {
    let blobs = blobs(manifest)?;
    for blob in &blobs {
        source.blob(blob)?;
    }
    let outcomes: Vec<BlobOutcome> = stream::iter(&blobs)
        .map(|blob| {
            let mount_from = options.mount_from.as_deref();
            push_blob(source, client, blob, mount_from, progress, None)
        })
        .buffer_unordered(options.jobs.max(1))
        .try_collect()
        .await?;
    for outcome in outcomes {
        match outcome {
            BlobOutcome::Uploaded(bytes) => {
                report.blobs_uploaded += 1;
                report.bytes_uploaded += bytes;
            }
            BlobOutcome::Skipped | BlobOutcome::Mounted => report.blobs_skipped += 1,
        }
    }
    Ok(())
}

/// Sends one blob into `client`'s repository unless it holds it: the bytes uploaded, if any.
pub async fn send_blob(
    source: &dyn BlobSource,
    client: &RegistryClient,
    blob: &Descriptor,
    progress: &PushProgress,
) -> anyhow::Result<Option<u64>> {
    Ok(
        match push_blob(source, client, blob, None, progress, None).await? {
            BlobOutcome::Uploaded(bytes) => Some(bytes),
            BlobOutcome::Skipped | BlobOutcome::Mounted => None,
        },
    )
}

/// The blobs of the tree at `root` (an image manifest's, or those of every image an index lists).
pub fn tree_blobs(source: &dyn BlobSource, root: &Descriptor) -> anyhow::Result<Vec<Descriptor>> {
    let bytes = source.manifest(root)?;
    let mut found = blobs(&bytes)?;
    for child in children(&bytes)? {
        found.extend(tree_blobs(source, &child)?);
    }
    Ok(found)
}

/// The manifests an index lists (none for an image manifest).
pub fn children(manifest: &[u8]) -> anyhow::Result<Vec<Descriptor>> {
    let value: Value = serde_json::from_slice(manifest)?;
    match value.get("manifests") {
        Some(Value::Array(entries)) => (entries.iter())
            .map(|e| Ok(serde_json::from_value(e.clone())?))
            .collect(),
        _ => Ok(Vec::new()),
    }
}

/// The config and layers an image manifest names, each once (none for an index).
pub fn blobs(manifest: &[u8]) -> anyhow::Result<Vec<Descriptor>> {
    let value: Value = serde_json::from_slice(manifest)?;
    let mut seen = std::collections::BTreeSet::<Digest>::new();
    let mut blobs = Vec::new();
    let named =
        (value.get("config").into_iter()).chain(value["layers"].as_array().into_iter().flatten());
    for blob in named {
        let descriptor: Descriptor = serde_json::from_value(blob.clone())?;
        if seen.insert(descriptor.digest.clone()) {
            blobs.push(descriptor);
        }
    }
    Ok(blobs)
}

fn media_type(manifest: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(manifest).ok()?;
    value["mediaType"].as_str().map(str::to_string)
}
