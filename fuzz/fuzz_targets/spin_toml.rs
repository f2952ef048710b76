//! spin.toml, any version: `app::load` must answer every input with an app or an error,
//! never a panic. The input is the whole file, in a directory of its own.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, data).expect("write spin.toml");
    let _ = spin_aks::app::load(&path);
});
