//! `cluster install` on a cluster without Flux: Flux's source- and helm-controller installed first
//! (their CRDs only from module zips with the pinned hash), then SpinKube through them, and `up`.

use std::time::Instant;

use spin_aks::install::flux;
use spin_aks::install::releases::{ReleaseSet, Versions};

use crate::install_flow::{
    assert_exit, install, jsonpath, namespaces, stderr, up, viewer_kubeconfig, Sources,
};
use crate::support::apps::example_copy;
use crate::support::json_stdout;
use crate::support::registry::Registry;
use crate::support::rig::{private_rig_with, spin_aks_on, PrivateRig, Rig};

/// A rig of its own with no SpinKube and no Flux, whose Flux controllers start (out of cluster)
/// once an install made them; its chart registry and Go module proxy mirror.
pub(crate) fn rig_without_flux() -> Option<(PrivateRig, Sources)> {
    let rig = private_rig_with(&["--bare", "--flux-on-install"])?;
    let sources = Sources {
        charts: rig
            .env("CHART_REGISTRY")
            .expect("the rig names its chart registry"),
        proxy: rig
            .env("MODULE_PROXY")
            .expect("the rig mirrors the Go module proxy"),
    };
    Some((rig, sources))
}

/// What an install may have written: Flux's and SpinKube's namespaces, Flux's CRDs.
fn written(rig: &Rig) -> Vec<String> {
    let namespaces = namespaces(rig);
    let crds = rig.kubectl_ok(&["get", "crd", "-o", "name"]);
    (namespaces.lines().chain(crds.lines()))
        .filter(|l| l.ends_with("/flux-system") || l.ends_with("/spin-aks") || l.contains("fluxcd"))
        .map(str::to_string)
        .collect()
}

fn kinds_and_names(report: &serde_json::Value) -> Vec<(String, String)> {
    let objects = report["objects"].as_array().unwrap().iter();
    objects
        .map(|o| {
            let name = |k: &str| o[k].as_str().unwrap().to_string();
            (name("kind"), name("name"))
        })
        .collect()
}

#[test]
fn flux_objects_are_our_own_as_flux_install_lays_them_out() {
    let releases = ReleaseSet::pinned(&Versions::default()).unwrap();
    let objects = flux::objects(&releases.flux, flux::DEFAULT_REGISTRY);
    insta::assert_snapshot!(
        "install_flux_objects",
        spin_aks::workload::render::yaml_stream(&objects)
    );
    let mirrored = flux::objects(&releases.flux, "myacr.azurecr.io/fluxcd");
    let images: Vec<&str> = (mirrored.iter())
        .filter(|o| o["kind"] == "Deployment")
        .map(|o| {
            o["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        images,
        [
            "myacr.azurecr.io/fluxcd/source-controller:v1.9.5",
            "myacr.azurecr.io/fluxcd/helm-controller:v1.6.4"
        ]
    );
}

#[test]
fn a_dry_run_lists_flux_and_a_tampered_module_missing_rights_or_another_flux_write_nothing() {
    let Some((rig, sources)) = rig_without_flux() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();

    let dry = install(&rig, home.path(), &sources, &["--dry-run"]);
    assert_exit(&dry, 0, "install --dry-run");
    let planned = json_stdout(&dry);
    let listed = kinds_and_names(&planned);
    for wanted in [
        (
            "CustomResourceDefinition",
            "helmreleases.helm.toolkit.fluxcd.io",
        ),
        (
            "CustomResourceDefinition",
            "helmrepositories.source.toolkit.fluxcd.io",
        ),
        ("Namespace", "flux-system"),
        ("ClusterRoleBinding", "cluster-reconciler-flux-system"),
        ("Service", "source-controller"),
        ("Deployment", "source-controller"),
        ("Deployment", "helm-controller"),
        ("HelmRelease", "cert-manager"),
    ] {
        let wanted = (wanted.0.to_string(), wanted.1.to_string());
        assert!(listed.contains(&wanted), "{wanted:?} in {listed:?}");
    }
    assert_eq!(
        planned["versions"]["helm-controller"], "v1.6.4",
        "{planned}"
    );
    assert!(
        written(&rig).is_empty(),
        "a dry run wrote {:?}",
        written(&rig)
    );

    // Installing Flux takes more rights: each is named.
    let viewer = viewer_kubeconfig(&rig, home.path());
    let refused = spin_aks_on(&rig, home.path())
        .env("KUBECONFIG", &viewer)
        .args(["cluster", "install", "--module-proxy", &sources.proxy])
        .args(["--chart-registry", &sources.charts])
        .output()
        .unwrap();
    assert_exit(&refused, 1, "install by a viewer");
    let said = stderr(&refused);
    for wanted in [
        "patch clusterrolebindings.rbac.authorization.k8s.io",
        "patch deployments.apps in namespace flux-system",
        "cluster-admin",
        "nothing was written",
    ] {
        assert!(said.contains(wanted), "{wanted:?} in {said}");
    }
    assert!(
        written(&rig).is_empty(),
        "a refusal wrote {:?}",
        written(&rig)
    );

    // A mirror serving other content than the published module, for either controller.
    let releases = ReleaseSet::pinned(&Versions::default()).unwrap();
    for module in releases.flux.modules() {
        let zip = rig.path(&format!(
            "upstream/goproxy/{}/@v/{}.zip",
            module.path, module.version
        ));
        let published = std::fs::read(&zip).unwrap();
        let mut archive =
            zip::ZipWriter::new_append(std::io::Cursor::new(published.clone())).unwrap();
        archive
            .start_file(
                format!("{}@{}/extra.yaml", module.path, module.version),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
        std::io::Write::write_all(&mut archive, b"kind: NotInTheRelease\n").unwrap();
        std::fs::write(&zip, archive.finish().unwrap().into_inner()).unwrap();

        let refused = install(&rig, home.path(), &sources, &[]);
        let said = stderr(&refused);
        assert_ne!(refused.status.code(), Some(0), "{said}");
        let named = format!("{}@{}", module.path, module.version);
        for wanted in [
            named.as_str(),
            "its hash is h1:",
            module.h1,
            "--module-proxy",
        ] {
            assert!(said.contains(wanted), "{wanted:?} in {said}");
        }
        assert!(
            written(&rig).is_empty(),
            "{named}: wrote {:?}",
            written(&rig)
        );
        std::fs::write(&zip, published).unwrap();
    }

    // A Flux of another origin without the APIs the install needs (here: an old source-controller
    // alone) is refused, not overwritten.
    let old_flux = home.path().join("old-flux.json");
    let schema =
        serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    let crd = serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "helmrepositories.source.toolkit.fluxcd.io"},
        "spec": {
            "group": "source.toolkit.fluxcd.io",
            "names": {"kind": "HelmRepository", "listKind": "HelmRepositoryList", "plural": "helmrepositories", "singular": "helmrepository"},
            "scope": "Namespaced",
            "versions": [{"name": "v1beta2", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema}}],
        },
    });
    std::fs::write(&old_flux, crd.to_string()).unwrap();
    rig.kubectl_ok(&["apply", "-f", old_flux.to_str().unwrap()]);
    rig.kubectl_ok(&[
        "wait",
        "--for",
        "condition=Established",
        "crd/helmrepositories.source.toolkit.fluxcd.io",
    ]);
    let refused = install(&rig, home.path(), &sources, &[]);
    assert_exit(&refused, 2, "install beside an older Flux");
    let said = stderr(&refused);
    assert!(
        said.contains("runs a Flux without") && said.contains("flux install"),
        "{said}"
    );
    assert!(
        !namespaces(&rig).contains("namespace/flux-system\n"),
        "{}",
        namespaces(&rig)
    );
}

