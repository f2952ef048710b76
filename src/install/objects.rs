//! The objects `cluster install` applies, typed: Flux `HelmRepository`/`HelmRelease` for each
//! chart (helm-controller renders and installs them in the cluster), the `HelmChart` helm-controller
//! would make for each (created ahead of it) and runtime-class-manager's `Shim`.

use serde::Serialize;
use serde_json::{json, Value};

use super::images::{self, Image};
use super::mirror::Resolved;
use super::releases::{Chart, ReleaseSet};
use crate::workload::objects::{DEFAULT_RUNTIME_CLASS, MANAGED_BY};

/// The namespace of spin-aks's Flux objects.
pub const NAMESPACE: &str = "spin-aks";
/// Where runtime-class-manager runs its privileged shim installer Jobs (its release's namespace).
pub const INSTALLER_NAMESPACE: &str = "runtime-class-manager";
/// The namespace cert-manager's release installs into.
pub const CERT_MANAGER_NAMESPACE: &str = "cert-manager";
/// The namespace spin-operator's release installs into.
pub const OPERATOR_NAMESPACE: &str = "spin-operator";
/// The node label the Shim selects (as SpinKube's docs use it).
pub const NODE_LABEL: (&str, &str) = ("spin", "true");
/// The shim's containerd handler, which the RuntimeClass names.
pub const HANDLER: &str = "spin-v2";
/// The finalizer helm-controller puts on a HelmRelease and source-controller on a HelmChart
/// (helm-controller api/v2/helmrelease_types.go:37, source-controller api/v1/condition_types.go:19).
/// Each controller's first reconcile of an object without it only adds it and requeues, and the
/// requeue waits out the controllers' `--min-retry-delay` (750 ms): the objects carry it from the start.
pub const FLUX_FINALIZER: &str = "finalizers.fluxcd.io";
/// How often helm-controller reconciles a release (and so a chart) unasked.
const INTERVAL: &str = "1h";
/// [`INTERVAL`] as helm-controller writes it into the HelmChart it makes (a `metav1.Duration`).
const CHART_INTERVAL: &str = "1h0m0s";

/// Where the charts come from: their publishers, or one mirror registry for all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChartSource {
    Publishers,
    /// `host[:port]/path`; `insecure`: plain HTTP (a loopback mirror, or `--plain-http`).
    Mirror {
        registry: String,
        insecure: bool,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Object<S> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Value,
    spec: S,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HelmRepositorySpec {
    #[serde(rename = "type")]
    type_: &'static str,
    url: String,
    interval: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    insecure: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HelmReleaseSpec {
    interval: &'static str,
    release_name: &'static str,
    target_namespace: &'static str,
    storage_namespace: &'static str,
    chart: ChartTemplate,
    install: Lifecycle,
    upgrade: Lifecycle,
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_strategy: Option<Value>,
    values: Value,
}

#[derive(Serialize)]
struct ChartTemplate {
    spec: ChartSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChartSpec {
    chart: &'static str,
    version: String,
    source_ref: Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Lifecycle {
    #[serde(skip_serializing_if = "Option::is_none")]
    create_namespace: Option<bool>,
    crds: &'static str,
    /// Helm's client-side check of the rendered objects: with it, each build of a manifest asks
    /// the API server's OpenAPI v3 document of every group-version the chart uses whether that
    /// group takes `fieldValidation` (kubectl pkg/cmd/util/factory_client_access.go, `Validator`),
    /// then leaves the validation to the server (Helm 4 creates and updates with
    /// `fieldValidation=Strict`, pkg/kube/client.go) — seconds of fetching and parsing on each
    /// install, for nothing the server does not check anyway.
    #[serde(rename = "disableOpenAPIValidation")]
    disable_open_api_validation: bool,
    /// helm-controller's own wait for the release's workloads: Helm's legacy waiter looks every
    /// 2 s (its kstatus poller every 5 s), so each release took up to 2 s after its Deployments
    /// were available. Off: spin-aks watches those Deployments itself (`wait::workloads_available`)
    /// and sees each change as the API server sends it.
    disable_wait: bool,
    remediation: Value,
}

fn metadata(name: &str, namespace: Option<&str>) -> Value {
    let mut metadata = json!({
        "name": name,
        "labels": {"app.kubernetes.io/managed-by": MANAGED_BY},
    });
    if let Some(namespace) = namespace {
        metadata["namespace"] = json!(namespace);
    }
    metadata
}

fn to_value<S: Serialize>(object: Object<S>) -> Value {
    serde_json::to_value(object).expect("install objects serialize")
}

/// The namespace the Flux objects live in.
pub fn namespace() -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata(NAMESPACE, None)})
}

/// The HelmRepository a chart comes from: its publisher's registry, or the mirror.
fn repository_name(chart: &Chart, source: &ChartSource) -> String {
    match source {
        ChartSource::Mirror { .. } => "chart-mirror".to_string(),
        // `quay.io/jetstack/charts` → `jetstack`, `ghcr.io/spinframework/charts` → `spinframework`.
        ChartSource::Publishers => chart
            .registry
            .split('/')
            .nth(1)
            .unwrap_or("charts")
            .to_string(),
    }
}

/// One HelmRepository per registry the charts come from.
pub fn repositories(releases: &ReleaseSet, source: &ChartSource) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut objects = Vec::new();
    for chart in releases.charts() {
        let name = repository_name(chart, source);
        if seen.contains(&name) {
            continue;
        }
        let (url, insecure) = match source {
            ChartSource::Publishers => (format!("oci://{}", chart.registry), false),
            ChartSource::Mirror { registry, insecure } => (format!("oci://{registry}"), *insecure),
        };
        objects.push(to_value(Object {
            api_version: "source.toolkit.fluxcd.io/v1",
            kind: "HelmRepository",
            metadata: metadata(&name, Some(NAMESPACE)),
            spec: HelmRepositorySpec {
                type_: "oci",
                url,
                interval: INTERVAL,
                insecure,
            },
        }));
        seen.push(name);
    }
    objects
}

