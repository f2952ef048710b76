//! Flux's source- and helm-controller for a cluster that has no Flux: their CRDs from their Go
//! module zips, the rest our own objects laid out as `flux install` makes them, waited for.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::crds::ModuleSource;
use super::releases::{FluxControllers, Module};
use super::{stage, wait, Stage};
use crate::cluster::apply::{self, AppliedObject, ApplyOptions, ServedApis};
use crate::cluster::applyset::ApplySet;
use crate::cluster::connect::Connection;
use crate::output::Output;
use crate::workload::objects::MANAGED_BY;

/// Flux's namespace, as `flux install` names it.
pub const NAMESPACE: &str = "flux-system";
/// Where Flux publishes its controllers' images (`flux install --registry` changes it).
pub const DEFAULT_REGISTRY: &str = super::images::FLUX_REGISTRY;

/// Whether the cluster serves the Flux APIs the install uses.
pub fn served(resources: &ServedApis) -> bool {
    let served = |api_version: &str, kind: &str| resources.resolve(api_version, kind).is_ok();
    served("source.toolkit.fluxcd.io/v1", "HelmRepository")
        && served("helm.toolkit.fluxcd.io/v2", "HelmRelease")
}

/// Whether the install brings Flux (elsewhere than AKS): where the cluster has none, or keeps one
/// spin-aks installed current. A Flux of another origin that lacks the APIs (an older one, or
/// one without helm-controller) is refused rather than overwritten.
pub async fn needed(conn: &Connection, resources: &ServedApis) -> anyhow::Result<bool> {
    if installed_by_spin_aks(conn).await {
        return Ok(true);
    }
    if served(resources) {
        return Ok(false);
    }
    let some = [
        "HelmRepository.source.toolkit.fluxcd.io",
        "HelmRelease.helm.toolkit.fluxcd.io",
    ]
    .iter()
    .any(|group_kind| resources.resolve_group_kind(group_kind).is_some());
    if some {
        return Err(crate::bad_input!(
            "{} runs a Flux without what spin-aks installs SpinKube's charts through (source.toolkit.fluxcd.io/v1 HelmRepository and helm.toolkit.fluxcd.io/v2 HelmRelease): it is older than Flux v2.3, or has no helm-controller. spin-aks installs Flux only where there is none; upgrade that Flux with its helm-controller (`flux install`), then run this again",
            conn.context
        ));
    }
    Ok(true)
}

/// The ApplySet of the Flux spin-aks installed (its parent Secret `flux-applyset` in
/// [`NAMESPACE`]), apart from SpinKube's: `cluster uninstall` leaves Flux in place.
fn flux_set() -> ApplySet {
    ApplySet::for_app("flux", NAMESPACE)
}

/// Whether the Flux on the cluster is one spin-aks installed. A caller who may not read its
/// parent is taken as not: the rights check refuses them next.
pub async fn installed_by_spin_aks(conn: &Connection) -> bool {
    let kinds = apply::parent_group_kinds(conn, &flux_set()).await;
    kinds.is_ok_and(|kinds| !kinds.is_empty())
}

/// `wanted` and, where spin-aks installed Flux, those of `flux`'s controllers whose Deployments
/// run in [`NAMESPACE`], in `flux`'s order: what keeping that Flux current applies, so that
/// neither `cluster install` nor `fleet add --mirror` drops the other's controller (its RBAC
/// subjects, its grants).
pub async fn with_running<'a>(
    conn: &Connection,
    flux: &'a FluxControllers,
    wanted: &[&Module],
) -> anyhow::Result<Vec<&'a Module>> {
    let ours = installed_by_spin_aks(conn).await;
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(conn.client.clone(), NAMESPACE);
    let mut controllers = Vec::new();
    for module in flux.all_modules() {
        let running = match wanted.contains(&module) {
            true => true,
            false if !ours => false,
            false => deployments
                .get_opt(module.name())
                .await
                .map_err(|e| {
                    let action =
                        crate::cluster::errors::ApiCall::new("get", "deployments", Some(NAMESPACE));
                    crate::cluster::errors::explain(e, conn, action)
                })?
                .is_some(),
        };
        if running {
            controllers.push(module);
        }
    }
    Ok(controllers)
}

/// Labels of Flux's objects: `flux install`'s, a component's, and ours.
fn labels(component: Option<&str>) -> Value {
    let mut labels = json!({
        "app.kubernetes.io/part-of": "flux",
        "app.kubernetes.io/instance": NAMESPACE,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    });
    if let Some(component) = component {
        labels["app.kubernetes.io/component"] = json!(component);
    }
    labels
}

