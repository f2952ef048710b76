//! The air gap crossed whole (#29): a bundle made from stand-in publishers (support::publishers),
//! which are then cut off, is loaded into a fresh in-network registry, and `cluster install
//! --mirror` and `up` run from it on a bare rig, reaching nothing outside.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::publishers::Publishers;
use crate::support::registry::Registry;
use crate::support::rig::{private_rig_with, spin_aks_on, PrivateRig};
use crate::support::{self, apps::example_copy, json_stdout};
use spin_aks::install::images;
use spin_aks::install::releases::ReleaseSet;

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// What the pinned releases need from their publishers: images, charts, modules, the shim.
pub(crate) struct Upstream {
    images: Vec<(String, String)>,
    charts: Vec<(String, String, String)>,
    modules: Vec<(String, String)>,
    shim: String,
}

pub(crate) fn upstream() -> Upstream {
    let releases = ReleaseSet::pinned(&Default::default()).unwrap();
    let mut wanted = Vec::new();
    for chart in releases.charts() {
        wanted.extend(images::chart_images(chart).unwrap());
    }
    wanted.extend(images::flux_images(&releases.flux.all_modules()));
    let charts = (releases.charts().iter())
        .map(|c| {
            (
                c.registry.to_string(),
                c.name.to_string(),
                c.version.clone(),
            )
        })
        .collect();
    let mut modules = vec![&releases.operator_module];
    modules.extend(releases.flux.all_modules());
    Upstream {
        images: wanted.into_iter().map(|i| (i.repository, i.tag)).collect(),
        charts,
        modules: (modules.iter())
            .map(|m| (m.path.to_string(), m.version.to_string()))
            .collect(),
        shim: releases.shim.clone(),
    }
}

pub(crate) fn start_publishers(rig: &PrivateRig, upstream: &Upstream) -> Option<Publishers> {
    let images: Vec<(&str, &str)> = (upstream.images.iter())
        .map(|(r, t)| (r.as_str(), t.as_str()))
        .collect();
    let charts: Vec<(&str, &str, &str)> = (upstream.charts.iter())
        .map(|(r, n, v)| (r.as_str(), n.as_str(), v.as_str()))
        .collect();
    let modules: Vec<(&str, &str)> = (upstream.modules.iter())
        .map(|(p, v)| (p.as_str(), v.as_str()))
        .collect();
    Publishers::start(rig, &images, &charts, &modules, &upstream.shim)
}

/// The arguments after `bundle create` that make `out` from the publishers.
pub(crate) fn create_args(publishers: &Publishers, out: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["-o".into(), out.into()];
    args.push("--registries-conf".into());
    args.push(publishers.registries_conf().into());
    args.extend(["--module-proxy".into(), publishers.module_proxy().into()]);
    args.extend(["--shim-base-url".into(), publishers.shim_base().into()]);
    args
}

/// `bundle create -o <out>` from the publishers, more arguments after; its report.
fn create(
    rig: &PrivateRig,
    home: &Path,
    publishers: &Publishers,
    out: &Path,
    extra: &[&str],
) -> Value {
    let mut cmd = spin_aks_on(rig, home);
    cmd.args(["bundle", "create", "--output", "json"]);
    let output = cmd
        .args(create_args(publishers, out))
        .args(extra)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    json_stdout(&output)
}

/// `spin-aks <args>` on the rig, through the cut-off publishers' proxy; its output.
fn inside(
    rig: &PrivateRig,
    home: &Path,
    publishers: &Publishers,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = spin_aks_on(rig, home);
    for (key, value) in publishers.proxy_env() {
        cmd.env(key, value);
    }
    cmd.args(args).output().unwrap()
}

fn inspect(home: &Path, bundle: &Path) -> Value {
    let output = support::spin_aks(home)
        .args(["bundle", "inspect", "--output", "json"])
        .arg(bundle)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    json_stdout(&output)
}

fn items_of<'a>(inspected: &'a Value, kind: &str) -> Vec<&'a Value> {
    (inspected["contents"]["items"].as_array().unwrap().iter())
        .filter(|i| i["kind"] == kind)
        .collect()
}

