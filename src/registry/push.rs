//! Pushing an OCI layout: nothing more when the target already has the manifest; else blobs (HEAD
//! unless the repository looks new, else mount, else an upload; `jobs` at a time), then the manifest.

use std::collections::BTreeSet;

use futures_util::{stream, StreamExt, TryStreamExt};
use serde::Serialize;

use super::client::upload::{BlobFile, MountOutcome, SMALL_BLOB};
use super::client::{ManifestBlobUnknown, RegistryClient};
use super::progress::PushProgress;
use super::source::BlobSource;
use crate::oci::media_types::IMAGE_INDEX;
use crate::oci::reference::RegistryRef;
use crate::oci::{Descriptor, Digest, Layout};

/// How to push.
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// Blobs in flight at once.
    pub jobs: usize,
    /// A repository on the same registry this app was pushed to, to mount blobs from.
    pub mount_from: Option<String>,
    /// Bars, plain lines or nothing on stderr.
    pub progress: crate::output::ProgressMode,
}

/// What a push did: the JSON of `push --output json` (docs/cli.md), plus whether the manifest was sent.
#[derive(Clone, Debug, Serialize)]
pub struct PushReport {
    pub reference: RegistryRef,
    pub digest: Digest,
    /// `registry/repository@sha256:…`: what apply deploys.
    pub pinned: RegistryRef,
    pub blobs_uploaded: usize,
    pub blobs_skipped: usize,
    pub blobs_mounted: usize,
    pub bytes_uploaded: u64,
    /// Requests tried again after a transient failure (throttling, 5xx, a dropped connection).
    pub retries: usize,
    /// The artifacts about the image pushed beside it (signatures, SBOM, provenance), and
    /// artifacts about those; each says whether the registry lacked it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<ReferrerReport>,
    #[serde(skip)]
    pub manifest_put: bool,
}

/// One artifact about the image (or about another artifact), as pushed.
#[derive(Clone, Debug, Serialize)]
pub struct ReferrerReport {
    pub artifact_type: String,
    pub digest: Digest,
    /// The digest of the manifest it is about.
    pub subject: Digest,
    /// False when the registry already listed it: nothing was sent.
    pub pushed: bool,
}

pub(super) enum BlobOutcome {
    Skipped,
    Mounted,
    Uploaded(u64),
}

/// Pushes the layout's image (the one named `image`, or its only one) to `target` (whose tag, if
/// any, names it) through `client`.
///
/// The manifest is asked about first, and when the target already has it under that tag (or
/// digest) that one HEAD is the whole push. That is sound: a registry holds a manifest only with
/// every blob it names — a conforming one refuses a manifest PUT naming a blob it lacks
/// (`MANIFEST_BLOB_UNKNOWN`, distribution spec "Pushing Manifests"; docker-registry checks each
/// layer and the config before storing it) and garbage collection keeps what a manifest
/// references. A blob deleted by hand behind a live manifest is a broken registry that a push does
/// not audit; once the manifest is gone too (or under a new tag) every blob is checked again and
/// what is missing is uploaded.
pub async fn push_layout(
    layout: &Layout,
    image: Option<&str>,
    target: &RegistryRef,
    client: &mut RegistryClient,
    options: &PushOptions,
) -> anyhow::Result<PushReport> {
    let (descriptor, manifest) = layout.image(image)?;
    let manifest_bytes = layout.manifest(&descriptor)?;
    let mut seen = BTreeSet::new();
    let blobs: Vec<&Descriptor> = manifest
        .blobs()
        .filter(|blob| seen.insert(blob.digest.clone()))
        .collect();
    for blob in &blobs {
        layout.blob(blob)?;
    }
    let digest = descriptor.digest.clone();
    let manifest_reference = target
        .tag()
        .map_or_else(|| digest.to_string(), str::to_string);
    let current = client.first_manifest_digest(&manifest_reference).await?;
    let already_there = current.as_ref() == Some(&digest);
    let client = &*client;
    let outcomes: Vec<BlobOutcome> = if already_there {
        blobs.iter().map(|_| BlobOutcome::Skipped).collect()
    } else {
        let known = match current {
            None => presence_known(client, &blobs).await?,
            Some(_) => vec![None; blobs.len()],
        };
        let mut progress = PushProgress::new(options.progress, blobs.iter().map(|b| b.size).sum());
        let mut outcomes = send_blobs(layout, client, &blobs, known, options, &progress).await?;
        let put = || {
            client.put_manifest(
                &manifest_reference,
                manifest.media_type.as_deref(),
                &manifest_bytes,
            )
        };
        if let Err(refused) = put().await {
            if !refused.chain().any(|e| e.is::<ManifestBlobUnknown>()) {
                return Err(refused);
            }
            // A blob found present (or taken to be absent and sent) is gone by the time the
            // manifest came: every blob is asked about again, what is missing sent, and the
            // manifest sent once more.
            tracing::info!("{refused:#}; asking for every blob again");
            let known = vec![None; blobs.len()];
            let again = send_blobs(layout, client, &blobs, known, options, &progress).await?;
            for (outcome, retried) in outcomes.iter_mut().zip(again) {
                if !matches!(retried, BlobOutcome::Skipped) {
                    *outcome = retried;
                }
            }
            put().await?;
        }
        progress.finish();
        outcomes
    };
    let referrers = push_referrers(layout, client, &digest, options).await?;
    let mut report = PushReport {
        reference: target.clone(),
        pinned: target.pinned(&digest),
        referrers,
        digest,
        blobs_uploaded: 0,
        blobs_skipped: 0,
        blobs_mounted: 0,
        bytes_uploaded: 0,
        retries: client.retries(),
        manifest_put: !already_there,
    };
    for outcome in outcomes {
        match outcome {
            BlobOutcome::Skipped => report.blobs_skipped += 1,
            BlobOutcome::Mounted => report.blobs_mounted += 1,
            BlobOutcome::Uploaded(bytes) => {
                report.blobs_uploaded += 1;
                report.bytes_uploaded += bytes;
            }
        }
    }
    Ok(report)
}

