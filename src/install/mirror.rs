//! Sets the layout of a mirror registry, which `bundle push` fills and `install --mirror` reads:
//! each part has a fixed name there (images keep their publisher's path), looked up by digest.

use std::collections::BTreeMap;

use futures_util::future::try_join_all;
use serde::Deserialize;

use super::images::{self, Image};
use super::releases::{Module, ReleaseSet};
use crate::oci::Digest;
use crate::registry::client::RegistryClient;
use crate::registry::pull::{pull_client, RETRY_BUDGET};
use crate::retry::RetryPolicy;

/// Where the charts are: `<mirror>/charts/<name>:<version>`.
pub const CHARTS: &str = "charts";
/// The shim's release archives, one layer per architecture: `<mirror>/<SHIM>:<version>`.
pub const SHIM: &str = "spin-aks/containerd-shim-spin";
/// The bundle's own manifest.
pub const BUNDLE: &str = "spin-aks/bundle";
/// The annotation naming the architecture of a shim archive layer (`x86_64`, `aarch64`).
pub const ARCH_ANNOTATION: &str = "dev.spin-aks.shim.arch";
/// The annotation naming a layer's file (OCI image-spec annotations.md).
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
/// The largest module zip read from a mirror.
const MODULE_ZIP_LIMIT: u64 = 64 << 20;

/// A Go module's zip: `<mirror>/spin-aks/modules/<module path>:<version>`.
pub fn module_repository(module: &Module) -> String {
    format!("spin-aks/modules/{}", module.path.to_ascii_lowercase())
}

/// The shim archive of `arch` (`x86_64`, `aarch64`) as its publisher names it.
pub fn shim_file(arch: &str) -> String {
    format!("containerd-shim-spin-v2-linux-{arch}.tar.gz")
}

/// A registry holding what a bundle carries, as `bundle push` laid it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    /// `host[:port][/path]`.
    pub registry: String,
    /// Plain HTTP (`--plain-http`, or a loopback registry).
    pub insecure: bool,
}

/// One shim archive the nodes fetch from inside the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShimArchive {
    pub arch: String,
    pub location: String,
    pub sha256: String,
}

/// What an install takes from the mirror, looked up once.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    /// Upstream repository → (the mirror's repository, the digest its tag names).
    pub images: BTreeMap<String, (String, Digest)>,
    pub shim: Vec<ShimArchive>,
}

impl Resolved {
    /// The mirror's copy of `image`, pinned: `<mirror>/<repository>@sha256:…`.
    pub fn pinned(&self, image: &Image) -> Option<String> {
        let (repository, digest) = self.images.get(&image.repository)?;
        Some(format!("{repository}@{digest}"))
    }

    /// The mirror's copy of Flux's controller `module`, pinned.
    pub fn pinned_controller(&self, module: &Module) -> Option<String> {
        self.pinned(&images::flux_images(&[module]).pop()?)
    }
}

impl Mirror {
    /// `<registry>/<name>`.
    pub fn repository(&self, name: &str) -> String {
        format!("{}/{name}", self.registry)
    }

    async fn client(&self, name: &str, http: &reqwest::Client) -> anyhow::Result<RegistryClient> {
        let retry = RetryPolicy::with_budget(RETRY_BUDGET);
        pull_client(&self.repository(name), self.insecure, http, retry).await
    }

    /// The digest `name:tag` has in the mirror, refused when it has none.
    async fn digest(
        &self,
        name: &str,
        tag: &str,
        http: &reqwest::Client,
    ) -> anyhow::Result<Digest> {
        let mut client = self.client(name, http).await?;
        client
            .first_manifest_digest(tag)
            .await?
            .ok_or_else(|| missing(self, &format!("{name}:{tag}")))
    }

    /// Looks up every image the install runs (those of Flux's `flux` controllers too) and the
    /// shim's archives, all at once.
    pub async fn resolve(
        &self,
        releases: &ReleaseSet,
        flux: &[&Module],
        http: &reqwest::Client,
    ) -> anyhow::Result<Resolved> {
        let mut wanted: Vec<Image> = Vec::new();
        for chart in releases.charts() {
            wanted.extend(images::chart_images(chart)?);
        }
        wanted.extend(images::flux_images(flux));
        let (images, shim) =
            tokio::try_join!(self.images(wanted, http), self.shim(releases, http))?;
        Ok(Resolved { images, shim })
    }