#[test]
fn a_bundle_made_beside_the_publishers_installs_and_deploys_in_a_closed_network_reaching_nothing_outside(
) {
    let Some(in_network) = Registry::open() else {
        return;
    };
    let Some(rig) = private_rig_with(&["--bare", "--flux-on-install"]) else {
        return;
    };
    let upstream = upstream();
    let Some(mut publishers) = start_publishers(&rig, &upstream) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let mirror = in_network.host();
    let repository = format!("{mirror}/apps/hello-aks");
    let archive = home.path().join("hello.oci.tar");
    let exported = support::spin_aks(home.path())
        .arg("-f")
        .arg(&app)
        .args(["export", "--output", "json", "-o"])
        .arg(&archive)
        .args(["--with-deploy", &repository])
        .output()
        .unwrap();
    assert!(exported.status.success(), "{}", stderr(&exported));
    let app_digest = json_stdout(&exported)["digest"]
        .as_str()
        .unwrap()
        .to_string();

    // Connected side: every part copied, for amd64 only.
    let bundle = home.path().join("platform.tar");
    let app_arg = archive.to_string_lossy().into_owned();
    let created = create(
        &rig,
        home.path(),
        &publishers,
        &bundle,
        &["--app", &app_arg],
    );
    assert_eq!(created["unchanged"], false, "{created}");
    let inspected = inspect(home.path(), &bundle);
    assert_eq!(inspected["digest"], created["digest"]);
    assert_eq!(
        inspected["contents"]["platforms"],
        serde_json::json!(["linux/amd64"])
    );
    assert_eq!(items_of(&inspected, "chart").len(), 3, "{inspected}");
    assert_eq!(items_of(&inspected, "image").len(), upstream.images.len());
    assert_eq!(items_of(&inspected, "module").len(), upstream.modules.len());
    assert_eq!(items_of(&inspected, "shim").len(), 1);
    let app_items = items_of(&inspected, "app");
    assert_eq!(app_items.len(), 1);
    assert_eq!(app_items[0]["digest"], app_digest.as_str());
    assert_eq!(app_items[0]["name"], "apps/hello-aks");
    assert_eq!(items_of(&inspected, "deploy").len(), 1);
    // The images (indexes of amd64 and arm64) are filtered to amd64, so their upstream digest is
    // kept, and the publisher's signature of its first index cannot travel: it is named as left.
    assert!(items_of(&inspected, "signature").is_empty(), "{inspected}");
    for image in items_of(&inspected, "image") {
        assert!(image["upstreamDigest"].is_string(), "{image}");
        assert!(
            image["source"]
                .as_str()
                .unwrap()
                .starts_with(&publishers.registry()),
            "{image}"
        );
    }

    // Made again from unchanged inputs, the file is left as it was and nothing is fetched.
    let modified = std::fs::metadata(&bundle).unwrap().modified().unwrap();
    let again = create(
        &rig,
        home.path(),
        &publishers,
        &bundle,
        &["--app", &app_arg],
    );
    assert_eq!(again["unchanged"], true, "{again}");
    assert_eq!(again["fetched"], 0, "{again}");
    assert_eq!(again["digest"], created["digest"]);
    assert_eq!(
        std::fs::metadata(&bundle).unwrap().modified().unwrap(),
        modified
    );

    // The closed network: the publishers are gone, every connection to them or out is recorded.
    publishers.cut_off();
    let digest = created["digest"].as_str().unwrap();
    let bundle_arg = bundle.to_string_lossy().into_owned();
    let push = [
        "bundle",
        "push",
        "--output",
        "json",
        &bundle_arg,
        &mirror,
        "--digest",
        digest,
    ];
    let pushed = inside(&rig, home.path(), &publishers, &push);
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    let pushed = json_stdout(&pushed);
    assert_eq!(pushed["pushed"], pushed["items"], "{pushed}");
    let again = inside(&rig, home.path(), &publishers, &push);
    let again = json_stdout(&again);
    assert_eq!(again["pushed"], 0, "{again}");
    assert_eq!(again["blobs_uploaded"], 0, "{again}");

    let install = inside(
        &rig,
        home.path(),
        &publishers,
        &[
            "cluster",
            "install",
            "--output",
            "json",
            "--mirror",
            &mirror,
            "--timeout",
            "3m",
        ],
    );
    assert!(install.status.success(), "{}", stderr(&install));
    let install = json_stdout(&install);
    assert!(
        install["versions"]["source-controller"].is_string(),
        "Flux came from the mirror: {install}"
    );

    // Every Deployment runs a mirror's image by digest; the Shim's archive is the mirror's blob.
    let images = words(
        &rig,
        &["get", "deployments", "-A"],
        "{.items[*].spec.template.spec.containers[*].image}",
    );
    assert!(images.len() >= 7, "{images:?}");
    for image in &images {
        assert!(
            image.starts_with(&format!("{mirror}/")) && image.contains("@sha256:"),
            "{image} is not the mirror's, by digest"
        );
    }
    let shim: Value =
        serde_json::from_str(&rig.kubectl_ok(&["get", "shim", "spin-v2", "-o", "json"])).unwrap();
    let platforms = shim["spec"]["fetchStrategy"]["platforms"]
        .as_array()
        .unwrap();
    assert_eq!(platforms.len(), 1, "{shim}");
    let location = platforms[0]["location"].as_str().unwrap();
    let sha256 = platforms[0]["sha256"].as_str().unwrap();
    assert_eq!(
        location,
        format!("http://{mirror}/v2/spin-aks/containerd-shim-spin/blobs/sha256:{sha256}")
    );
    assert_eq!(platforms[0]["arch"], "x86_64");

    // The app, as pushed by the bundle, deployed from the mirror.
    let ns = rig.bare_namespace("airgap");
    let reference = format!("{repository}@{app_digest}");
    let up = inside(
        &rig,
        home.path(),
        &publishers,
        &[
            "-f",
            &app.to_string_lossy(),
            "apply",
            "-n",
            &ns,
            "--image",
            &reference,
            "--secret",
            "api_token=x",
            "--output",
            "json",
        ],
    );
    assert!(up.status.success(), "{}", stderr(&up));
    assert_eq!(rig.running_image(&ns, "hello-aks"), reference);

    let outside = publishers.outside_requests();
    assert!(
        outside.is_empty(),
        "reached outside the network: {outside:?}"
    );
}

