//! Fetches what a bundle carries that is no image, and stores each as an OCI artifact: Go module
//! zips (the CRDs, `h1:`-checked) from a module proxy, and the shim's release archives over HTTPS.

use std::collections::BTreeMap;

use crate::install::mirror::{ARCH_ANNOTATION, TITLE_ANNOTATION};
use crate::install::releases::Module;
use crate::oci::media_types::IMAGE_MANIFEST;
use crate::oci::{Descriptor, ImageManifest, Layout};

/// The artifact type of a Go module zip.
pub const MODULE_TYPE: &str = "application/vnd.spin-aks.go-module.v1";
/// The artifact type of the shim's archives.
pub const SHIM_TYPE: &str = "application/vnd.spin-aks.shim.v1";
/// Where the shim's release archives are published.
pub const SHIM_BASE: &str =
    "https://github.com/spinframework/containerd-shim-spin/releases/download";

/// An artifact written: its manifest and the bytes it names.
pub struct Stored {
    pub manifest: Descriptor,
    pub bytes: u64,
    pub source: String,
}

/// The zip of `module` from the Go module proxy `proxy`, refused unless its `h1:` hash is the
/// one pinned, as an artifact of one `application/zip` layer.
pub async fn module(
    http: &reqwest::Client,
    proxy: &str,
    module: &Module,
    layout: &Layout,
) -> anyhow::Result<Stored> {
    let zip = crate::install::crds::module_zip(http, proxy, module).await?;
    crate::install::crds::crds_in_zip(&zip, module).map_err(|e| {
        anyhow::anyhow!(
            "the module zip of {}@{} from {} is not usable: {e:#}",
            module.path,
            module.version,
            crate::redact::redact_userinfo(proxy)
        )
    })?;
    let (digest, size) = layout.write_blob(&zip)?;
    let mut layer = Descriptor::new("application/zip", digest, size);
    layer
        .annotations
        .insert(TITLE_ANNOTATION.into(), format!("{}.zip", module.version));
    let annotations = BTreeMap::from([
        (
            "dev.spin-aks.module.path".to_string(),
            module.path.to_string(),
        ),
        ("dev.spin-aks.module.h1".to_string(), module.h1.to_string()),
    ]);
    artifact(
        layout,
        MODULE_TYPE,
        vec![layer],
        annotations,
        module_source(proxy, module),
    )
}

/// Where `module`'s zip comes from, as the bundle records it (any login hidden).
pub fn module_source(proxy: &str, module: &Module) -> String {
    format!(
        "{}/{}/@v/{}.zip",
        crate::redact::redact_userinfo(proxy).trim_end_matches('/'),
        module.path,
        module.version
    )
}

/// Whether the module artifact `manifest` in `layout` holds `module`'s zip at its pinned hash.
pub fn module_intact(layout: &Layout, manifest: &crate::oci::Digest, module: &Module) -> bool {
    let zip = (layout.read_blob(manifest).ok())
        .and_then(|bytes| serde_json::from_slice::<ImageManifest>(&bytes).ok())
        .and_then(|m| layout.read_blob(&m.layers.first()?.digest).ok());
    zip.is_some_and(|zip| crate::install::crds::crds_in_zip(&zip, module).is_ok())
}

/// Where the shim's archives of `version` come from, as the bundle records it.
pub fn shim_source(base: &str, version: &str) -> String {
    format!(
        "{}/{version}/",
        crate::redact::redact_userinfo(base).trim_end_matches('/')
    )
}

/// The architectures of the shim artifact `manifest` in `layout`, in its order.
pub fn shim_archs(layout: &Layout, manifest: &crate::oci::Digest) -> Vec<String> {
    let manifest = (layout.read_blob(manifest).ok())
        .and_then(|bytes| serde_json::from_slice::<ImageManifest>(&bytes).ok());
    let layers = manifest.map(|m| m.layers).unwrap_or_default();
    let present = |l: &Descriptor| layout.has_blob(&l.digest);
    (layers.iter().filter(|l| present(l)))
        .filter_map(|l| l.annotations.get(ARCH_ANNOTATION).cloned())
        .collect()
}

/// The shim's release archives for `archs` (`x86_64`, `aarch64`) from `base`
/// (`<base>/<version>/<file>`), as one artifact with a layer per architecture.
pub async fn shim(
    http: &reqwest::Client,
    base: &str,
    version: &str,
    archs: &[&str],
    layout: &Layout,
) -> anyhow::Result<Stored> {
    let mut layers = Vec::new();
    for arch in archs {
        let file = crate::install::mirror::shim_file(arch);
        let url = format!("{}/{version}/{file}", base.trim_end_matches('/'));
        let shown = crate::redact::redact_userinfo(&url);
        let mut response = http.get(&url).send().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot fetch {shown}: {}; name where the shim's archives are with --shim-base-url",
                e.without_url()
            )
        })?;
        if !response.status().is_success() {
            anyhow::bail!(
                "cannot fetch {shown}: it answered {}; name where the shim's archives are with --shim-base-url",
                response.status()
            );
        }
        let mut writer = layout.blob_writer()?;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| anyhow::anyhow!("reading {shown}: {}", e.without_url()))?
        {
            std::io::Write::write_all(&mut writer, &chunk)?;
        }
        let (digest, size) = writer.commit()?;
        let mut layer = Descriptor::new("application/gzip", digest, size);
        layer.annotations.insert(TITLE_ANNOTATION.into(), file);
        layer
            .annotations
            .insert(ARCH_ANNOTATION.into(), arch.to_string());
        layers.push(layer);
    }
    let source = format!(
        "{}/{version}/",
        crate::redact::redact_userinfo(base).trim_end_matches('/')
    );
    let annotations = BTreeMap::from([(
        "org.opencontainers.image.version".to_string(),
        version.to_string(),
    )]);
    artifact(layout, SHIM_TYPE, layers, annotations, source)
}

fn artifact(
    layout: &Layout,
    artifact_type: &str,
    layers: Vec<Descriptor>,
    annotations: BTreeMap<String, String>,
    source: String,
) -> anyhow::Result<Stored> {
    layout.write_blob(crate::oci::layout::EMPTY_JSON_BYTES)?;
    let bytes: u64 = layers.iter().map(|l| l.size).sum();
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(IMAGE_MANIFEST.to_string()),
        artifact_type: Some(artifact_type.to_string()),
        config: Descriptor::empty_json(),
        layers,
        subject: None,
        annotations,
    };
    let json = crate::oci::json::to_canonical_vec(&manifest)?;
    let (digest, size) = layout.write_blob(&json)?;
    Ok(Stored {
        manifest: Descriptor::new(IMAGE_MANIFEST, digest, size),
        bytes: bytes + size,
        source,
    })
}
