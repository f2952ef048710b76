//! The OCI layout reader (`push --from-layout`): the input is index.json, then after a line
//! `--` the manifest it may name; reading the image, checking and pruning blobs never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spin_aks::oci::Layout;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let layout = Layout::create(dir.path()).expect("layout");
    let (index, manifest) = split(data);
    std::fs::write(dir.path().join("index.json"), index).expect("write index.json");
    let digest = spin_aks::oci::Digest::of(manifest);
    std::fs::write(layout.blob_path(&digest), manifest).expect("write manifest");
    let Ok(layout) = Layout::open(dir.path()) else {
        return;
    };
    if let Ok((_, manifest)) = layout.image(None) {
        let _ = manifest.blobs().count();
    }
    let _ = layout.image(Some("1.0.0"));
    let _ = layout.remove_unreferenced_blobs();
});

fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.windows(4).position(|w| w == b"\n--\n") {
        Some(at) => (&data[..at], &data[at + 4..]),
        None => (data, b""),
    }
}