/// The three HelmReleases: cert-manager (its CRDs on, its `startupapicheck` hook off: spin-aks
/// checks its API itself, see `wait::cert_manager_api`), runtime-class-manager (images pinned to
/// its release, not `latest`), spin-operator (applied once cert-manager serves: its webhook
/// certificate), each with helm-controller's finalizer and without its wait for the workloads
/// after an install or upgrade (spin-aks watches them). `legacy_wait`: helm-controller serves
/// `spec.waitStrategy` and is told to wait as Helm 3 did where it still waits (a rollback) —
/// polling every 2 s — rather than with its default kstatus poller, which looks every 5 s.
pub fn releases(
    releases: &ReleaseSet,
    source: &ChartSource,
    legacy_wait: bool,
    mirror: Option<&Resolved>,
) -> anyhow::Result<Vec<Value>> {
    let rcm_tag = format!("v{}", releases.runtime_class_manager.version);
    let planned = [
        (
            &releases.cert_manager,
            CERT_MANAGER_NAMESPACE,
            json!({"crds": {"enabled": true}, "startupapicheck": {"enabled": false}}),
        ),
        (
            &releases.runtime_class_manager,
            INSTALLER_NAMESPACE,
            json!({
                "image": {"tag": rcm_tag},
                "rcm": {
                    "shimDownloaderImage": {"tag": rcm_tag},
                    "nodeInstallerImage": {"tag": rcm_tag},
                },
            }),
        ),
        (&releases.spin_operator, OPERATOR_NAMESPACE, json!({})),
    ];
    let mut objects = Vec::new();
    for (chart, namespace, mut values) in planned {
        if let Some(mirror) = mirror {
            for image in images::chart_images(chart)? {
                if !mirror.images.contains_key(&image.repository) {
                    anyhow::bail!("the mirror's look-up holds no {}", image.reference());
                }
            }
            let mirrored = |image: &Image| {
                let (repository, digest) = &mirror.images[&image.repository];
                (repository.clone(), digest.to_string())
            };
            merge(&mut values, images::mirror_values(chart, &mirrored)?);
        }
        let remediation = json!({"retries": 3});
        objects.push(to_value(Object {
            api_version: "helm.toolkit.fluxcd.io/v2",
            kind: "HelmRelease",
            metadata: finalized(metadata(chart.name, Some(NAMESPACE))),
            spec: HelmReleaseSpec {
                interval: INTERVAL,
                release_name: chart.name,
                target_namespace: namespace,
                storage_namespace: namespace,
                chart: ChartTemplate {
                    spec: ChartSpec {
                        chart: chart.name,
                        version: chart.version.clone(),
                        source_ref: json!({
                            "kind": "HelmRepository",
                            "name": repository_name(chart, source),
                        }),
                    },
                },
                install: Lifecycle {
                    create_namespace: Some(true),
                    crds: "CreateReplace",
                    disable_open_api_validation: true,
                    disable_wait: true,
                    remediation: remediation.clone(),
                },
                upgrade: Lifecycle {
                    create_namespace: None,
                    crds: "CreateReplace",
                    disable_open_api_validation: true,
                    disable_wait: true,
                    remediation,
                },
                wait_strategy: legacy_wait.then(|| json!({"name": "legacy"})),
                values,
            },
        }));
    }
    Ok(objects)
}