/// Pushes the layout's artifacts about `image`, then those about each of them (a signature of
/// the provenance), asking the registry once per subject which it lists: its referrers API
/// where it has one, else the referrers tag schema, an index tagged `sha256-<hex>` that this
/// push then extends (distribution spec v1.1, "Pushing Manifests with Subject" and "Referrers
/// Tag Schema"). Artifacts the registry lists already are not sent again.
pub(super) async fn push_referrers(
    layout: &dyn BlobSource,
    client: &RegistryClient,
    image: &Digest,
    options: &PushOptions,
) -> anyhow::Result<Vec<ReferrerReport>> {
    let mut reports = Vec::new();
    let mut subjects = vec![image.clone()];
    while let Some(subject) = subjects.pop() {
        let local = layout.referrers(&subject)?;
        if local.is_empty() {
            continue;
        }
        let (api, mut listed) = match client.referrers(&subject).await? {
            Some(index) => (true, index_entries(&index)?),
            None => match client.find_manifest(&tag_schema(&subject)).await? {
                Some((index, _)) => (false, index_entries(&index)?),
                None => (false, Vec::new()),
            },
        };
        let mut added = false;
        for (descriptor, manifest) in local {
            subjects.push(descriptor.digest.clone());
            let known = listed
                .iter()
                .any(|entry| entry["digest"] == descriptor.digest.to_string());
            if !known {
                let bytes = layout.manifest(&descriptor)?;
                let progress = PushProgress::new(crate::output::ProgressMode::Off, 0);
                for blob in manifest.blobs() {
                    push_blob(
                        layout,
                        client,
                        blob,
                        options.mount_from.as_deref(),
                        &progress,
                        None,
                    )
                    .await?;
                }
                let indexed = client
                    .put_manifest(
                        &descriptor.digest.to_string(),
                        manifest.media_type.as_deref(),
                        &bytes,
                    )
                    .await?;
                if !api && !indexed {
                    listed.push(serde_json::to_value(&descriptor)?);
                    added = true;
                }
            }
            reports.push(ReferrerReport {
                artifact_type: descriptor.artifact_type.clone().unwrap_or_default(),
                digest: descriptor.digest,
                subject: subject.clone(),
                pushed: !known,
            });
        }
        if added {
            let index = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": IMAGE_INDEX,
                "manifests": listed,
            });
            let bytes = crate::oci::json::to_canonical_vec(&index)?;
            client
                .put_manifest(&tag_schema(&subject), Some(IMAGE_INDEX), &bytes)
                .await?;
        }
    }
    Ok(reports)
}

/// The referrers tag schema's tag for `subject`: `sha256-<hex>`.
pub fn tag_schema(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// The `manifests` of an image index the registry returned (kept as JSON: another tool's
/// entries are put back as they were).
fn index_entries(bytes: &[u8]) -> anyhow::Result<Vec<serde_json::Value>> {
    let index: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| anyhow::anyhow!("the registry's referrers index is not JSON: {e}"))?;
    Ok(match index.get("manifests") {
        Some(serde_json::Value::Array(entries)) => entries.clone(),
        _ => Vec::new(),
    })
}