/// Each of `controllers`' CRDs from its module zip on `source` (refused unless its hash is the
/// pinned one), labelled as `flux install` labels them; [`objects_with`] is the rest of Flux.
pub async fn crds(
    http: &reqwest::Client,
    source: ModuleSource<'_>,
    controllers: &[&Module],
) -> anyhow::Result<Vec<Value>> {
    let crds = controllers.iter().map(|module| async move {
        let crds = super::crds::fetch(http, source, module).await?;
        Ok::<_, anyhow::Error>(labelled_crds(module, crds))
    });
    Ok(futures_util::future::try_join_all(crds).await?.concat())
}

/// What installing Flux's `controllers` applies: [`crds`], then [`objects_with`] their images.
pub async fn plan(
    http: &reqwest::Client,
    source: ModuleSource<'_>,
    controllers: &[&Module],
    image: &ControllerImage<'_>,
) -> anyhow::Result<Vec<Value>> {
    let mut plan = crds(http, source, controllers).await?;
    plan.extend(objects_with(controllers, image));
    Ok(plan)
}

/// The image a controller's Deployment runs, given its module.
pub type ControllerImage<'a> = dyn Fn(&Module) -> String + Sync + 'a;

/// A controller's image in `registry`: `<registry>/<controller>:<version>`.
pub fn image_in(registry: &str, module: &Module) -> String {
    format!("{registry}/{}:{}", module.name(), module.version)
}

/// A controller's CRDs (from its module zip) with the labels `flux install` gives them, by which
/// `flux check` and `flux uninstall` find them.
fn labelled_crds(module: &Module, mut crds: Vec<Value>) -> Vec<Value> {
    for crd in &mut crds {
        if !crd["metadata"]["labels"].is_object() {
            crd["metadata"]["labels"] = json!({});
        }
        let mut labels = labels(Some(module.name()));
        labels["app.kubernetes.io/version"] = json!(module.version);
        for (key, value) in labels.as_object().into_iter().flatten() {
            crd["metadata"]["labels"][key] = value.clone();
        }
    }
    crds
}

fn metadata(name: &str, component: Option<&str>) -> Value {
    json!({"name": name, "labels": labels(component)})
}

/// Everything but the CRDs of the controllers `cluster install` installs (source- and
/// helm-controller), their images `<registry>/<controller>:<version>`: see [`objects_with`].
pub fn objects(flux: &FluxControllers, registry: &str) -> Vec<Value> {
    objects_with(&flux.modules(), &|module| image_in(registry, module))
}

/// The API group whose kinds Flux's controller `name` reconciles.
fn api_group(name: &str) -> Option<&'static str> {
    match name {
        "source-controller" => Some("source.toolkit.fluxcd.io"),
        "helm-controller" => Some("helm.toolkit.fluxcd.io"),
        "kustomize-controller" => Some("kustomize.toolkit.fluxcd.io"),
        _ => None,
    }
}

/// Everything but the CRDs for `controllers`, each one's image as `image` names it (a mirror's
/// copy, by digest): the namespace, a ServiceAccount per controller, the RBAC `flux install` gives
/// them (their API groups, and cluster-admin for helm- and kustomize-controller, which apply
/// arbitrary objects), the quota that admits critical pods, the network policies,
/// source-controller's artifact Service (the others fetch artifacts from it) and a Deployment each.
pub fn objects_with(controllers: &[&Module], image: &ControllerImage<'_>) -> Vec<Value> {
    let names: Vec<&str> = controllers.iter().map(|module| module.name()).collect();
    let has = |name: &str| names.contains(&name);
    let accounts = names.iter().map(|name| {
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(name, Some(name))})
    });
    let subjects = |names: &[&str]| -> Vec<Value> {
        (names.iter())
            .map(|name| json!({"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}))
            .collect()
    };
    let all = |group: &str| json!({"apiGroups": [group], "resources": ["*"], "verbs": ["*"]});
    let mut rules: Vec<Value> = names.iter().filter_map(|n| api_group(n)).map(all).collect();
    rules.extend(json!([
        {"apiGroups": [""], "resources": ["namespaces", "secrets", "configmaps", "serviceaccounts"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        // Leader election.
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        {"apiGroups": [""], "resources": ["configmaps/status"], "verbs": ["get", "update", "patch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        // Object-level workload identity, and flow control.
        {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
        {"nonResourceURLs": ["/livez/ping"], "verbs": ["head"]},
    ]).as_array().cloned().unwrap_or_default());
    // Those that apply what their objects name, anywhere.
    let reconcilers: Vec<&str> = ["helm-controller", "kustomize-controller"]
        .into_iter()
        .filter(|name| has(name))
        .collect();
    let rbac = "rbac.authorization.k8s.io";
    let mut objects = vec![json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/warn-version": "latest",
        }},
    })];
    objects[0]["metadata"]["labels"]
        .as_object_mut()
        .expect("labels are an object")
        .extend(labels(None).as_object().cloned().unwrap_or_default());
    objects.extend(accounts);
    objects.extend([
        json!({"apiVersion": format!("{rbac}/v1"), "kind": "ClusterRole", "metadata": metadata("crd-controller-flux-system", None), "rules": rules}),
        json!({
            "apiVersion": format!("{rbac}/v1"),
            "kind": "ClusterRoleBinding",
            "metadata": metadata("crd-controller-flux-system", None),
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "crd-controller-flux-system"},
            "subjects": subjects(&names),
        }),
    ]);
    if !reconcilers.is_empty() {
        objects.push(json!({
            "apiVersion": format!("{rbac}/v1"),
            "kind": "ClusterRoleBinding",
            "metadata": metadata("cluster-reconciler-flux-system", None),
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": subjects(&reconcilers),
        }));
    }
    objects.extend([
        // Pods of a system-critical priority class outside kube-system need a quota that admits them.
        json!({
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": metadata("critical-pods-flux-system", None),
            "spec": {
                "hard": {"pods": "1000"},
                "scopeSelector": {"matchExpressions": [{"operator": "In", "scopeName": "PriorityClass", "values": ["system-node-critical", "system-cluster-critical"]}]},
            },
        }),
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": metadata("allow-egress", None),
            "spec": {"policyTypes": ["Ingress", "Egress"], "ingress": [{"from": [{"podSelector": {}}]}], "egress": [{}], "podSelector": {}},
        }),
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": metadata("allow-scraping", None),
            "spec": {"policyTypes": ["Ingress"], "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": 8080}]}], "podSelector": {}},
        }),
    ]);
    let source = "source-controller";
    if has(source) {
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(source, Some(source)),
            "spec": {
                "type": "ClusterIP",
                "selector": {"app": source},
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}],
            },
        }));
    }
    for module in controllers {
        objects.extend(match module.name() {
            "source-controller" => Some(source_controller(module, image)),
            "helm-controller" => Some(applier(module, image, 600)),
            "kustomize-controller" => Some(applier(module, image, 60)),
            _ => None,
        });
    }
    objects
}