#[test]
fn install_without_flux_installs_it_then_spinkube_through_it_and_the_example_app_rolls_out() {
    let Some((rig, sources)) = rig_without_flux() else {
        return;
    };
    let Some(registry) = Registry::open() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let ns = rig.bare_namespace("fluxless");

    let started = Instant::now();
    let installed = install(&rig, home.path(), &sources, &[]);
    assert_exit(&installed, 0, "cluster install without Flux");
    eprintln!("install with Flux took {:?}", started.elapsed());
    let report = json_stdout(&installed);
    let stages: Vec<&str> = (report["stages"].as_array().unwrap().iter())
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "flux",
            "cert-manager",
            "runtime-class-manager",
            "spin-operator",
            "shim"
        ]
    );
    let flux_system = ["get", "deployments", "-n", "flux-system"];
    let images = jsonpath(
        &rig,
        &flux_system,
        "{.items[*].spec.template.spec.containers[0].image}",
    );
    assert_eq!(
        images,
        "ghcr.io/fluxcd/helm-controller:v1.6.4 ghcr.io/fluxcd/source-controller:v1.9.5"
    );
    // The releases were reconciled by the real helm-controller the rig started for the install.
    let log = std::fs::read_to_string(rig.path("logs/helm-controller.log")).unwrap();
    for release in ["cert-manager", "runtime-class-manager", "spin-operator"] {
        let release_args = ["get", "helmrelease", release, "-n", "spin-aks"];
        let ready = jsonpath(
            &rig,
            &release_args,
            "{.status.conditions[?(@.type==\"Ready\")].status}",
        );
        assert_eq!(ready, "True", "{release}");
        assert!(
            log.contains(&format!("\"name\":\"{release}\"")),
            "{release}"
        );
    }

    let check = spin_aks_on(&rig, home.path())
        .arg("-f")
        .arg(&app)
        .args(["cluster", "check", "--output", "json", "-n", &ns])
        .output()
        .unwrap();
    assert_exit(&check, 0, "cluster check after the install");
    let reference = format!("{}/hello-aks", registry.host());
    let deployed = up(&rig, home.path(), &app, (&reference, &ns), &[]);
    assert_exit(&deployed, 0, "up after the install");
    assert_eq!(json_stdout(&deployed)["apply"]["rollout"]["ready"], 2);

    // Flux installed by spin-aks is kept current: a second run applies it again, unchanged.
    let started = Instant::now();
    let again = install(&rig, home.path(), &sources, &[]);
    assert_exit(&again, 0, "a second install");
    eprintln!("the unchanged re-run took {:?}", started.elapsed());
    let report = json_stdout(&again);
    let changed: Vec<&serde_json::Value> = (report["objects"].as_array().unwrap().iter())
        .filter(|o| o["action"] != "unchanged")
        .collect();
    assert!(changed.is_empty(), "a second install changed {changed:?}");
    assert!(kinds_and_names(&report).contains(&("Deployment".into(), "helm-controller".into())));
    assert!(report["labelled_nodes"].as_array().unwrap().is_empty());

    // Uninstall removes SpinKube and leaves Flux.
    let removed = spin_aks_on(&rig, home.path())
        .args(["cluster", "uninstall", "--force"])
        .output()
        .unwrap();
    assert_exit(&removed, 0, "uninstall --force");
    let left = jsonpath(&rig, &flux_system, "{.items[*].metadata.name}");
    assert_eq!(left, "helm-controller source-controller");
}
