//! Describes a bundle in its own manifest, kept in the archive as an OCI artifact: what it holds
//! (kind, part, version), each part's digest and name in the mirror, and where it came from.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::install::mirror::BUNDLE;
use crate::oci::media_types::{IMAGE_MANIFEST, REF_NAME_ANNOTATION};
use crate::oci::{Descriptor, Digest, ImageManifest, Layout};

/// The artifact type (and layer media type) of a bundle's manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.spin-aks.bundle.v1+json";
/// The tag the bundle's manifest has in the archive and the mirror.
pub const TAG: &str = "latest";

/// What a bundle carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contents {
    pub schema_version: u32,
    /// The spin-aks that made it.
    pub created_by: String,
    /// The platforms its images are copied for (`linux/amd64`).
    pub platforms: Vec<String>,
    /// Each part's version: the charts', the shim's, Flux's controllers'.
    pub versions: BTreeMap<String, String>,
    pub items: Vec<Item>,
}

/// One thing the bundle carries, by digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub kind: Kind,
    /// What it belongs to: `cert-manager`, `flux`, `containerd-shim-spin`, the app's name.
    pub part: String,
    /// Its repository in the mirror (`quay.io/jetstack/cert-manager-controller`, `charts/cert-manager`).
    pub name: String,
    pub tag: String,
    pub digest: Digest,
    pub media_type: String,
    /// Bytes of its manifests and blobs.
    pub bytes: u64,
    /// Where it came from: `host/path:tag`, or a URL.
    pub source: String,
    /// The publisher's index, when only some of its platforms were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_digest: Option<Digest>,
    /// Signatures, SBOMs and attestations about it carried beside it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub referrers: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What an item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    App,
    Deploy,
    Chart,
    Image,
    Module,
    Shim,
    /// A signature or attestation cosign keeps under a tag beside an image.
    Signature,
}

impl Item {
    /// `name:tag`, its name in the archive's index and in the mirror.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }
}

impl Contents {
    /// Writes the contents as the bundle's manifest, and the layout's index: every item named
    /// by its reference, the bundle's manifest last, then the artifacts about items unnamed.
    pub fn write(&self, layout: &Layout, referrers: Vec<Descriptor>) -> anyhow::Result<Descriptor> {
        let json = crate::oci::json::to_canonical_vec(self)?;
        let (digest, size) = layout.write_blob(&json)?;
        layout.write_blob(crate::oci::layout::EMPTY_JSON_BYTES)?;
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(IMAGE_MANIFEST.to_string()),
            artifact_type: Some(ARTIFACT_TYPE.to_string()),
            config: Descriptor::empty_json(),
            layers: vec![Descriptor::new(ARTIFACT_TYPE, digest, size)],
            subject: None,
            annotations: BTreeMap::new(),
        };
        let bytes = crate::oci::json::to_canonical_vec(&manifest)?;
        let (digest, size) = layout.write_blob(&bytes)?;
        let mut own = Descriptor::new(IMAGE_MANIFEST, digest, size);
        let named = |mut d: Descriptor, name: String| {
            d.annotations.insert(REF_NAME_ANNOTATION.to_string(), name);
            d
        };
        let mut index: Vec<Descriptor> = (self.items.iter())
            .map(|item| {
                let d = Descriptor::new(&item.media_type, item.digest.clone(), 0);
                named(d, item.reference())
            })
            .collect();
        // Sizes come from the blobs themselves.
        for d in &mut index {
            d.size = std::fs::metadata(layout.blob_path(&d.digest))
                .with_context(|| format!("the bundle lacks the manifest {}", d.digest))?
                .len();
        }
        own = named(own, format!("{BUNDLE}:{TAG}"));
        index.push(own.clone());
        index.extend(referrers);
        layout.set_index(index)?;
        Ok(own)
    }

    /// The contents of the bundle unpacked at `layout` (see [`Contents::read_from`]).
    pub fn read(layout: &Layout, archive: &Path) -> anyhow::Result<(Descriptor, Contents)> {
        Contents::read_from(&layout.index()?, &|d| layout.read_blob(d), archive)
    }

    /// The contents of the bundle whose index lists `index` and whose blobs `read` gives (each
    /// checked against its digest): its manifest's layer.
    pub fn read_from(
        index: &[Descriptor],
        read: &dyn Fn(&Digest) -> anyhow::Result<Vec<u8>>,
        archive: &Path,
    ) -> anyhow::Result<(Descriptor, Contents)> {
        let name = format!("{BUNDLE}:{TAG}");
        let refused = |why: String| {
            crate::bad_input!(
                "{} is not a bundle `spin-aks bundle create` wrote: {why}",
                archive.display()
            )
        };
        let own = (index.iter())
            .find(|d| d.annotations.get(REF_NAME_ANNOTATION) == Some(&name))
            .cloned()
            .ok_or_else(|| refused(format!("its index names no `{name}`")))?;
        let bytes = read(&own.digest).map_err(|e| refused(format!("{e:#}")))?;
        let manifest: ImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| refused(format!("its manifest: {e}")))?;
        let [layer] = manifest.layers.as_slice() else {
            return Err(refused("its manifest has not one layer".into()));
        };
        let json = read(&layer.digest).map_err(|e| refused(format!("{e:#}")))?;
        let contents: Contents =
            serde_json::from_slice(&json).map_err(|e| refused(format!("its contents: {e}")))?;
        Ok((own, contents))
    }
}
