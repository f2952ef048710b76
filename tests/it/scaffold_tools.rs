//! Real tools read what scaffold writes: `helm lint` passes, and `helm template` and
//! `kubectl kustomize` render exactly the objects of the `kube` renderer.
//! helm and kubectl come from scripts/install-test-tools.sh; under CI=true a missing tool fails.

use std::path::Path;
use std::process::Command;

use crate::support::scaffold::*;
use crate::support::{run_ok, tool};

fn run(tool: &Path, args: &[&str]) -> String {
    run_ok(Command::new(tool).args(args))
}

/// Scaffolds `app` three ways and checks each rendering against the kube objects.
fn check_renderings(app: &AppDir, args: &[&str], overlay: &str) {
    let (Some(helm), Some(kubectl)) = (tool("helm"), tool("kubectl")) else {
        return;
    };
    let out = |kind: &str| app.dir.join(format!("out-{kind}"));
    for kind in ["kube", "kustomize", "helm"] {
        let dir = out(kind);
        let mut all = vec!["--type", kind, "-o", dir.to_str().unwrap()];
        all.extend_from_slice(args);
        scaffold_ok(app, &all);
    }
    let kube_file = std::fs::read_dir(out("kube"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "yaml"))
        .unwrap();
    let expected = objects(&std::fs::read_to_string(kube_file).unwrap());
    assert!(!expected.is_empty());

    let overlay_dir = out("kustomize").join("overlays").join(overlay);
    let kustomized = run(&kubectl, &["kustomize", overlay_dir.to_str().unwrap()]);
    assert_eq!(
        objects(&kustomized),
        expected,
        "kubectl kustomize output differs from the kube objects"
    );

    let chart = out("helm");
    run(&helm, &["lint", "--strict", chart.to_str().unwrap()]);
    let templated = run(&helm, &["template", "release", chart.to_str().unwrap()]);
    assert_eq!(
        objects(&templated),
        expected,
        "helm template output differs from the kube objects"
    );
}

#[test]
fn example_spinapp_renders_the_same_objects_through_helm_and_kustomize() {
    check_renderings(
        &example_app(),
        &["--image", "myacr.azurecr.io/hello-aks:0.1.0"],
        "production",
    );
}

#[test]
fn example_deployment_with_probes_and_namespace_renders_the_same_everywhere() {
    check_renderings(
        &example_app(),
        &[
            "--workload", "deployment", "--namespace", "web", "--health-path", "/", "--memory-limit", "64Mi",
            "--image", "localhost:5000/hello-aks@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ],
        "production",
    );
}

#[test]
fn shop_deployment_with_autoscaling_and_stores_renders_the_same_everywhere() {
    let mut args = vec![
        "--workload",
        "deployment",
        "--namespace",
        "shop",
        "--autoscale",
        "--cpu-limit",
        "500m",
        "--max-replicas",
        "5",
        "--image-pull-secret",
        "acr-pull",
        "--overlay",
        "prod-eu",
    ];
    args.extend_from_slice(SHOP_STORES);
    check_renderings(&shop_app(), &args, "prod-eu");
}

#[test]
fn shop_spinapp_with_key_vault_renders_the_same_everywhere() {
    let mut args = vec![
        "--key-vault",
        "https://shop.vault.azure.net/",
        "--service-account",
        "shop-identity",
        "--replicas",
        "3",
        "--cpu-limit",
        "1",
        "--memory-limit",
        "256Mi",
        "--health-path",
        "/api/health",
    ];
    args.extend_from_slice(SHOP_STORES);
    check_renderings(&shop_app(), &args, "production");
}

#[test]
fn kustomize_overlay_image_change_reaches_the_spinapp() {
    let Some(kubectl) = tool("kubectl") else {
        return;
    };
    let app = example_app();
    scaffold_ok(
        &app,
        &[
            "--type",
            "kustomize",
            "--image",
            "myacr.azurecr.io/hello-aks:1",
        ],
    );
    let overlay = app.dir.join("deploy/overlays/production");
    let file = overlay.join("kustomization.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("newTag: \"1\"", "newTag: \"2\"");
    std::fs::write(&file, text).unwrap();
    let rendered = objects(&run(&kubectl, &["kustomize", overlay.to_str().unwrap()]));
    assert_eq!(rendered[0]["spec"]["image"], "myacr.azurecr.io/hello-aks:2");
}

#[test]
fn helm_values_override_image_and_replicas() {
    let Some(helm) = tool("helm") else {
        return;
    };
    let app = example_app();
    scaffold_ok(
        &app,
        &["--type", "helm", "--image", "myacr.azurecr.io/hello-aks:1"],
    );
    let chart = app.dir.join("deploy");
    let rendered = objects(&run(
        &helm,
        &[
            "template",
            "r",
            chart.to_str().unwrap(),
            "--set",
            "image.tag=9",
            "--set",
            "replicaCount=4",
        ],
    ));
    assert_eq!(rendered[0]["spec"]["image"], "myacr.azurecr.io/hello-aks:9");
    assert_eq!(rendered[0]["spec"]["replicas"], 4);
}
