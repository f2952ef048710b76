//! apply against clusters whose SpinKube is missing or old: the served SpinApp group is found by
//! discovery (never guessed). A test binary of its own: it swaps the rig's CRDs.

mod support;

use support::apps::example_copy;
use support::rig::{apply_example, fake_image, rig};

#[test]
fn no_spinkube_crds_then_the_old_group_is_used() {
    let Some(rig) = rig() else { return };
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let ns = rig.bare_namespace("groups");
    let apply = || {
        apply_example(rig, home.path(), &app, &ns, 1)
            .arg("--no-wait")
            .output()
            .unwrap()
    };
    let crds = rig.path("crds");
    rig.kubectl_ok(&[
        "delete",
        "--wait",
        "-f",
        &crds.join("spinapps.yaml").to_string_lossy(),
        "-f",
        &crds.join("spinappexecutors.yaml").to_string_lossy(),
    ]);
    wait_for_group(rig, "core.spinkube.dev", false);

    let output = apply();
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("does not serve SpinApp")
            && err.contains("nothing was applied")
            && err.contains("spin-aks cluster check"),
        "{err}"
    );

    // Operators before v0.4.0 served the same kinds as core.spinoperator.dev.
    for file in ["spinapps.yaml", "spinappexecutors.yaml"] {
        let old = std::fs::read_to_string(crds.join(file))
            .unwrap()
            .replace("core.spinkube.dev", "core.spinoperator.dev");
        let path = home.path().join(file);
        std::fs::write(&path, old).unwrap();
        rig.kubectl_ok(&["apply", "--server-side", "-f", &path.to_string_lossy()]);
    }
    wait_for_group(rig, "core.spinoperator.dev", true);
    let output = apply();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let image = rig.kubectl_ok(&[
        "get",
        "spinapps.core.spinoperator.dev",
        "hello-aks",
        "-n",
        &ns,
        "-o",
        "jsonpath={.spec.image}",
    ]);
    assert_eq!(image, fake_image(1));
}

fn wait_for_group(rig: &support::rig::Rig, group: &str, served: bool) {
    for _ in 0..100 {
        let groups = rig.kubectl_ok(&["api-versions"]);
        if groups.lines().any(|l| l.starts_with(&format!("{group}/"))) == served {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("the group {group} did not become served={served}");
}
