//! Generated OCI layouts shaped like Spin artifacts (no manifest `mediaType`): N random blobs,
//! and a reader of every blob in a layout to compare pushed and pulled bytes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use rand::RngCore;
use spin_aks::oci::media_types::{DATA_LAYER, LOCKED_APP_LAYER, WASM_LAYER};
use spin_aks::oci::{Descriptor, ImageManifest, Layout};

/// Writes a layout at `dir` with one image tagged `tag`: a config and `layers` random layers
/// whose sizes cycle through `sizes`. Returns the layout.
pub fn generate(dir: &Path, tag: &str, layers: usize, sizes: &[usize]) -> Layout {
    let layout = Layout::create(dir).expect("create layout");
    let mut rng = rand::rng();
    let mut descriptors = Vec::with_capacity(layers);
    let mut buffer = Vec::new();
    for i in 0..layers {
        buffer.resize(sizes[i % sizes.len()], 0);
        rng.fill_bytes(&mut buffer);
        let mut writer = layout.blob_writer().expect("blob writer");
        writer.write_all(&buffer).expect("write blob");
        let (digest, size) = writer.commit().expect("commit blob");
        let media_type = if i == 0 { WASM_LAYER } else { DATA_LAYER };
        descriptors.push(Descriptor::new(media_type, digest, size));
    }
    let config = format!(
        r#"{{"created":"1970-01-01T00:00:00Z","nonce":{}}}"#,
        rng.next_u64()
    );
    let (config_digest, config_size) = layout.write_blob(config.as_bytes()).expect("config");
    let manifest = ImageManifest {
        artifact_type: None,
        subject: None,
        schema_version: 2,
        media_type: None,
        config: Descriptor::new(LOCKED_APP_LAYER, config_digest, config_size),
        layers: descriptors,
        annotations: BTreeMap::new(),
    };
    layout.set_image(&manifest, tag).expect("set image");
    layout
}

/// Every blob file of a layout, by hex digest, with its bytes.
pub fn blobs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir.join("blobs/sha256"))
        .expect("blobs dir")
        .map(|entry| {
            let entry = entry.expect("entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(entry.path()).expect("read blob"))
        })
        .collect()
}