/// A bundle of the platform only, made once per test from stand-in publishers on `rig`.
fn platform_bundle(rig: &PrivateRig, home: &Path) -> Option<(PathBuf, Value)> {
    let publishers = start_publishers(rig, &upstream())?;
    let bundle = home.join("platform.tar");
    let created = create(rig, home, &publishers, &bundle, &["--arch", "amd64,arm64"]);
    Some((bundle, created))
}

#[test]
fn a_bundle_with_a_changed_byte_loads_nothing_and_an_interrupted_push_resumes() {
    let Some(target) = Registry::start(support::registry::RegistryConfig::open().access_log())
    else {
        return;
    };
    let Some(rig) = private_rig_with(&["--bare", "--flux-on-install"]) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let Some((bundle, created)) = platform_bundle(&rig, home.path()) else {
        return;
    };
    let inspected = inspect(home.path(), &bundle);
    assert_eq!(
        inspected["contents"]["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    // Both platforms asked for: the publishers' indexes are kept as they are.
    for image in items_of(&inspected, "image") {
        assert!(image.get("upstreamDigest").is_none(), "{image}");
    }
    let shim = items_of(&inspected, "shim")[0]["bytes"].as_u64().unwrap();
    assert!(shim > 0);
    // The publisher's cosign signature of its first image travels under its tag.
    let signatures = items_of(&inspected, "signature");
    assert_eq!(signatures.len(), 1, "{inspected}");
    let signed = signatures[0]["name"].as_str().unwrap().to_string();
    let sig_tag = signatures[0]["tag"].as_str().unwrap().to_string();
    assert!(sig_tag.ends_with(".sig"), "{sig_tag}");

    // One byte changed in the middle of the largest blob (a module zip).
    let damaged = home.path().join("damaged.tar");
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = find_largest_entry_middle(&bytes);
    bytes[at] ^= 0x01;
    std::fs::write(&damaged, &bytes).unwrap();
    let refused = support::spin_aks(home.path())
        .args(["bundle", "push"])
        .arg(&damaged)
        .arg(target.host())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("is damaged, nothing was loaded"),
        "{}",
        stderr(&refused)
    );
    // The registry was only asked what it holds (the blobs to send are hashed once that is
    // known): nothing was written.
    let asked = target.requests();
    assert!(asked.iter().all(|r| r.starts_with("HEAD ")), "{asked:?}");
    // Another bundle than the one named is refused too, before anything is asked.
    let other = format!("sha256:{}", "0".repeat(64));
    let refused = support::spin_aks(home.path())
        .args(["bundle", "push"])
        .arg(&bundle)
        .arg(target.host())
        .args(["--digest", &other])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert_eq!(target.requests().len(), asked.len());

    // Cut off after a part went in: the re-run sends only what did not land.
    let cut = support::fault_proxy::FaultProxy::start(
        target.port(),
        Box::new(|n, _, _| match n {
            0..40 => support::fault_proxy::Fault::Pass,
            _ => support::fault_proxy::Fault::Unavailable,
        }),
    );
    let push = |registry: &str, extra: &[&str]| {
        support::spin_aks(home.path())
            .args(["bundle", "push", "--output", "json"])
            .arg(&bundle)
            .arg(registry)
            .args(extra)
            .output()
            .unwrap()
    };
    let first = push(&cut.host(), &["--retry-budget", "1s", "--jobs", "1"]);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let landed: std::collections::BTreeSet<String> = (target.requests().iter())
        .filter(|r| r.starts_with("PUT ") && r.contains("/blobs/uploads/"))
        .filter_map(|r| {
            r.split("digest=")
                .nth(1)
                .map(|d| d.split('&').next().unwrap().to_string())
        })
        .collect();
    assert!(!landed.is_empty(), "{:?}", target.requests());
    let second = push(&target.host(), &[]);
    assert!(second.status.success(), "{}", stderr(&second));
    let second = json_stdout(&second);
    let Some(fresh) = Registry::open() else {
        return;
    };
    let whole = json_stdout(&push(&fresh.host(), &[]));
    let total = whole["blobs_uploaded"].as_u64().unwrap();
    assert_eq!(
        second["blobs_uploaded"].as_u64().unwrap() + landed.len() as u64,
        total,
        "the re-run sent only what had not landed: {second}"
    );
    let third = json_stdout(&push(&target.host(), &[]));
    assert_eq!(third["pushed"], 0, "{third}");
    // The signature is in the mirror under its tag, as cosign looks for it.
    let sig = support::registry::request(
        &target.host(),
        "HEAD",
        &format!("/v2/{signed}/manifests/{sig_tag}"),
    );
    assert_eq!(sig, 200);
    assert_eq!(whole["digest"], created["digest"]);
}

/// An offset in the middle of the largest file of the tar `bytes`.
fn find_largest_entry_middle(bytes: &[u8]) -> usize {
    let mut archive = tar::Archive::new(bytes);
    let mut best = (0u64, 0usize);
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let size = entry.header().size().unwrap();
        if size > best.0 {
            best = (size, entry.raw_file_position() as usize + size as usize / 2);
        }
    }
    best.1
}