/// Sends `blobs` (each unless `known` present, else asked about first), `jobs` at a time; each
/// blob's outcome, in their order.
async fn send_blobs(
    layout: &Layout,
    client: &RegistryClient,
    blobs: &[&Descriptor],
    known: Vec<Option<bool>>,
    options: &PushOptions,
    progress: &PushProgress,
) -> anyhow::Result<Vec<BlobOutcome>> {
    let mount_from = options.mount_from.as_deref();
    let mut sent: Vec<(usize, BlobOutcome)> = stream::iter(blobs.iter().zip(known).enumerate())
        .map(|(i, (blob, present))| async move {
            let outcome = push_blob(layout, client, blob, mount_from, progress, present).await?;
            anyhow::Ok((i, outcome))
        })
        .buffer_unordered(options.jobs.max(1))
        .try_collect()
        .await?;
    sent.sort_by_key(|(i, _)| *i);
    Ok(sent.into_iter().map(|(_, outcome)| outcome).collect())
}

/// What is known, before any blob is sent to a repository that lacks the tag, of whether it holds
/// each blob: `Some` for the blobs already asked about or taken to be absent, `None` for those to
/// ask about (a HEAD) when their turn comes.
///
/// The small blobs (up to [`SMALL_BLOB`]) are taken to be absent, and sent without a HEAD, when
/// the repository looks new: the registry lists no tag in it, and the first two small blobs in
/// push order are absent (asked at the same time as the tag list). A push sends blobs in that
/// order, `jobs` at a time, so one cut short — whose blobs an untagged repository may hold —
/// has stored the first ones first; a new tag in a repository with tags finds the tag list
/// non-empty. The guess can still be wrong (images pushed by digest alone, another tool's
/// interrupted push): that costs only redundant uploads of small blobs, which a registry accepts
/// (distribution's commit finds the blob present and only links it), while large blobs are
/// always asked about first. It is not worth its two requests below four small blobs.
async fn presence_known(
    client: &RegistryClient,
    blobs: &[&Descriptor],
) -> anyhow::Result<Vec<Option<bool>>> {
    let mut known = vec![None; blobs.len()];
    let small: Vec<usize> = (0..blobs.len())
        .filter(|&i| blobs[i].size <= SMALL_BLOB)
        .collect();
    let [first, second, rest @ ..] = small.as_slice() else {
        return Ok(known);
    };
    if rest.len() < 2 {
        return Ok(known);
    }
    let deadline = client.retry_policy().deadline();
    let (tags, first_present, second_present) = tokio::join!(
        client.has_tags(),
        client.blob_exists(&blobs[*first].digest, deadline),
        client.blob_exists(&blobs[*second].digest, deadline),
    );
    let (first_present, second_present) = (first_present?, second_present?);
    known[*first] = Some(first_present);
    known[*second] = Some(second_present);
    if tags == Some(false) && !first_present && !second_present {
        for &i in rest {
            known[i] = Some(false);
        }
    }
    Ok(known)
}

/// Sends one blob unless the repository holds it (`present`, else asked with a HEAD): mounted
/// from `mount_from`, or uploaded.
pub(super) async fn push_blob(
    layout: &dyn BlobSource,
    client: &RegistryClient,
    blob: &Descriptor,
    mount_from: Option<&str>,
    progress: &PushProgress,
    present: Option<bool>,
) -> anyhow::Result<BlobOutcome> {
    let digest = &blob.digest;
    let deadline = client.retry_policy().deadline();
    let present = match present {
        Some(present) => present,
        None => client.blob_exists(digest, deadline).await?,
    };
    if present {
        progress.skipped(blob.size);
        return Ok(BlobOutcome::Skipped);
    }
    let session = match mount_from {
        Some(source) => match client.mount_blob(digest, source, deadline).await {
            Ok(MountOutcome::Mounted) => {
                progress.mounted(blob.size);
                return Ok(BlobOutcome::Mounted);
            }
            Ok(MountOutcome::Upload(location)) => Some(location),
            // A mount is an optimisation: whatever went wrong, a plain upload may still work.
            Err(err) => {
                tracing::debug!("mounting {digest} from {source} failed ({err:#}); uploading");
                None
            }
        },
        None => None,
    };
    let (path, start) = layout.blob(blob)?;
    let bar = progress.blob(digest, blob.size);
    let file = BlobFile {
        digest,
        size: blob.size,
        path: &path,
        start,
    };
    client.upload_blob(file, session, &bar, deadline).await?;
    bar.finish();
    progress.uploaded();
    Ok(BlobOutcome::Uploaded(blob.size))
}
