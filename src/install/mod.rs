//! `cluster install` as a step: SpinKube made ready on a cluster through Flux's helm-controller
//! (installed first where Flux is missing) — charts as HelmReleases, the operator's CRDs, the Shim
//! and the node labels it selects — each stage waited for, a re-run changing nothing.

pub mod aks;
pub mod charts;
pub mod crds;
pub mod flux;
pub mod images;
pub mod mirror;
pub mod objects;
pub mod preflight;
pub mod releases;
pub mod uninstall;
pub mod up;
mod wait;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde::Serialize;
use serde_json::{json, Value};

use self::objects::ChartSource;
use self::releases::ReleaseSet;
use crate::cluster::apply::{
    self, AppliedObject, ApplyOptions, ObjectAction, ServedApis, FIELD_MANAGER,
};
use crate::cluster::applyset::ApplySet;
use crate::cluster::connect::Connection;
use crate::cluster::errors::{explain, ApiCall};
use crate::output::Output;

/// The install flags, validated (made by `cli`: `ClusterInstallArgs::settings`).
#[derive(Clone, Debug)]
pub struct InstallSettings {
    pub releases: ReleaseSet,
    pub charts: ChartSource,
    /// A GOPROXY-style base URL the operator's and Flux's modules (their CRDs) come from.
    pub module_proxy: String,
    /// Where the images of Flux's controllers come from (`host[/path]`), where Flux is installed.
    pub flux_registry: String,
    /// One registry holding every part, as `bundle push` loads it (charts, images, CRDs, Flux,
    /// the shim's archives): nothing is taken from elsewhere.
    pub mirror: Option<mirror::Mirror>,
    /// Plan only: the objects are listed, nothing is written.
    pub dry_run: bool,
    /// How long each stage may take.
    pub timeout: Duration,
}