/// Merges `over` into `base`, object by object; anything else in `over` replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, over) => *base = over,
    }
}

/// `metadata` with [`FLUX_FINALIZER`].
fn finalized(mut metadata: Value) -> Value {
    metadata["finalizers"] = json!([FLUX_FINALIZER]);
    metadata
}

/// The name helm-controller gives the HelmChart of release `name` in [`NAMESPACE`]
/// (`<namespace>-<name>`, helm-controller api/v2/helmrelease_types.go:1580).
pub fn chart_name(name: &str) -> String {
    format!("{NAMESPACE}-{name}")
}

/// The HelmChart helm-controller makes from each release's chart template
/// (internal/reconcile/helmchart_template.go, `buildHelmChartFromTemplate` and the owner labels
/// it sets), field for field, with source-controller's finalizer. Created before the releases
/// (spin-operator's long before its own), source-controller fetches every chart at once, and
/// helm-controller finds its HelmChart in place, unchanged, instead of making it and waiting for
/// the fetch.
pub fn charts(releases: &ReleaseSet, source: &ChartSource) -> Vec<Value> {
    (releases.charts().into_iter())
        .map(|chart| {
            json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "HelmChart",
                "metadata": {
                    "name": chart_name(chart.name),
                    "namespace": NAMESPACE,
                    "labels": {
                        "helm.toolkit.fluxcd.io/name": chart.name,
                        "helm.toolkit.fluxcd.io/namespace": NAMESPACE,
                    },
                    "finalizers": [FLUX_FINALIZER],
                },
                "spec": {
                    "chart": chart.name,
                    "version": chart.version,
                    "sourceRef": {"kind": "HelmRepository", "name": repository_name(chart, source)},
                    "interval": CHART_INTERVAL,
                    "reconcileStrategy": "ChartVersion",
                },
            })
        })
        .collect()
}

/// runtime-class-manager's Shim: the shim's release archive per architecture, installed on the
/// nodes carrying [`NODE_LABEL`], and the RuntimeClass SpinApps run with.
pub fn shim(releases: &ReleaseSet, mirror: Option<&Resolved>) -> Value {
    let platforms: Vec<Value> = match mirror {
        // From the mirror, each archive is checked against the digest it is stored under.
        Some(mirror) => (mirror.shim.iter())
            .map(|a| json!({"os": "linux", "arch": a.arch, "location": a.location, "sha256": a.sha256}))
            .collect(),
        None => ["x86_64", "aarch64"]
            .iter()
            .map(|arch| json!({"os": "linux", "arch": arch, "location": releases.shim_archive(arch)}))
            .collect(),
    };
    json!({
        "apiVersion": "runtime.spinkube.dev/v1alpha1",
        "kind": "Shim",
        "metadata": metadata(HANDLER, None),
        "spec": {
            "nodeSelector": {NODE_LABEL.0: NODE_LABEL.1},
            "fetchStrategy": {"platforms": platforms},
            "runtimeClass": {"name": DEFAULT_RUNTIME_CLASS, "handler": HANDLER},
            "rolloutStrategy": {"type": "recreate"},
            "containerdRuntimeOptions": {"SystemdCgroup": "true"},
        },
    })
}