/// The AKS route: `cluster create --mirror` through the fake ARM, whose new cluster is a bare rig
/// with Flux (the AKS extension's part): SpinKube installed from the mirror alone.
#[test]
fn cluster_create_with_a_mirror_installs_spinkube_from_it_alone() {
    use crate::cluster_aks::{run_blocking, Aks};

    let Some(in_network) = Registry::open() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let aks = runtime.block_on(Aks::empty());
    let rig = aks.rigs_on_create(&["--bare", "--flux"]);
    let create = |extra: &[&str], env: &[(String, String)]| {
        let mut cmd = aks.azure(&["cluster", "create", "-y", "--cluster", "spin1"]);
        cmd.args(["--resource-group", "rg-air", "--location", "West Europe"])
            .args(extra)
            .env("SPIN_AKS_ARM_DELAY_SCALE", "0.05");
        for (key, value) in env {
            cmd.env(key, value);
        }
        runtime.block_on(run_blocking(cmd))
    };
    let first = create(&["--no-install"], &[]);
    if !first.status.success() {
        let why = stderr(&first);
        if why.contains("the kube rig did not start") {
            support::skip(&why);
            return;
        }
        panic!("{why}");
    }
    let guard = rig.lock().unwrap();
    let new = guard.as_ref().expect("the creation stood up a rig");
    let home = tempfile::tempdir().unwrap();
    let Some(mut publishers) = start_publishers(new, &upstream()) else {
        return;
    };
    let bundle = home.path().join("platform.tar");
    create_bundle_and_push(
        new,
        home.path(),
        &mut publishers,
        &bundle,
        &in_network.host(),
    );

    let mirror = in_network.host();
    let installed = create(
        &["--mirror", &mirror, "--timeout", "5m"],
        &publishers.proxy_env(),
    );
    assert!(installed.status.success(), "{}", stderr(&installed));
    let report = json_stdout(&installed);
    assert_eq!(
        report["install"]["aks"]["flux_extension_installed"], true,
        "{report}"
    );
    // SpinKube's Deployments run the mirror's images by digest (Flux is the extension's here).
    let images = words(
        new,
        &["get", "deployments", "-n", "cert-manager"],
        "{.items[*].spec.template.spec.containers[*].image}",
    );
    assert_eq!(images.len(), 3, "{images:?}");
    for image in images {
        assert!(
            image.starts_with(&format!("{mirror}/quay.io/jetstack/")) && image.contains("@sha256:"),
            "{image}"
        );
    }
    let location = new.kubectl_ok(&[
        "get",
        "shim",
        "spin-v2",
        "-o",
        "jsonpath={.spec.fetchStrategy.platforms[0].location}",
    ]);
    assert!(
        location.starts_with(&format!(
            "http://{mirror}/v2/spin-aks/containerd-shim-spin/blobs/sha256:"
        )),
        "{location}"
    );
    let outside = publishers.outside_requests();
    assert!(
        outside.is_empty(),
        "reached outside the network: {outside:?}"
    );
}

