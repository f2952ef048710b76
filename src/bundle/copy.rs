//! Copies an image (or chart) by digest into a layout, from its registry or a mirror that
//! containers-registries.conf names: the platforms asked for, and the signatures about it.

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::Context;
use futures_util::{stream, StreamExt, TryStreamExt};
use serde_json::Value;

use crate::oci::media_types::{IMAGE_INDEX, IMAGE_MANIFEST};
use crate::oci::{Descriptor, Digest, Layout};
use crate::registry::client::RegistryClient;
use crate::registry::mirrors::Mirrors;
use crate::registry::pull::{pull_client, RETRY_BUDGET};
use crate::registry::push::tag_schema;
use crate::retry::RetryPolicy;

/// Docker's manifest list, the index of images built before OCI's.
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The tags cosign stores its signatures, attestations and SBOMs under, beside the image.
const COSIGN_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];
/// Blobs fetched at once per image.
const JOBS: usize = 4;

/// A platform asked for, `linux/<arch>` (Go's names: `amd64`, `arm64`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)
    }
}

/// What one copy wrote into the layout.
#[derive(Clone, Debug)]
pub struct Copied {
    /// The manifest (or index) now in the layout.
    pub root: Descriptor,
    /// The publisher's index, when only some of its platforms were kept (a new index then).
    pub upstream: Option<Digest>,
    /// Where it was copied from: `host/path:tag`.
    pub source: String,
    /// Bytes of every manifest and blob it names.
    pub bytes: u64,
    /// Bytes fetched now (0 when the layout held everything).
    pub fetched: u64,
    /// The artifacts about it (and its platform images) the registry lists, in the layout.
    pub referrers: Vec<Descriptor>,
    /// cosign's signatures and attestations, kept as tags beside it: (tag, manifest).
    pub tagged: Vec<(String, Descriptor)>,
    /// Signatures and attestations about the publisher's index that stay behind: only some of
    /// its platforms were carried, so the index they sign is not in the bundle.
    pub dropped: usize,
}

/// Copies from publishers or their mirrors into one layout.
pub struct Copier<'a> {
    pub layout: &'a Layout,
    pub mirrors: &'a Mirrors,
    pub platforms: &'a [Platform],
    pub http: reqwest::Client,
}