/// What `cluster install` reports.
#[derive(Debug, Serialize)]
pub struct InstallReport {
    pub cluster: String,
    pub versions: Value,
    pub objects: Vec<AppliedObject>,
    /// Nodes given the shim's label now.
    pub labelled_nodes: Vec<String>,
    pub stages: Vec<Stage>,
    /// What ARM changed on an AKS cluster (the Flux extension, agent pool labels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aks: Option<aks::AksChanges>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// One stage waited for, and how long it took.
#[derive(Debug, Serialize)]
pub struct Stage {
    pub name: String,
    pub seconds: f64,
}

impl InstallReport {
    /// Whether the run changed anything on the cluster.
    pub fn changed(&self) -> bool {
        let aks = self.aks.as_ref();
        !self.labelled_nodes.is_empty()
            || aks.is_some_and(|a| a.flux_extension_installed || !a.labelled_pools.is_empty())
            || self
                .objects
                .iter()
                .any(|o| o.action != ObjectAction::Unchanged)
    }
}

/// Where `cluster install` takes Flux's images from, named when they do not run.
const FLUX_IMAGES_HINT: &str =
    "the nodes must pull their images: name a mirror with --flux-registry or --mirror";

/// The ApplySet of everything the install applies (its parent lives in [`objects::NAMESPACE`]).
fn install_set() -> ApplySet {
    ApplySet::for_app("spinkube", objects::NAMESPACE)
}

/// Installs (or upgrades to) `settings.releases` on the cluster of `conn`. `on_aks`: an AKS
/// cluster reached through ARM, whose Flux is its cluster extension and whose agent pools carry
/// the shim's label; elsewhere the nodes are labelled through the API, and Flux's controllers are
/// installed when the cluster has no Flux (and kept current when spin-aks installed them).
pub async fn install(
    conn: &Connection,
    settings: &InstallSettings,
    on_aks: bool,
    out: &Output,
) -> anyhow::Result<InstallReport> {
    let mut resources = ServedApis::discover(conn).await?;
    let label_nodes = !on_aks;
    let with_flux = !on_aks && flux::needed(conn, &resources).await?;
    // A dry run lists the plan even where Flux is still to come (the AKS extension).
    if !settings.dry_run && !with_flux {
        require_flux(conn, &resources)?;
    }
    let http = crate::registry::client::http_client(&Default::default())?;
    let releases = &settings.releases;
    let modules = match &settings.mirror {
        Some(mirror) => crds::ModuleSource::Mirror(mirror),
        None => crds::ModuleSource::Proxy(&settings.module_proxy),
    };
    // A Flux spin-aks installed is kept current with every controller it runs (kustomize-controller
    // too, where `fleet add --mirror` added it).
    let controllers = match with_flux {
        true => flux::with_running(conn, &releases.flux, &releases.flux.modules()).await?,
        false => Vec::new(),
    };
    // From a mirror, every image is its copy there, pinned by the digest the mirror holds.
    let resolving = async {
        match &settings.mirror {
            Some(mirror) => Ok(Some(mirror.resolve(releases, &controllers, &http).await?)),
            None => Ok::<_, anyhow::Error>(None),
        }
    };
    let flux_crds = async {
        match with_flux {
            true => flux::crds(&http, modules, &controllers).await,
            false => Ok(Vec::new()),
        }
    };
    // Nothing is written before the rights, the chart versions, the CRDs and (from a mirror)
    // every part are known good.
    let (crds, mut flux_objects, resolved, (), ()) = tokio::try_join!(
        crds::fetch(&http, modules, &releases.operator_module),
        flux_crds,
        resolving,
        preflight::rights(conn, label_nodes, with_flux),
        preflight::chart_versions(releases, &settings.charts, out),
    )?;
    if with_flux {
        let image = |module: &releases::Module| {
            let mirrored = (resolved.as_ref()).and_then(|r| r.pinned_controller(module));
            mirrored.unwrap_or_else(|| flux::image_in(&settings.flux_registry, module))
        };
        flux_objects.extend(flux::objects_with(&controllers, &image));
    }
    // The HelmRelease CRD about to be installed, else the cluster's, says whether it knows the field.
    let installing = (flux_objects.iter())
        .find(|o| o["metadata"]["name"] == "helmreleases.helm.toolkit.fluxcd.io");
    let legacy_wait = match installing {
        Some(crd) => knows_wait_strategy(crd),
        None => serves_wait_strategy(conn).await?,
    };
    let mut sources: Vec<Value> = objects::repositories(releases, &settings.charts);
    sources.extend(crds);
    let charts = objects::charts(releases, &settings.charts);
    let release_objects =
        objects::releases(releases, &settings.charts, legacy_wait, resolved.as_ref())?;
    let mut versions = json!({
        "cert-manager": releases.cert_manager.version,
        "runtime-class-manager": releases.runtime_class_manager.version,
        "spin-operator": releases.spin_operator.version,
        "containerd-shim-spin": releases.shim,
    });
    if with_flux {
        for module in &controllers {
            versions[module.name()] = json!(module.version);
        }
    }
    let mut report = InstallReport {
        cluster: conn.context.clone(),
        versions,
        objects: Vec::new(),
        labelled_nodes: Vec::new(),
        stages: Vec::new(),
        aks: None,
        dry_run: settings.dry_run,
    };
    if settings.dry_run {
        let shim = objects::shim(releases, resolved.as_ref());
        let plan = (flux_objects.iter().chain(&sources).chain(&charts))
            .chain(&release_objects)
            .chain([&shim]);
        report.objects = plan.map(planned).collect();
        return Ok(report);
    }
    if with_flux {
        let timeout = settings.timeout;
        let (applied, stage) = flux::install(
            conn,
            &resources,
            flux_objects,
            timeout,
            FLUX_IMAGES_HINT,
            out,
        )
        .await?;
        report.objects = applied;
        report.stages.push(stage);
        // The Flux kinds are served now.
        resources = ServedApis::discover(conn).await?;
    }
    let set = install_set();
    let options = ApplyOptions {
        dry_run: false,
        force_conflicts: false,
        diff: false,
        prune: false,
    };
    // spin-operator's chart makes cert-manager Certificates, so its release is applied once
    // cert-manager's webhook serves (not by a Flux dependsOn, re-checked only every 30 s).
    let (operator, first): (Vec<Value>, Vec<Value>) =
        (release_objects.into_iter()).partition(|o| o["metadata"]["name"] == "spin-operator");
    apply::ensure_namespace(conn, objects::NAMESPACE, false).await?;
    // The HelmRepositories before the HelmCharts that name them, and those before the releases,
    // whose helm-controller would otherwise make them and wait for source-controller's fetch.
    let applied = apply::apply(conn, &resources, &set, sources, &options).await?;
    report.objects.extend(applied.objects);
    report
        .objects
        .extend(charts::create_missing(conn, &resources, charts).await?);
    let applied = apply::apply(conn, &resources, &set, first, &options).await?;
    report.objects.extend(applied.objects);
    let timeout = settings.timeout;
    // Two chains at once: cert-manager, then spin-operator (the critical path); and
    // runtime-class-manager, then the Shim on the nodes, whose installer Jobs need not wait for
    // cert-manager. Only the Shim's apply adds a kind to the ApplySet parent (the first apply
    // listed HelmRelease), so the two never write it both.
    let operator_chain = async {
        let cert_manager = cert_manager_stage(conn, timeout, out).await?;
        let applied = apply::apply(conn, &resources, &set, operator, &options).await?;
        let what = "spin-operator";
        let started = Instant::now();
        release_applied(conn, what, what, timeout, out).await?;
        let namespace = objects::OPERATOR_NAMESPACE;
        workloads_stage(conn, what, namespace, what, timeout, out).await?;
        Ok::<_, anyhow::Error>((cert_manager, applied.objects, stage(what, started)))
    };
    let shim_chain = async {
        let what = "runtime-class-manager";
        let started = Instant::now();
        release_applied(conn, what, what, timeout, out).await?;
        // The Shim's kind comes with runtime-class-manager's chart (its CRD, applied first), and
        // its controller takes the Shim up whenever it runs: the Shim goes on while its
        // Deployment is still rolling out.
        let rcm = async {
            let namespace = objects::INSTALLER_NAMESPACE;
            workloads_stage(conn, what, namespace, what, timeout, out).await?;
            Ok::<_, anyhow::Error>(stage(what, started))
        };
        let shim = async {
            let started = Instant::now();
            let resources = ServedApis::discover(conn).await?;
            let shim = vec![objects::shim(releases, resolved.as_ref())];
            let applied = apply::apply(conn, &resources, &set, shim, &options).await?;
            let labelled = match label_nodes {
                true => label_node_objects(conn).await?,
                false => Vec::new(),
            };
            let progress = |m: &str| out.info(format!("shim: {m}"));
            let wait = wait::shim_installed(conn, objects::HANDLER, timeout, &progress);
            out.while_running("shim: waiting for the nodes", wait)
                .await?;
            Ok((applied.objects, labelled, stage("shim", started)))
        };
        let (rcm, (applied, labelled, shim)) = tokio::try_join!(rcm, shim)?;
        Ok((rcm, applied, labelled, shim))
    };
    let ((cert_manager, operator_objects, operator), (rcm, shim_objects, labelled, shim)) =
        tokio::try_join!(operator_chain, shim_chain)?;
    report.objects.extend(operator_objects);
    report.objects.extend(shim_objects);
    report.labelled_nodes = labelled;
    report.stages.extend([cert_manager, rcm, operator, shim]);
    Ok(report)
}

/// Waits for cert-manager's release, then for its Deployments and for its API to take an Issuer
/// (the chart's own check, its `startupapicheck` hook, is off); how long it all took.
async fn cert_manager_stage(
    conn: &Connection,
    timeout: Duration,
    out: &Output,
) -> anyhow::Result<Stage> {
    let started = Instant::now();
    let (name, what) = ("cert-manager", "cert-manager (its webhook serving)");
    release_applied(conn, name, what, timeout, out).await?;
    let progress = |m: &str| out.info(format!("{what}: {m}"));
    let waiting = format!("{what}: asking its API");
    let api = out.while_running(&waiting, wait::cert_manager_api(conn, timeout, &progress));
    let namespace = objects::CERT_MANAGER_NAMESPACE;
    let workloads = workloads_stage(conn, name, namespace, what, timeout, out);
    tokio::try_join!(workloads, api)?;
    Ok(stage(name, started))
}

/// Waits for HelmRelease `name` to be reconciled (Ready for its generation: helm-controller has
/// applied the chart), with progress lines about `what`.
async fn release_applied(
    conn: &Connection,
    name: &str,
    what: &str,
    timeout: Duration,
    out: &Output,
) -> anyhow::Result<()> {
    let progress = |m: &str| out.info(format!("{what}: {m}"));
    let waiting = format!("{what}: waiting for the release");
    out.while_running(
        &waiting,
        wait::release_ready(conn, name, timeout, &progress),
    )
    .await
}

/// Waits for the Deployments of Helm release `name` in `namespace` to be available, with
/// progress lines about `what`.
async fn workloads_stage(
    conn: &Connection,
    name: &str,
    namespace: &str,
    what: &str,
    timeout: Duration,
    out: &Output,
) -> anyhow::Result<()> {
    let progress = |m: &str| out.info(format!("{what}: {m}"));
    let waiting = format!("{what}: waiting for its Deployments");
    let available = wait::workloads_available(conn, name, namespace, timeout, &progress);
    out.while_running(&waiting, available).await
}

fn stage(name: &str, started: Instant) -> Stage {
    Stage {
        name: name.to_string(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn planned(object: &Value) -> AppliedObject {
    AppliedObject {
        kind: object["kind"].as_str().unwrap_or_default().to_string(),
        name: object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        action: ObjectAction::Configured,
        result: object.clone(),
    }
}

/// Refuses an AKS cluster whose Flux extension serves no source- and helm-controller APIs.
fn require_flux(conn: &Connection, resources: &ServedApis) -> anyhow::Result<()> {
    if flux::served(resources) {
        return Ok(());
    }
    Err(crate::bad_input!(
        "{} has no Flux helm-controller (helm.toolkit.fluxcd.io/v2 HelmRelease and source.toolkit.fluxcd.io/v1 HelmRepository are not served) although its Flux cluster extension is enabled: spin-aks installs SpinKube's charts through it. See the state of the cluster's `flux` extension (Azure portal: the cluster's Extensions + applications), then run this again",
        conn.context
    ))
}

/// Whether the cluster's HelmRelease CRD knows `spec.waitStrategy` (helm-controller v1.6 does);
/// older ones, as a Flux extension may run, would refuse the field.
async fn serves_wait_strategy(conn: &Connection) -> anyhow::Result<bool> {
    let crds: Api<CustomResourceDefinition> = Api::all(conn.client.clone());
    let Some(crd) = crds
        .get_opt("helmreleases.helm.toolkit.fluxcd.io")
        .await
        .map_err(|e| {
            explain(
                e,
                conn,
                ApiCall::new("get", "customresourcedefinitions", None),
            )
        })?
    else {
        return Ok(false);
    };
    Ok(knows_wait_strategy(&serde_json::to_value(crd)?))
}

/// Whether a HelmRelease CRD's v2 schema has `spec.waitStrategy`.
fn knows_wait_strategy(crd: &Value) -> bool {
    let versions = crd["spec"]["versions"].as_array().into_iter().flatten();
    versions.filter(|v| v["name"] == "v2").any(|v| {
        v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["waitStrategy"]
            .is_object()
    })
}

/// Puts the shim's label on every node that lacks it; the nodes labelled now.
async fn label_node_objects(conn: &Connection) -> anyhow::Result<Vec<String>> {
    let nodes: Api<Node> = Api::all(conn.client.clone());
    let list = nodes
        .list(&ListParams::default())
        .await
        .map_err(|e| explain(e, conn, ApiCall::new("list", "nodes", None)))?;
    let (key, value) = objects::NODE_LABEL;
    let mut labelled = Vec::new();
    for node in list.items {
        let name = node.metadata.name.clone().unwrap_or_default();
        let labels = node.metadata.labels.as_ref();
        if labels.and_then(|l| l.get(key)).map(String::as_str) == Some(value) {
            continue;
        }
        let applied = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {key: value}}});
        nodes
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Apply(applied),
            )
            .await
            .map_err(|e| explain(e, conn, ApiCall::new("patch", "nodes", None)))?;
        labelled.push(name);
    }
    Ok(labelled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_strategy_is_set_only_where_the_helm_release_crd_knows_it() {
        let crd = |fields: Value| {
            json!({"spec": {"versions": [
                {"name": "v2beta1", "schema": {"openAPIV3Schema": {"properties": {"spec": {"properties": {"waitStrategy": {}}}}}}},
                {"name": "v2", "schema": {"openAPIV3Schema": {"properties": {"spec": {"properties": fields}}}}},
            ]}})
        };
        assert!(knows_wait_strategy(&crd(
            json!({"waitStrategy": {"type": "object"}, "interval": {}})
        )));
        assert!(!knows_wait_strategy(&crd(json!({"interval": {}}))));
        assert!(!knows_wait_strategy(&json!({})));
    }
}
