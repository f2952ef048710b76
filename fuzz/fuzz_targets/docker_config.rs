//! The Docker config reader (`registry::docker_config::lookup`): any config.json, looked up for
//! a few registry spellings, gives a credential or an error, never a panic. PATH is emptied so a
//! `credsStore`/`credHelpers` name never runs a real helper.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        std::env::set_var("DOCKER_CONFIG", dir.path());
        std::env::set_var("PATH", dir.path().join("no-helpers"));
        dir
    });
    std::fs::write(dir.path().join("config.json"), data).expect("write config.json");
    for registry in ["myacr.azurecr.io", "docker.io", "127.0.0.1:5000"] {
        let _ = spin_aks::registry::docker_config::lookup(registry);
    }
});
