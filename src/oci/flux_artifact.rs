//! The Flux OCI artifact (fluxcd/pkg `oci`, what `flux push artifact` writes): one reproducible
//! tar+gzip layer of files, Flux's config and content media types and its OpenContainers annotations.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::json;

use super::archive::fixed_header;
use super::media_types::IMAGE_MANIFEST;
use super::{json as canonical, Descriptor, Digest, ImageManifest, Layout};

/// The config media type Flux's source-controller expects of an artifact.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.flux.config.v1+json";
/// The media type of the one layer: the directory of files, tarred and gzipped.
pub const CONTENT_MEDIA_TYPE: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";

/// The annotations Flux writes (`org.opencontainers.image.created|source|revision`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// RFC 3339, seconds (`2026-12-01T09:00:00Z`).
    pub created: String,
    pub source: String,
    pub revision: String,
}

impl Metadata {
    fn annotations(&self) -> BTreeMap<String, String> {
        [
            ("created", &self.created),
            ("source", &self.source),
            ("revision", &self.revision),
        ]
        .into_iter()
        .map(|(k, v)| (format!("org.opencontainers.image.{k}"), v.clone()))
        .collect()
    }
}

/// Writes `files` (path inside the artifact → bytes) as a Flux artifact into `layout` under `tag`
/// (its only image, else beside the others); the same files and metadata give the same digest on
/// any machine.
pub fn write(
    layout: &Layout,
    files: &BTreeMap<String, Vec<u8>>,
    metadata: &Metadata,
    tag: &str,
    only: bool,
) -> anyhow::Result<Descriptor> {
    let tar = tar_files(files)?;
    let diff_id = Digest::of(&tar);
    let (layer, layer_size) = layout.write_blob(&gzip(&tar)?)?;
    // As go-containerregistry's empty image with the layer appended and `created` set.
    let config = json!({
        "architecture": "",
        "config": {},
        "created": metadata.created,
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"diff_ids": [diff_id.to_string()], "type": "layers"},
    });
    let (config, config_size) = layout.write_blob(&canonical::to_canonical_vec(&config)?)?;
    let manifest = ImageManifest {
        artifact_type: None,
        subject: None,
        schema_version: 2,
        media_type: Some(IMAGE_MANIFEST.to_string()),
        config: Descriptor::new(CONFIG_MEDIA_TYPE, config, config_size),
        layers: vec![Descriptor::new(CONTENT_MEDIA_TYPE, layer, layer_size)],
        annotations: metadata.annotations(),
    };
    if only {
        layout.set_image(&manifest, tag)
    } else {
        layout.add_image(&manifest, tag)
    }
}

/// A tar of the files in name order, headers as Flux's tar writes them (owner 0, no times).
fn tar_files(files: &BTreeMap<String, Vec<u8>>) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = fixed_header(tar::EntryType::Regular, bytes.len() as u64, 0o644, 0);
        builder.append_data(&mut header, name, bytes.as_slice())?;
    }
    Ok(builder.into_inner()?)
}

/// gzip with no name and no time in its header, so the bytes depend on the content alone.
fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// The files of a layer written by [`write`] (for checks and `export --with-deploy` readers).
pub fn read_layer(gzipped: &[u8]) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    read_tar(flate2::read::GzDecoder::new(gzipped))
}

/// The files of the tar a layer holds, by name (a later entry of the same name wins).
pub fn read_tar(tar: impl std::io::Read) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut archive = tar::Archive::new(tar);
    let mut files = BTreeMap::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes)?;
        files.insert(name, bytes);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> Metadata {
        Metadata {
            created: "2026-01-01T00:00:00Z".into(),
            source: "oci://r.example/app".into(),
            revision: "sha256:abc".into(),
        }
    }

    fn files() -> BTreeMap<String, Vec<u8>> {
        [("hello.yaml".to_string(), b"kind: SpinApp\n".to_vec())].into()
    }

    #[test]
    fn the_same_files_give_the_same_digest_in_two_layouts_with_flux_media_types() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = write(
            &Layout::create(a.path()).unwrap(),
            &files(),
            &metadata(),
            "x",
            true,
        )
        .unwrap();
        let layout = Layout::create(b.path()).unwrap();
        let second = write(&layout, &files(), &metadata(), "x", true).unwrap();
        assert_eq!(first.digest, second.digest);
        let (_, manifest) = layout.image(None).unwrap();
        assert_eq!(manifest.config.media_type, CONFIG_MEDIA_TYPE);
        assert_eq!(manifest.layers[0].media_type, CONTENT_MEDIA_TYPE);
        assert_eq!(
            manifest.annotations["org.opencontainers.image.revision"],
            "sha256:abc"
        );
        let layer = std::fs::read(layout.blob_path(&manifest.layers[0].digest)).unwrap();
        assert_eq!(read_layer(&layer).unwrap(), files());
    }

    #[test]
    fn other_metadata_gives_another_digest() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let first = write(&layout, &files(), &metadata(), "x", true).unwrap();
        let later = Metadata {
            created: "2026-01-02T00:00:00Z".into(),
            ..metadata()
        };
        assert_ne!(
            first.digest,
            write(&layout, &files(), &later, "x", true).unwrap().digest
        );
    }
}