    /// Looks up the images of Flux's `controllers` alone (`fleet add --mirror`).
    pub async fn resolve_flux(
        &self,
        controllers: &[&Module],
        http: &reqwest::Client,
    ) -> anyhow::Result<Resolved> {
        let images = self.images(images::flux_images(controllers), http).await?;
        Ok(Resolved {
            images,
            shim: Vec::new(),
        })
    }

    /// Each of `wanted` as the mirror's repository and the digest its tag names there.
    async fn images(
        &self,
        mut wanted: Vec<Image>,
        http: &reqwest::Client,
    ) -> anyhow::Result<BTreeMap<String, (String, Digest)>> {
        wanted.sort();
        wanted.dedup();
        let lookups = wanted.iter().map(|image| async move {
            let digest = self.digest(&image.repository, &image.tag, http).await?;
            Ok::<_, anyhow::Error>((
                image.repository.clone(),
                (self.repository(&image.repository), digest),
            ))
        });
        Ok(try_join_all(lookups).await?.into_iter().collect())
    }

    /// The shim archives the mirror holds for the release, as HTTP locations the nodes reach:
    /// the registry's own blob URLs (`GET /v2/<name>/blobs/<digest>`, which needs anonymous pull).
    async fn shim(
        &self,
        releases: &ReleaseSet,
        http: &reqwest::Client,
    ) -> anyhow::Result<Vec<ShimArchive>> {
        let client = self.client(SHIM, http).await?;
        let Some((bytes, _)) = client.find_manifest(&releases.shim).await? else {
            return Err(missing(self, &format!("{SHIM}:{}", releases.shim)));
        };
        let manifest: ArtifactManifest = serde_json::from_slice(&bytes)?;
        let scheme = if self.insecure { "http" } else { "https" };
        let (host, path) = match self.registry.split_once('/') {
            Some((host, path)) => (host, format!("{path}/")),
            None => (self.registry.as_str(), String::new()),
        };
        let archives: Vec<ShimArchive> = (manifest.layers.iter())
            .filter_map(|layer| {
                let arch = layer.annotations.get(ARCH_ANNOTATION)?;
                Some(ShimArchive {
                    arch: arch.clone(),
                    location: format!("{scheme}://{host}/v2/{path}{SHIM}/blobs/{}", layer.digest),
                    sha256: layer.digest.hex().to_string(),
                })
            })
            .collect();
        if archives.is_empty() {
            anyhow::bail!(
                "{}:{} in the mirror holds no shim archive; push a bundle made by `spin-aks bundle create` again",
                self.repository(SHIM),
                releases.shim
            );
        }
        Ok(archives)
    }

    /// The zip of `module` from the mirror (its `h1:` hash is checked by whoever reads it).
    pub async fn module_zip(
        &self,
        module: &Module,
        http: &reqwest::Client,
    ) -> anyhow::Result<Vec<u8>> {
        let name = module_repository(module);
        let client = self.client(&name, http).await?;
        let Some((bytes, _)) = client.find_manifest(module.version).await? else {
            return Err(missing(self, &format!("{name}:{}", module.version)));
        };
        let manifest: ArtifactManifest = serde_json::from_slice(&bytes)?;
        let [layer] = manifest.layers.as_slice() else {
            anyhow::bail!(
                "{name}:{} in the mirror is not a module zip (one layer)",
                module.version
            );
        };
        client.get_small_blob(&layer.digest, MODULE_ZIP_LIMIT).await
    }
}

#[derive(Deserialize)]
struct ArtifactManifest {
    layers: Vec<crate::oci::Descriptor>,
}

fn missing(mirror: &Mirror, what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "the mirror {} has no {what}; load a bundle made for these versions with `spin-aks bundle push BUNDLE {}`",
        mirror.registry,
        mirror.registry
    )
}