/// `kubectl get <what> -o jsonpath=<path>` on the rig, split at whitespace.
fn words(rig: &PrivateRig, what: &[&str], path: &str) -> Vec<String> {
    let mut args = what.to_vec();
    let jsonpath = format!("jsonpath={path}");
    args.extend(["-o", &jsonpath]);
    let text = rig.kubectl_ok(&args);
    text.split_whitespace().map(str::to_string).collect()
}

#[test]
fn fleet_add_with_a_mirror_installs_kustomize_controller_from_it_and_the_member_follows_the_artifact(
) {
    let Some(in_network) = Registry::open() else {
        return;
    };
    let Some(rig) = private_rig_with(&["--bare", "--flux-on-install"]) else {
        return;
    };
    let Some(mut publishers) = start_publishers(&rig, &upstream()) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let app_arg = app.to_string_lossy().into_owned();
    let bundle = home.path().join("platform.tar");
    let created = create(&rig, home.path(), &publishers, &bundle, &[]);
    publishers.cut_off();
    let mirror = in_network.host();
    let bundle_arg = bundle.to_string_lossy().into_owned();
    let digest = created["digest"].as_str().unwrap();
    let push = ["bundle", "push", &bundle_arg, &mirror, "--digest", digest];
    let pushed = inside(&rig, home.path(), &publishers, &push);
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    // SpinKube and Flux's source- and helm-controller from the mirror, as an air-gapped platform
    // starts; no kustomize-controller yet.
    let install = ["cluster", "install", "--mirror", &mirror, "--timeout", "3m"];
    let installed = inside(&rig, home.path(), &publishers, &install);
    assert!(installed.status.success(), "{}", stderr(&installed));
    let flux_deployments = || {
        words(
            &rig,
            &["get", "deployments", "-n", "flux-system"],
            "{.items[*].metadata.name}",
        )
    };
    assert_eq!(flux_deployments(), ["helm-controller", "source-controller"]);

    // The app's deploy artifact, published to the in-network registry.
    let image = format!("{mirror}/apps/hello-aks@sha256:{}", "ab".repeat(32));
    let publish = [
        "-f", &app_arg, "publish", "--image", &image, "--env", "prod",
    ];
    let published = inside(&rig, home.path(), &publishers, &publish);
    assert!(published.status.success(), "{}", stderr(&published));

    // Without --mirror the member is refused, naming the other way, and nothing is written.
    let ns = rig.bare_namespace("fleet-mirror");
    let add = |extra: &[&str]| {
        let mut args = vec![
            "-f", &app_arg, "fleet", "add", "rig", "-n", &ns, "--env", "prod",
        ];
        args.extend([
            "--interval",
            "5s",
            "--timeout",
            "1m",
            "--secret",
            "api_token=x",
        ]);
        args.extend(extra);
        inside(&rig, home.path(), &publishers, &args)
    };
    let refused = add(&[]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    for wanted in ["kustomize-controller", "--mirror"] {
        assert!(
            stderr(&refused).contains(wanted),
            "{wanted:?} in {}",
            stderr(&refused)
        );
    }
    let namespaces = words(&rig, &["get", "namespaces"], "{.items[*].metadata.name}");
    assert!(!namespaces.contains(&ns), "{namespaces:?}");

    let added = add(&["--mirror", &mirror, "--output", "json"]);
    assert!(added.status.success(), "{}", stderr(&added));
    let added = json_stdout(&added);
    let objects = added["clusters"][0]["objects"].to_string();
    for wanted in [
        "deployment/kustomize-controller created",
        "customresourcedefinition/kustomizations.kustomize.toolkit.fluxcd.io created",
        "kustomization/hello-aks created",
    ] {
        assert!(objects.contains(wanted), "{wanted:?} in {objects}");
    }
    // Every Flux controller runs the mirror's image, pinned by the digest the mirror holds.
    assert_eq!(
        flux_deployments(),
        [
            "helm-controller",
            "kustomize-controller",
            "source-controller"
        ]
    );
    let images = words(
        &rig,
        &["get", "deployments", "-n", "flux-system"],
        "{.items[*].spec.template.spec.containers[*].image}",
    );
    assert_eq!(images.len(), 3, "{images:?}");
    for image in &images {
        let (repository, digest) = image.split_once('@').unwrap();
        let name = repository.strip_prefix(&format!("{mirror}/")).unwrap();
        assert!(
            name.starts_with("ghcr.io/fluxcd/") && digest.starts_with("sha256:"),
            "{image}"
        );
        let path = format!("/v2/{name}/manifests/{digest}");
        assert_eq!(
            support::registry::request(&mirror, "HEAD", &path),
            200,
            "{image}"
        );
    }
    // `flux install`'s RBAC: the kustomize API group for the three, cluster-admin for the two
    // that apply arbitrary objects (flux2 manifests/rbac/rbac.yaml).
    let crb = |name: &str| {
        let path = "{.subjects[*].name}";
        words(&rig, &["get", "clusterrolebinding", name], path)
    };
    assert_eq!(
        crb("crd-controller-flux-system"),
        [
            "source-controller",
            "helm-controller",
            "kustomize-controller"
        ]
    );
    assert_eq!(
        crb("cluster-reconciler-flux-system"),
        ["helm-controller", "kustomize-controller"]
    );
    let groups = words(
        &rig,
        &["get", "clusterrole", "crd-controller-flux-system"],
        "{.rules[*].apiGroups[*]}",
    );
    assert!(
        groups.contains(&"kustomize.toolkit.fluxcd.io".to_string()),
        "{groups:?}"
    );

    if rig.env("KUSTOMIZE_ON_INSTALL").is_some() {
        // The real kustomize-controller, started as its pod would, applies the artifact.
        rig.kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "--timeout=120s",
            "-n",
            &ns,
            "kustomization/hello-aks",
        ]);
        assert_eq!(rig.running_image(&ns, "hello-aks"), image);
    } else {
        support::skip("the Kustomization's Ready: build-flux-kustomize.sh's cache has no kustomize-controller");
    }

    // Keeping the platform current keeps kustomize-controller, which `fleet add` added.
    let plan = [
        "cluster",
        "install",
        "--mirror",
        &mirror,
        "--dry-run",
        "--output",
        "json",
    ];
    let planned = inside(&rig, home.path(), &publishers, &plan);
    assert!(planned.status.success(), "{}", stderr(&planned));
    let planned = json_stdout(&planned);
    assert_eq!(
        planned["versions"]["kustomize-controller"], "v1.9.5",
        "{planned}"
    );

    let outside = publishers.outside_requests();
    assert!(
        outside.is_empty(),
        "reached outside the network: {outside:?}"
    );
}

