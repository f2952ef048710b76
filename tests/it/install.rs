//! `cluster install`: its flags refused before any cluster call, CRDs taken only from a reachable
//! module proxy and a module zip with the pinned hash, and the objects it applies (snapshots).

use spin_aks::install::objects::{self, ChartSource};
use spin_aks::install::releases::{ReleaseSet, Versions};

use crate::cluster_aks::{run_blocking, Aks};
use crate::support::rig::{private_rig_with, rig, spin_aks_on, PrivateRig};
use crate::support::{skip, spin_aks_isolated};

#[test]
fn install_flags_are_refused_before_any_cluster_call() {
    let home = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 7] = [
        (
            &["--spin-operator-version", "0.5.0"],
            "knows the CRDs of spin-operator v0.6.1",
        ),
        (
            &["--shim-version", "latest"],
            "--shim-version `latest` is not a release version",
        ),
        (
            &["--cert-manager-version", "1.2"],
            "--cert-manager-version `1.2`",
        ),
        (
            &["--chart-registry", "http://mirror.example/charts"],
            "--chart-registry `http://mirror.example/charts`",
        ),
        (
            &["--module-proxy", "http://proxy.example"],
            "must be https://",
        ),
        (
            &["--module-proxy", "not a url"],
            "--module-proxy is not a URL with a host",
        ),
        (
            &["--flux-registry", "Not A Registry!"],
            "--flux-registry `Not A Registry!` is not a registry and path",
        ),
    ];
    let mut failures = Vec::new();
    for (args, wanted) in cases {
        let output = spin_aks_isolated(home.path())
            .env("KUBECONFIG", home.path().join("no-such-kubeconfig"))
            .args(["cluster", "install"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.code() != Some(2) || !stderr.contains(wanted) {
            failures.push(format!(
                "{args:?}: exit {:?}: {stderr}",
                output.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_cluster_without_flux_and_an_unreachable_module_proxy_fails_naming_the_flag_and_nothing_is_written(
) {
    let Some(rig) = rig() else { return };
    let home = tempfile::tempdir().unwrap();
    // The shared rig has no Flux: its controllers' CRDs would come from the module proxy.
    let nowhere = format!("http://127.0.0.1:{}", crate::support::registry::free_port());
    let output = spin_aks_on(rig, home.path())
        .args(["cluster", "install", "--module-proxy", &nowhere])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot fetch the CRDs of github.com/")
            && stderr.contains(&nowhere)
            && stderr.contains("--module-proxy"),
        "{stderr}"
    );
    let namespaces = rig.kubectl_ok(&["get", "namespaces", "-o", "name"]);
    assert!(
        !namespaces.contains("namespace/spin-aks\n")
            && !namespaces.contains("namespace/flux-system\n"),
        "{namespaces}"
    );
}

/// The spin-operator module zip as the Go command downloaded it (the rig's build fetches it).
fn operator_zip() -> Option<Vec<u8>> {
    let Some(cache) = crate::support::publishers::go_mod_cache() else {
        skip("go is not installed: the operator's module zip comes from the Go module cache");
        return None;
    };
    let zip = cache.join("cache/download/github.com/spinkube/spin-operator/@v/v0.6.1.zip");
    match std::fs::read(&zip) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            skip(&format!(
                "{}: {e} (scripts/kube-rig/build.sh downloads it)",
                zip.display()
            ));
            None
        }
    }
}

#[test]
fn the_operators_crds_come_only_from_a_module_zip_with_the_checksum_databases_hash() {
    let Some(bytes) = operator_zip() else { return };
    let releases = ReleaseSet::pinned(&Versions::default()).unwrap();
    let module = &releases.operator_module;
    // The pinned hash is the one `go mod download` verified against sum.golang.org; our dirhash
    // of the same zip must agree, and yield the operator's two CRDs.
    let crds = spin_aks::install::crds::crds_in_zip(&bytes, module).unwrap();
    let mut names: Vec<&str> = crds
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "spinappexecutors.core.spinkube.dev",
            "spinapps.core.spinkube.dev"
        ]
    );
    // A mirror serving other content (here: one more file in the zip) is refused.
    let mut archive = zip::ZipWriter::new_append(std::io::Cursor::new(bytes)).unwrap();
    archive
        .start_file(
            format!("{}@{}/extra.txt", module.path, module.version),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
    std::io::Write::write_all(&mut archive, b"not in the release\n").unwrap();
    let changed = archive.finish().unwrap().into_inner();
    let err = spin_aks::install::crds::crds_in_zip(&changed, module).unwrap_err();
    assert!(
        err.to_string().contains("the Go checksum database records"),
        "{err:#}"
    );
}

#[test]
fn the_install_objects_are_flux_helm_releases_in_order_and_the_shim() {
    let releases = ReleaseSet::pinned(&Versions::default()).unwrap();
    let mirror = ChartSource::Mirror {
        registry: "127.0.0.1:5000/charts".into(),
        insecure: true,
    };
    for (name, source) in [("publishers", ChartSource::Publishers), ("mirror", mirror)] {
        let mut objects = objects::repositories(&releases, &source);
        objects.extend(objects::charts(&releases, &source));
        objects.extend(objects::releases(&releases, &source, true, None).unwrap());
        objects.push(objects::shim(&releases, None));
        insta::assert_snapshot!(
            format!("install_objects_from_{name}"),
            spin_aks::workload::render::yaml_stream(&objects)
        );
    }
}

/// A rig of its own with no SpinKube and the real Flux controllers, its chart registry and its
/// Go module proxy mirror.
pub fn bare_flux_rig() -> Option<(PrivateRig, String, String)> {
    let rig = private_rig_with(&["--bare", "--flux"])?;
    let charts = rig
        .env("CHART_REGISTRY")
        .expect("a --flux rig names its CHART_REGISTRY");
    let proxy = rig
        .env("MODULE_PROXY")
        .expect("a --flux rig mirrors the Go module proxy");
    Some((rig, charts, proxy))
}

#[test]
fn install_on_a_bare_cluster_reconciles_every_stage_through_flux_and_a_rerun_changes_nothing() {
    let Some((rig, charts, proxy)) = bare_flux_rig() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let install = |extra: &[&str]| {
        let mut cmd = spin_aks_on(&rig, home.path());
        cmd.args(["cluster", "install", "--output", "json", "--timeout", "5m"])
            .args(["--chart-registry", &charts, "--module-proxy", &proxy])
            .args(extra);
        cmd.output().unwrap()
    };

    let dry = install(&["--dry-run"]);
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let planned = crate::support::json_stdout(&dry);
    assert_eq!(planned["dry_run"], true, "{planned}");
    let namespaces = rig.kubectl_ok(&["get", "namespaces", "-o", "name"]);
    assert!(
        !namespaces.contains("namespace/spin-aks\n"),
        "a dry run wrote: {namespaces}"
    );

    let first = install(&[]);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(0), "{stderr}");
    let report = crate::support::json_stdout(&first);
    let stages: Vec<&str> = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "cert-manager",
            "runtime-class-manager",
            "spin-operator",
            "shim"
        ]
    );
    for release in ["cert-manager", "runtime-class-manager", "spin-operator"] {
        let ready = rig.kubectl_ok(&[
            "get",
            "helmrelease",
            release,
            "-n",
            "spin-aks",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        assert_eq!(ready, "True", "{release}");
    }
    let crds = rig.kubectl_ok(&["get", "crd", "spinapps.core.spinkube.dev", "-o", "name"]);
    assert!(crds.contains("spinapps.core.spinkube.dev"));
    assert!(
        !report["labelled_nodes"].as_array().unwrap().is_empty(),
        "{report}"
    );

    let again = install(&[]);
    let report = crate::support::json_stdout(&again);
    assert_eq!(again.status.code(), Some(0));
    let changed: Vec<&serde_json::Value> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] != "unchanged")
        .collect();
    assert!(changed.is_empty(), "a second install changed {changed:?}");
    assert!(report["labelled_nodes"].as_array().unwrap().is_empty());

    // helm-controller's lost Ready (fluxcd/helm-controller#1409): when its cache fell behind a
    // restarted API server, the conditions patch after a Helm action is refused while the history
    // is written, and every later reconcile finds the release in sync and leaves `Ready` saying
    // the action runs. That status, made here (a status write wakes no reconcile), is left by a
    // forced upgrade the install asks for; without it the install waits out its timeout.
    let release = |path: &str| {
        let path = format!("jsonpath={{{path}}}");
        rig.kubectl_ok(&[
            "get",
            "helmrelease",
            "runtime-class-manager",
            "-n",
            "spin-aks",
            "-o",
            &path,
        ])
    };
    rig.kubectl_ok(&[
        "patch",
        "helmrelease",
        "runtime-class-manager",
        "-n",
        "spin-aks",
        "--subresource",
        "status",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"Unknown","reason":"Progressing","message":"Running 'install' action with timeout of 5m0s","lastTransitionTime":"2026-12-07T00:00:00Z"}]}}"#,
    ]);
    let ready = ".status.conditions[?(@.type==\"Ready\")].status";
    assert_eq!(release(ready), "Unknown");
    let healed = install(&[]);
    let stderr = String::from_utf8_lossy(&healed.stderr);
    assert_eq!(healed.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("lost its Ready condition"), "{stderr}");
    assert_eq!(release(ready), "True");
    assert_eq!(release(".status.history[*].status"), "deployed superseded");

    // helm-controller does not wait for a release's workloads (`disableWait`): spin-aks watches
    // its Deployments itself, and one whose new pod never starts (kwok's image-pull failure)
    // fails the install although its old pod still runs and the release is Ready.
    rig.kubectl_ok(&[
        "patch",
        "deployment",
        "runtime-class-manager",
        "-n",
        "runtime-class-manager",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"template":{"metadata":{"labels":{"spin-aks-test-fail":"image-pull"}}}}}"#,
    ]);
    let stuck = spin_aks_on(&rig, home.path())
        .args(["cluster", "install", "--timeout", "5s"])
        .args(["--chart-registry", &charts, "--module-proxy", &proxy])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&stuck.stderr);
    assert_eq!(stuck.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("deployment/runtime-class-manager: 1 of 1 replica(s) updated, 1 old one(s) still running"),
        "{stderr}"
    );

    let removed = spin_aks_on(&rig, home.path())
        .args(["cluster", "uninstall", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(
        removed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let removed = crate::support::json_stdout(&removed);
    assert!(
        !removed["deleted"].as_array().unwrap().is_empty(),
        "{removed}"
    );
    let left = rig.kubectl_ok(&["get", "helmreleases", "-A", "-o", "name"]);
    assert!(left.trim().is_empty(), "{left}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aks_automatic_cluster_is_refused_before_anything_is_written() {
    let Some(rig) = rig() else { return };
    let aks = Aks::start(rig, "auto1", &rig.server()).await;
    aks.arm.cluster("auto1", |c| {
        c["sku"] = serde_json::json!({"name": "Automatic", "tier": "Standard"})
    });
    let output = run_blocking(aks.command("auto1", "default", &["cluster", "install"])).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("AKS Automatic") && stderr.contains("--workload deployment"),
        "{stderr}"
    );
    assert_eq!(
        aks.arm.writes(),
        0,
        "nothing may be written before the refusal"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn enforced_deployment_safeguards_refuse_before_anything_is_written_unless_excluded() {
    let Some(rig) = rig() else { return };
    let aks = Aks::start(rig, "guarded", &rig.server()).await;
    let safeguards = |excluded: &[&str]| {
        serde_json::json!({
            "id": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/guarded/providers/Microsoft.ContainerService/deploymentSafeguards/default",
            "name": "default",
            "type": "Microsoft.ContainerService/deploymentSafeguards",
            "properties": {"level": "Enforce", "podSecurityStandardsLevel": "Baseline", "excludedNamespaces": excluded, "systemExcludedNamespaces": ["kube-system", "calico-system"], "provisioningState": "Succeeded"},
        })
    };
    aks.arm.world(|w| {
        w.provisioning
            .safeguards
            .insert("guarded".into(), safeguards(&[]))
    });
    let install = || aks.command("guarded", "default", &["cluster", "install", "--dry-run"]);
    let output = run_blocking(install()).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("Deployment Safeguards enforce the Baseline Pod Security Standard")
            && stderr.contains("--excluded-ns runtime-class-manager"),
        "{stderr}"
    );
    assert_eq!(
        aks.arm.writes(),
        0,
        "nothing may be written before the refusal"
    );

    // With the installer's namespace excluded the install goes on (a dry run: nothing written).
    aks.arm.world(|w| {
        w.provisioning
            .safeguards
            .insert("guarded".into(), safeguards(&["runtime-class-manager"]))
    });
    let output = run_blocking(install()).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("Deployment Safeguards"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn install_on_aks_enables_flux_through_arm_and_labels_the_agent_pool() {
    let Some((rig, charts, proxy)) = bare_flux_rig() else {
        return;
    };
    let aks = Aks::start(&rig, "aks1", &rig.server()).await;
    aks.arm
        .world(|w| w.pool_nodes_kubeconfig = Some(rig.kubeconfig.clone()));
    let args = [
        "cluster",
        "install",
        "--chart-registry",
        &charts,
        "--module-proxy",
        &proxy,
        "--timeout",
        "5m",
    ];
    let output = run_blocking(aks.command("aks1", "default", &args)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let report = crate::support::json_stdout(&output);
    assert_eq!(report["aks"]["flux_extension_installed"], true, "{report}");
    assert_eq!(
        report["aks"]["labelled_pools"],
        serde_json::json!(["nodepool1"]),
        "{report}"
    );
    assert!(
        report["labelled_nodes"].as_array().unwrap().is_empty(),
        "nodes are labelled through the pool: {report}"
    );
    let labelled = rig.kubectl_ok(&["get", "nodes", "-l", "spin=true", "-o", "name"]);
    assert!(
        !labelled.trim().is_empty(),
        "AKS rolled the pool's label onto the nodes"
    );

    let again = run_blocking(aks.command("aks1", "default", &args)).await;
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let report = crate::support::json_stdout(&again);
    assert_eq!(report["aks"]["flux_extension_installed"], false, "{report}");
    assert_eq!(
        report["aks"]["labelled_pools"],
        serde_json::json!([]),
        "{report}"
    );
}