/// source-controller: an artifact server on port 9090 (`http`), artifacts in an emptyDir.
fn source_controller(module: &Module, image: &ControllerImage<'_>) -> Value {
    let name = module.name();
    let container = json!({
        "ports": [port("http", 9090), port("http-prom", 8080), port("healthz", 9440)],
        "args": [
            "--watch-all-namespaces=true",
            "--log-level=info",
            "--log-encoding=json",
            "--enable-leader-election",
            "--storage-path=/data",
            format!("--storage-adv-addr={name}.$(RUNTIME_NAMESPACE).svc.cluster.local."),
        ],
        "env": [{"name": "TUF_ROOT", "value": "/tmp/.sigstore"}],
        "livenessProbe": {"httpGet": {"port": "healthz", "path": "/healthz"}},
        "readinessProbe": {"httpGet": {"port": "http", "path": "/"}},
        "resources": {"limits": {"cpu": "1000m", "memory": "1Gi"}, "requests": {"cpu": "50m", "memory": "64Mi"}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"}],
    });
    let mut deployment = deployment(module, image(module), container, 10, &["data", "tmp"]);
    // One pod at a time: its artifacts live in the pod.
    deployment["spec"]["strategy"] = json!({"type": "Recreate"});
    deployment
}

/// helm-controller (renders and installs the charts of HelmReleases) and kustomize-controller
/// (builds and applies the manifests of Kustomizations, its upstream
/// config/manager/deployment.yaml): the same container, each with its own grace period.
fn applier(module: &Module, image: &ControllerImage<'_>, grace_seconds: u32) -> Value {
    let container = json!({
        "ports": [port("http-prom", 8080), port("healthz", 9440)],
        "args": ["--watch-all-namespaces=true", "--log-level=info", "--log-encoding=json", "--enable-leader-election"],
        "env": [],
        "livenessProbe": {"httpGet": {"port": "healthz", "path": "/healthz"}},
        "readinessProbe": {"httpGet": {"port": "healthz", "path": "/readyz"}},
        "resources": {"limits": {"cpu": "1000m", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "64Mi"}},
        "volumeMounts": [{"name": "temp", "mountPath": "/tmp"}],
    });
    deployment(module, image(module), container, grace_seconds, &["temp"])
}

fn port(name: &str, number: u16) -> Value {
    json!({"containerPort": number, "name": name, "protocol": "TCP"})
}

/// A controller's Deployment: one replica, its `container` (ports, args, probes, mounts) as the
/// `manager` container of its image, hardened and memory-limited as Flux runs it.
fn deployment(
    module: &Module,
    image: String,
    mut container: Value,
    grace_seconds: u32,
    volumes: &[&str],
) -> Value {
    let name = module.name();
    container["name"] = json!("manager");
    container["image"] = json!(image);
    container["imagePullPolicy"] = json!("IfNotPresent");
    container["securityContext"] = json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    });
    let env = container["env"].as_array_mut().expect("env is a list");
    env.insert(
        0,
        json!({"name": "RUNTIME_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
    );
    env.push(json!({"name": "GOMEMLIMIT", "valueFrom": {"resourceFieldRef": {"containerName": "manager", "resource": "limits.memory"}}}));
    let volumes: Vec<Value> = (volumes.iter())
        .map(|volume| json!({"name": volume, "emptyDir": {}}))
        .collect();
    let mut pod_labels = labels(Some(name));
    pod_labels["app"] = json!(name);
    let mut labels = labels(Some(name));
    labels["control-plane"] = json!("controller");
    labels["app.kubernetes.io/version"] = json!(module.version);
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"},
                },
                "spec": {
                    "serviceAccountName": name,
                    "priorityClassName": "system-cluster-critical",
                    "terminationGracePeriodSeconds": grace_seconds,
                    "securityContext": {"fsGroup": 1337},
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    })
}