/// A platform bundle made from `publishers`, which are then cut off, pushed to `mirror`.
fn create_bundle_and_push(
    rig: &PrivateRig,
    home: &Path,
    publishers: &mut Publishers,
    bundle: &Path,
    mirror: &str,
) {
    create(rig, home, publishers, bundle, &[]);
    publishers.cut_off();
    let bundle_arg = bundle.to_string_lossy().into_owned();
    let pushed = inside(
        rig,
        home,
        publishers,
        &["bundle", "push", &bundle_arg, mirror],
    );
    assert!(pushed.status.success(), "{}", stderr(&pushed));
}

/// `bundle push --trust-cert`: the app's Notary Project signature, carried in the bundle, is
/// verified before anything is sent; a signer not trusted loads nothing.
#[test]
fn bundle_push_verifies_the_apps_signature_before_loading_anything() {
    use crate::notation::test_pki::{self, KeyKind, Leaf};

    let Some(target) = Registry::start(support::registry::RegistryConfig::open().access_log())
    else {
        return;
    };
    let Some(rig) = private_rig_with(&["--bare", "--flux-on-install"]) else {
        return;
    };
    let Some(publishers) = start_publishers(&rig, &upstream()) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| support::write_file(home.path(), name, text);
    let ours = test_pki::make("spin-aks bundle root", &Leaf::new(KeyKind::P256));
    let (key, chain, root) = (
        file("key.pem", &ours.key_pem),
        file("chain.pem", &ours.chain_pem),
        file("root.pem", &ours.root_pem),
    );
    let theirs = test_pki::make("someone else's root", &Leaf::new(KeyKind::P256));
    let their_root = file("their-root.pem", &theirs.root_pem);
    let app = example_copy(home.path());
    let archive = home.path().join("hello.oci.tar");
    let repository = format!("{}/apps/hello-aks", target.host());
    let exported = support::spin_aks(home.path())
        .arg("-f")
        .arg(&app)
        .args(["export", "-o"])
        .arg(&archive)
        .args([
            "--with-deploy",
            &repository,
            "--sign",
            &key,
            "--sign-cert",
            &chain,
        ])
        .output()
        .unwrap();
    assert!(exported.status.success(), "{}", stderr(&exported));
    let bundle = home.path().join("signed.tar");
    let app_arg = archive.to_string_lossy().into_owned();
    create(
        &rig,
        home.path(),
        &publishers,
        &bundle,
        &["--app", &app_arg],
    );
    let push = |trust: &str| {
        support::spin_aks(home.path())
            .args(["bundle", "push", "--output", "json"])
            .arg(&bundle)
            .arg(target.host())
            .args(["--trust-cert", trust])
            .output()
            .unwrap()
    };
    let refused = push(&their_root);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(target.requests().is_empty(), "{:?}", target.requests());
    let loaded = push(&root);
    assert!(loaded.status.success(), "{}", stderr(&loaded));
    let report = json_stdout(&loaded);
    assert!(
        report["verified"]["signer"]
            .as_str()
            .unwrap()
            .contains("CN="),
        "{report}"
    );
    assert_eq!(report["pushed"], report["items"], "{report}");
}
