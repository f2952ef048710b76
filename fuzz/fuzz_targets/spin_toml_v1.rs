//! spin.toml version 1: the input follows `spin_manifest_version = "1"`, so every run goes through
//! the v1 → v2 conversion (`app::v1`) before the v2 parser; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("spin.toml");
    let mut text = b"spin_manifest_version = \"1\"\n".to_vec();
    text.extend_from_slice(data);
    std::fs::write(&path, text).expect("write spin.toml");
    let _ = spin_aks::app::load(&path);
});