impl Copier<'_> {
    /// Copies `repository:tag` (`host/path`), from the first endpoint that has it.
    pub async fn copy(&self, repository: &str, tag: &str) -> anyhow::Result<Copied> {
        let endpoints = self.mirrors.endpoints(repository, false)?;
        let mut tried = Vec::new();
        for endpoint in endpoints {
            let retry = RetryPolicy::with_budget(RETRY_BUDGET);
            let client = pull_client(&endpoint.repository, endpoint.insecure, &self.http, retry);
            let found = match client.await {
                Ok(mut client) => match client.first_manifest_digest(tag).await {
                    Ok(Some(_)) => Ok(Some(client)),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match found {
                Ok(Some(client)) => {
                    let source = format!("{}:{tag}", endpoint.repository);
                    return self.copy_from(&client, tag, source).await;
                }
                Ok(None) => tried.push(format!("{}: no tag {tag}", endpoint.repository)),
                Err(e) => tried.push(format!("{}: {}", endpoint.repository, e.root_cause())),
            }
        }
        anyhow::bail!(
            "cannot copy {repository}:{tag}: {}; name a mirror that holds it in registries.conf (--registries-conf)",
            tried.join("; ")
        )
    }

    async fn copy_from(
        &self,
        client: &RegistryClient,
        tag: &str,
        source: String,
    ) -> anyhow::Result<Copied> {
        let started = Instant::now();
        let (bytes, media_type) = client.get_manifest(tag, None).await?;
        let media_type = manifest_media_type(&bytes, media_type);
        let upstream_digest = Digest::of(&bytes);
        let mut copied = Copied {
            root: Descriptor::new(&media_type, upstream_digest.clone(), bytes.len() as u64),
            upstream: None,
            source,
            bytes: bytes.len() as u64,
            fetched: 0,
            referrers: Vec::new(),
            tagged: Vec::new(),
            dropped: 0,
        };
        let mut manifests = vec![upstream_digest.clone()];
        if is_index(&media_type) {
            let index: Value = serde_json::from_slice(&bytes).context("an index is not JSON")?;
            let children = index["manifests"].as_array().cloned().unwrap_or_default();
            let kept = self.kept(&children);
            if kept.is_empty() {
                anyhow::bail!(
                    "{} has no image for {}",
                    copied.source,
                    self.platforms
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            for child in &kept {
                let digest: Digest = serde_json::from_value(child["digest"].clone())?;
                let (total, fetched) = self.copy_manifest(client, &digest).await?;
                copied.bytes += total;
                copied.fetched += fetched;
                manifests.push(digest);
            }
            let root_bytes = if kept.len() == children.len() {
                bytes
            } else {
                let mut filtered = index.clone();
                filtered["manifests"] = Value::Array(kept);
                copied.upstream = Some(upstream_digest.clone());
                manifests.remove(0);
                crate::oci::json::to_canonical_vec(&filtered)?
            };
            let (digest, size) = self.layout.write_blob(&root_bytes)?;
            copied.root = Descriptor::new(&media_type, digest, size);
        } else {
            self.layout.write_blob(&bytes)?;
            let (total, fetched) = self.copy_blobs(client, &bytes).await?;
            copied.bytes += total;
            copied.fetched += fetched;
        }
        // What the publisher signed: the manifests kept as they are.
        for digest in &manifests {
            copied
                .referrers
                .extend(self.referrers(client, digest).await?);
        }
        for suffix in COSIGN_SUFFIXES {
            let tag = format!("{}.{suffix}", tag_schema(&upstream_digest));
            let Some((bytes, media_type)) = client.find_manifest(&tag).await? else {
                continue;
            };
            // About an index only some of whose platforms are carried: it cannot be verified
            // against what the mirror will hold.
            if copied.upstream.is_some() {
                copied.dropped += 1;
                continue;
            }
            let media_type = manifest_media_type(&bytes, media_type);
            let (digest, size) = self.layout.write_blob(&bytes)?;
            self.copy_blobs(client, &bytes).await?;
            let descriptor = Descriptor::new(&media_type, digest, size);
            copied.tagged.push((tag, descriptor));
        }
        if copied.upstream.is_some() {
            copied.dropped += self.listed_about(client, &upstream_digest).await?;
        }
        tracing::debug!("copied {} in {:?}", copied.source, started.elapsed());
        Ok(copied)
    }

    /// The entries of an index for the platforms asked for, and the attestations about them.
    fn kept(&self, children: &[Value]) -> Vec<Value> {
        let wanted = |child: &Value| {
            let platform = &child["platform"];
            self.platforms.iter().any(|p| {
                platform["os"] == p.os.as_str()
                    && platform["architecture"] == p.architecture.as_str()
            })
        };
        let kept_digests: BTreeSet<&str> = (children.iter())
            .filter(|c| wanted(c))
            .filter_map(|c| c["digest"].as_str())
            .collect();
        (children.iter())
            .filter(|c| {
                wanted(c)
                    || c["annotations"]["vnd.docker.reference.digest"]
                        .as_str()
                        .is_some_and(|d| kept_digests.contains(d))
            })
            .cloned()
            .collect()
    }

    /// Copies the manifest `digest` and its blobs; (bytes it names, bytes fetched).
    async fn copy_manifest(
        &self,
        client: &RegistryClient,
        digest: &Digest,
    ) -> anyhow::Result<(u64, u64)> {
        let (bytes, _) = client
            .get_manifest(&digest.to_string(), Some(digest))
            .await?;
        self.layout.write_blob(&bytes)?;
        let (total, fetched) = self.copy_blobs(client, &bytes).await?;
        Ok((total + bytes.len() as u64, fetched))
    }

    /// Copies the config and layers an image manifest names; (their bytes, bytes fetched).
    async fn copy_blobs(
        &self,
        client: &RegistryClient,
        manifest: &[u8],
    ) -> anyhow::Result<(u64, u64)> {
        let blobs: Vec<(Digest, u64)> = (crate::registry::push_tree::blobs(manifest)?.into_iter())
            .map(|b| (b.digest, b.size))
            .collect();
        let total = blobs.iter().map(|(_, size)| size).sum();
        let fetched: Vec<u64> =
            stream::iter(blobs)
                .map(|(digest, _)| async move {
                    client.download_blob(&digest, self.layout, &|_| {}).await
                })
                .buffer_unordered(JOBS)
                .try_collect()
                .await?;
        Ok((total, fetched.iter().sum()))
    }

    /// How many artifacts the registry lists about `subject` (its referrers API, else the tag schema).
    async fn listed_about(
        &self,
        client: &RegistryClient,
        subject: &Digest,
    ) -> anyhow::Result<usize> {
        let list = match client.referrers(subject).await? {
            Some(list) => Some(list),
            None => client
                .find_manifest(&tag_schema(subject))
                .await?
                .map(|(b, _)| b),
        };
        let list = list.and_then(|l| serde_json::from_slice::<Value>(&l).ok());
        Ok(list.map_or(0, |l| l["manifests"].as_array().map_or(0, Vec::len)))
    }

    /// The artifacts about `subject` the registry lists (its referrers API, else the tag
    /// schema), each copied with its blobs, and those about them in turn.
    async fn referrers(
        &self,
        client: &RegistryClient,
        subject: &Digest,
    ) -> anyhow::Result<Vec<Descriptor>> {
        let mut found = Vec::new();
        let mut subjects = vec![subject.clone()];
        let mut seen = BTreeSet::new();
        while let Some(subject) = subjects.pop() {
            let list = match client.referrers(&subject).await? {
                Some(list) => Some(list),
                None => client
                    .find_manifest(&tag_schema(&subject))
                    .await?
                    .map(|(b, _)| b),
            };
            let Some(list) = list else { continue };
            let list: Value =
                serde_json::from_slice(&list).context("a referrers list is not JSON")?;
            for entry in list["manifests"].as_array().into_iter().flatten() {
                let mut descriptor: Descriptor = serde_json::from_value(entry.clone())
                    .context("a referrers list names a manifest without a digest")?;
                if !seen.insert(descriptor.digest.clone()) {
                    continue;
                }
                let (bytes, _) = client
                    .get_manifest(&descriptor.digest.to_string(), Some(&descriptor.digest))
                    .await?;
                self.layout.write_blob(&bytes)?;
                self.copy_blobs(client, &bytes).await?;
                if descriptor.media_type.is_empty() {
                    descriptor.media_type = IMAGE_MANIFEST.to_string();
                }
                subjects.push(descriptor.digest.clone());
                found.push(descriptor);
            }
        }
        Ok(found)
    }
}

/// The media type a manifest declares, else the one the registry sent, else OCI's.
fn manifest_media_type(bytes: &[u8], sent: Option<String>) -> String {
    let declared = serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|m| m["mediaType"].as_str().map(str::to_string));
    declared
        .or(sent)
        .unwrap_or_else(|| IMAGE_MANIFEST.to_string())
}

fn is_index(media_type: &str) -> bool {
    media_type == IMAGE_INDEX || media_type == DOCKER_LIST
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copier_for<'a>(
        layout: &'a Layout,
        mirrors: &'a Mirrors,
        platforms: &'a [Platform],
    ) -> Copier<'a> {
        Copier {
            layout,
            mirrors,
            platforms,
            http: reqwest::Client::new(),
        }
    }

    fn linux(arch: &str) -> Platform {
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
        }
    }

    #[test]
    fn an_index_keeps_the_platforms_asked_for_and_the_attestations_about_them() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let mirrors = Mirrors::default();
        let digest = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        // As BuildKit publishes: an image per platform, an attestation manifest about each
        // (platform unknown/unknown, annotated with the image it is about).
        let children = serde_json::json!([
            {"digest": digest('a'), "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": digest('b'), "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": digest('c'), "platform": {"os": "linux", "architecture": "s390x"}},
            {"digest": digest('d'), "platform": {"os": "unknown", "architecture": "unknown"},
             "annotations": {"vnd.docker.reference.digest": digest('a'), "vnd.docker.reference.type": "attestation-manifest"}},
            {"digest": digest('e'), "platform": {"os": "unknown", "architecture": "unknown"},
             "annotations": {"vnd.docker.reference.digest": digest('c'), "vnd.docker.reference.type": "attestation-manifest"}},
        ]);
        let children = children.as_array().unwrap();
        let kept_digests = |platforms: &[Platform]| -> Vec<String> {
            let copier = copier_for(&layout, &mirrors, platforms);
            (copier.kept(children).iter())
                .map(|c| c["digest"].as_str().unwrap()[7..8].to_string())
                .collect()
        };
        for (platforms, wanted) in [
            (vec![linux("amd64")], vec!["a", "d"]),
            (vec![linux("arm64")], vec!["b"]),
            (vec![linux("amd64"), linux("arm64")], vec!["a", "b", "d"]),
            (vec![linux("riscv64")], vec![]),
        ] {
            assert_eq!(kept_digests(&platforms), wanted, "{platforms:?}");
        }
    }

    #[test]
    fn the_media_type_is_the_manifests_own_else_the_registrys_else_ocis() {
        let list = br#"{"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json"}"#;
        assert_eq!(
            manifest_media_type(list, Some(IMAGE_INDEX.into())),
            DOCKER_LIST
        );
        assert!(is_index(DOCKER_LIST) && is_index(IMAGE_INDEX));
        assert_eq!(
            manifest_media_type(b"{}", Some(IMAGE_INDEX.into())),
            IMAGE_INDEX
        );
        assert_eq!(manifest_media_type(b"{}", None), IMAGE_MANIFEST);
    }
}
