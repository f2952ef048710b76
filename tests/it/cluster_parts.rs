//! Clusters missing a part, each test on a rig of its own (they change cluster-wide objects):
//! `cluster check` names each missing part with its fix and apply's preflight stops before
//! anything is written; apply finds the served SpinApp group by discovery (never guessed).

use crate::support::apps::example_copy;
use crate::support::rig::{apply_example, fake_image, private_rig, spin_aks_on, Rig};
use serde_json::Value;

/// `cluster check -o json -n <ns>`: the exit code and the checks by name → (ok, detail, fix).
fn check(rig: &Rig, home: &std::path::Path, ns: &str) -> (i32, Vec<(String, bool, String)>) {
    check_app(rig, home, &example_copy(home), ns)
}

fn check_app(
    rig: &Rig,
    home: &std::path::Path,
    app: &std::path::Path,
    ns: &str,
) -> (i32, Vec<(String, bool, String)>) {
    let output = spin_aks_on(rig, home)
        .arg("-f")
        .arg(app)
        .args(["cluster", "check", "--output", "json", "-n", ns])
        .output()
        .unwrap();
    let report: Value = crate::support::json_stdout(&output);
    let checks = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let text = format!("{} {}", c["detail"], c["fix"]);
            (
                c["name"].as_str().unwrap().to_string(),
                c["ok"].as_bool().unwrap(),
                text,
            )
        })
        .collect();
    (output.status.code().unwrap(), checks)
}

/// The one failed check (asserting exit 1 and that it is the only failure).
fn only_failure(result: (i32, Vec<(String, bool, String)>)) -> (String, String) {
    let (code, checks) = result;
    let failed: Vec<_> = checks.into_iter().filter(|(_, ok, _)| !ok).collect();
    assert_eq!(code, 1, "{failed:?}");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let (name, _, text) = failed.into_iter().next().unwrap();
    (name, text)
}

