//! The discovery cache on disk (per API server and version, as kubectl's): an apply of kinds it
//! knows trusts it, and a kind it lists wrongly (404) makes the next apply ask the server again.

use crate::support::apps::example_copy;
use crate::support::rig::{apply_example, rig};

#[test]
fn apply_trusts_the_cached_discovery_until_a_kind_answers_404() {
    let Some(rig) = rig() else { return };
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let ns = rig.namespace("disco");
    let cache_dir = home.path().join(".cache/spin-aks/discovery");
    let apply = |seed| {
        apply_example(rig, home.path(), &app, &ns, seed)
            .arg("--no-wait")
            .output()
            .unwrap()
    };

    let first = apply(1);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let files: Vec<_> = std::fs::read_dir(&cache_dir).unwrap().flatten().collect();
    assert_eq!(
        files.len(),
        1,
        "one cache file for the rig's server and version"
    );
    let path = files[0].path();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let version = rig.kubectl_ok(&["version", "-o", "json"]);
    let git_version: serde_json::Value = serde_json::from_str(&version).unwrap();
    let git_version = git_version["serverVersion"]["gitVersion"].as_str().unwrap();
    assert!(name.ends_with(&format!("-{git_version}.json")), "{name}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A cache that lists SpinApps under a plural the server does not serve: the apply trusts it
    // (proof that it is read), fails with the server's 404, and forgets it.
    let cached = std::fs::read_to_string(&path).unwrap();
    assert!(cached.contains("\"spinapps\""), "the cache lists SpinApps");
    std::fs::write(&path, cached.replace("\"spinapps\"", "\"spinappz\"")).unwrap();
    let misled = apply(2);
    assert_eq!(
        misled.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&misled.stderr)
    );
    assert!(
        !path.exists(),
        "a 404 forgets the cache: {}",
        String::from_utf8_lossy(&misled.stderr)
    );

    let again = apply(2);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let image = rig.kubectl_ok(&[
        "get",
        "spinapp",
        "hello-aks",
        "-n",
        &ns,
        "-o",
        "jsonpath={.spec.image}",
    ]);
    assert!(image.ends_with(&hex::encode([2u8; 32])), "{image}");
    assert!(path.exists(), "discovery asked again and cached");
}