/// Applies Flux (`objects`: its CRDs and [`objects_with`]) and waits until its CRDs are
/// established and its controllers' Deployments available; `images_hint` says where the nodes'
/// images come from, should they not run.
pub async fn install(
    conn: &Connection,
    resources: &ServedApis,
    objects: Vec<Value>,
    timeout: Duration,
    images_hint: &str,
    out: &Output,
) -> anyhow::Result<(Vec<AppliedObject>, Stage)> {
    let started = Instant::now();
    let crds: Vec<String> = (objects.iter())
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    let deployments: Vec<String> = (objects.iter())
        .filter(|o| o["kind"] == "Deployment")
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    apply::ensure_namespace(conn, NAMESPACE, false).await?;
    let options = ApplyOptions::default();
    let applied = apply::apply(conn, resources, &flux_set(), objects, &options).await?;
    let progress = |m: &str| out.info(format!("Flux controllers: {m}"));
    let ready = async {
        for crd in &crds {
            wait::crd_established(conn, crd, timeout, &progress).await?;
        }
        let available = (deployments.iter())
            .map(|name| wait::deployment_available(conn, NAMESPACE, name, timeout, &progress));
        futures_util::future::try_join_all(available).await?;
        Ok::<_, anyhow::Error>(())
    };
    out.while_running("Flux controllers: waiting for them to run", ready)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "Flux's controllers did not become ready: {e:#}; see `kubectl describe deployment -n {NAMESPACE}` ({images_hint})"
            )
        })?;
    Ok((applied.objects, stage("flux", started)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_members_flux_is_source_and_kustomize_controller_with_flux_installs_rbac() {
        let flux = FluxControllers::pinned();
        let controllers = [&flux.source_controller, &flux.kustomize_controller];
        let objects = objects_with(&controllers, &|m| image_in("mirror.example/fluxcd", m));
        let named = |kind: &str, name: &str| {
            (objects.iter())
                .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
                .unwrap_or_else(|| panic!("{kind}/{name} in {objects:?}"))
        };
        let subjects = |binding: &Value| -> Vec<String> {
            (binding["subjects"].as_array().unwrap().iter())
                .map(|s| s["name"].as_str().unwrap().to_string())
                .collect()
        };
        let crb = named("ClusterRoleBinding", "crd-controller-flux-system");
        assert_eq!(subjects(crb), ["source-controller", "kustomize-controller"]);
        // flux2 manifests/rbac/rbac.yaml: cluster-admin for the controllers that apply objects.
        let admin = named("ClusterRoleBinding", "cluster-reconciler-flux-system");
        assert_eq!(subjects(admin), ["kustomize-controller"]);
        let rules = &named("ClusterRole", "crd-controller-flux-system")["rules"];
        let groups: Vec<&Value> = rules.as_array().unwrap()[..2]
            .iter()
            .map(|r| &r["apiGroups"][0])
            .collect();
        assert_eq!(
            groups,
            [
                &json!("source.toolkit.fluxcd.io"),
                &json!("kustomize.toolkit.fluxcd.io")
            ]
        );
        named("Service", "source-controller");
        assert!(!objects
            .iter()
            .any(|o| o["metadata"]["name"] == "helm-controller"));
        // kustomize-controller's config/manager/deployment.yaml: 60 s grace, probes on healthz.
        let deployment = named("Deployment", "kustomize-controller");
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["terminationGracePeriodSeconds"], 60);
        assert_eq!(pod["serviceAccountName"], "kustomize-controller");
        assert_eq!(
            pod["containers"][0]["image"],
            "mirror.example/fluxcd/kustomize-controller:v1.9.5"
        );
        assert_eq!(
            pod["containers"][0]["readinessProbe"]["httpGet"]["path"],
            "/readyz"
        );
    }
}