#[test]
fn check_passes_on_the_rig_and_names_each_missing_part_with_its_fix() {
    let Some(own) = private_rig() else { return };
    let rig: &Rig = &own;
    let home = tempfile::tempdir().unwrap();
    let ns = rig.bare_namespace("check");
    rig.kubectl_ok(&["create", "namespace", &ns]);

    let (code, checks) = check(rig, home.path(), &ns);
    let names: Vec<&str> = checks.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "spinkube",
            "operator",
            "executor",
            "runtime-class",
            "nodes",
            "shim-version"
        ]
    );
    assert_eq!(code, 0, "{checks:?}");
    assert!(
        checks[2].2.contains("missing in namespace") && checks[2].2.contains("apply creates it")
    );
    assert!(checks[3].2.contains("handler `spin`"), "{checks:?}");

    // A webhook whose service has no endpoints: every SpinApp write would fail.
    let webhook = r#"{"apiVersion":"admissionregistration.k8s.io/v1","kind":"MutatingWebhookConfiguration",
      "metadata":{"name":"spin-operator-mutating-webhook-configuration"},
      "webhooks":[{"name":"mspinapp.kb.io","admissionReviewVersions":["v1"],"sideEffects":"None",
        "failurePolicy":"Ignore","clientConfig":{"service":{"namespace":"spin-operator","name":"spin-operator-webhook-service","path":"/mutate"}},
        "rules":[{"apiGroups":["core.spinkube.dev"],"apiVersions":["v1alpha1"],"operations":["CREATE","UPDATE"],"resources":["spinapps"]}]}]}"#;
    let file = home.path().join("webhook.json");
    std::fs::write(&file, webhook).unwrap();
    rig.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    let (name, text) = only_failure(check(rig, home.path(), &ns));
    assert_eq!(name, "operator");
    assert!(
        text.contains("spin-operator/spin-operator-webhook-service has no ready endpoints"),
        "{text}"
    );
    rig.kubectl_ok(&["delete", "-f", file.to_str().unwrap()]);

    // Nodes no longer provisioned with the shim.
    for node in ["rig-node-1", "rig-node-2"] {
        rig.kubectl_ok(&["label", "node", node, "spin-v2=pending", "--overwrite"]);
    }
    let (name, text) = only_failure(check(rig, home.path(), &ns));
    assert_eq!(name, "nodes");
    assert!(
        text.contains("no node is provisioned") && text.contains("runtime-class-manager"),
        "{text}"
    );
    for node in ["rig-node-1", "rig-node-2"] {
        rig.kubectl_ok(&["label", "node", node, "spin-v2=provisioned", "--overwrite"]);
    }

    // No RuntimeClass: check fails, and apply stops before writing anything.
    let class = rig.kubectl_ok(&["get", "runtimeclass", "wasmtime-spin-v2", "-o", "json"]);
    rig.kubectl_ok(&["delete", "runtimeclass", "wasmtime-spin-v2"]);
    let (name, text) = only_failure(check(rig, home.path(), &ns));
    assert_eq!(name, "runtime-class");
    assert!(text.contains("runtime-class-manager"), "{text}");
    let app = example_copy(home.path());
    let apply = apply_example(rig, home.path(), &app, &ns, 3)
        .output()
        .unwrap();
    assert_eq!(apply.status.code(), Some(1));
    let err = String::from_utf8_lossy(&apply.stderr);
    assert!(
        err.contains("RuntimeClass wasmtime-spin-v2 does not exist")
            && err.contains("nothing was applied"),
        "{err}"
    );
    assert_eq!(
        rig.kubectl_ok(&["get", "spinapps,secrets", "-n", &ns, "-o", "name"]),
        ""
    );
    let restore = home.path().join("class.json");
    std::fs::write(&restore, class).unwrap();
    rig.kubectl_ok(&["create", "-f", restore.to_str().unwrap()]);

    // No SpinKube CRDs: the SpinApp group is not served.
    let crd = rig.kubectl_ok(&["get", "crd", "spinapps.core.spinkube.dev", "-o", "json"]);
    rig.kubectl_ok(&["delete", "crd", "spinapps.core.spinkube.dev", "--wait"]);
    let (code, checks) = check(rig, home.path(), &ns);
    let crd_file = home.path().join("crd.json");
    std::fs::write(&crd_file, &crd).unwrap();
    let crd_value: Value = serde_json::from_str(&crd).unwrap();
    let mut clean = crd_value.clone();
    clean["metadata"] = serde_json::json!({"name": crd_value["metadata"]["name"]});
    clean.as_object_mut().unwrap().remove("status");
    std::fs::write(&crd_file, clean.to_string()).unwrap();
    rig.kubectl_ok(&["create", "-f", crd_file.to_str().unwrap()]);
    rig.kubectl_ok(&[
        "wait",
        "--for",
        "condition=Established",
        "crd/spinapps.core.spinkube.dev",
    ]);
    assert_eq!(code, 1);
    let spinkube = checks.iter().find(|(n, _, _)| n == "spinkube").unwrap();
    assert!(
        !spinkube.1 && spinkube.2.contains("spin-aks cluster install"),
        "{spinkube:?}"
    );

    // runtime-class-manager's Shim names the shim release: too old for what the app imports.
    let shim_crd = r#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
      "metadata":{"name":"shims.runtime.spinkube.dev"},
      "spec":{"group":"runtime.spinkube.dev","scope":"Cluster","names":{"kind":"Shim","plural":"shims","singular":"shim","listKind":"ShimList"},
        "versions":[{"name":"v1alpha1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}]}}"#;
    let file = home.path().join("shim-crd.json");
    std::fs::write(&file, shim_crd).unwrap();
    rig.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    rig.kubectl_ok(&[
        "wait",
        "--for",
        "condition=Established",
        "crd/shims.runtime.spinkube.dev",
    ]);
    let shim = |version: &str| {
        let file = home.path().join("shim.json");
        std::fs::write(&file, format!(r#"{{"apiVersion":"runtime.spinkube.dev/v1alpha1","kind":"Shim","metadata":{{"name":"spin-v2"}},
          "spec":{{"nodeSelector":{{"spin":"true"}},"runtimeClass":{{"name":"wasmtime-spin-v2","handler":"spin"}},
            "fetchStrategy":{{"type":"annonymousHttp","anonHttp":{{"location":"https://github.com/spinkube/containerd-shim-spin/releases/download/{version}/containerd-shim-spin-v2-linux-x86_64.tar.gz"}}}}}}}}"#)).unwrap();
        rig.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    };
    let app = example_copy(&home.path().join("kv-app"));
    let mut wasm = std::fs::read(app.join("wasm/api.wasm")).unwrap();
    // A custom section naming the import, as a component importing Spin 3's key-value would.
    let name = b"wasi:keyvalue/store@0.2.0-draft2";
    wasm.extend([0u8, (name.len() + 2) as u8, 1, b'x']);
    wasm.extend(name);
    std::fs::write(app.join("wasm/api.wasm"), wasm).unwrap();
    shim("v0.16.0");
    let (name, text) = only_failure(check_app(rig, home.path(), &app, &ns));
    assert_eq!(name, "shim-version");
    assert!(
        text.contains("v0.16.0")
            && text.contains("wasi:keyvalue/store@0.2.0-draft2")
            && text.contains("v0.17.0"),
        "{text}"
    );
    shim("v0.24.0");
    let (code, checks) = check_app(rig, home.path(), &app, &ns);
    assert_eq!(code, 0, "{checks:?}");
    rig.kubectl_ok(&["delete", "crd", "shims.runtime.spinkube.dev"]);
}

// ---------- the served SpinApp group (SpinKube missing or old) ----------

#[test]
fn no_spinkube_crds_then_the_old_group_is_used() {
    let Some(own) = private_rig() else { return };
    let rig: &Rig = &own;
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

fn wait_for_group(rig: &Rig, group: &str, served: bool) {
    for _ in 0..100 {
        let groups = rig.kubectl_ok(&["api-versions"]);
        if groups.lines().any(|l| l.starts_with(&format!("{group}/"))) == served {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("the group {group} did not become served={served}");
}
