//! `spin-aks cluster check`: can this cluster run this app? The Kubernetes checks of
//! `cluster::check`, plus ARM's view for an AKS cluster (running, kubelet pull, workload identity).

use std::collections::BTreeSet;
use std::io::BufReader;

use serde_json::json;

use super::deploy::{self, Aks, AppTarget};
use crate::app::compat::ImportScanner;
use crate::app::model::Source;
use crate::app::App;
use crate::azure::arm::types::ManagedCluster;
use crate::azure::arm::Arm;
use crate::azure::roles;
use crate::cli::{ClusterCheckArgs, GlobalArgs};
use crate::cluster::apply::Resources;
use crate::cluster::check::{self, Check, Needs};
use crate::oci::reference::RegistryRef;
use crate::output::Output;

pub async fn run(global: &GlobalArgs, args: &ClusterCheckArgs, out: &Output) -> anyhow::Result<()> {
    let target = deploy::target(global, &args.target, out).await?;
    let resources = Resources::discover(&target.conn).await?;
    let imports = host_imports(&target.app);
    let needs = Needs {
        namespace: &target.conn.namespace,
        imports: &imports,
    };
    let mut checks = check::all(&target.conn, &resources, &needs).await?;
    if target.aks.is_some() {
        checks.extend(azure_checks(&target).await?);
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    let lines: Vec<String> = checks.iter().map(line).collect();
    out.report(&json!({ "checks": checks }), lines.join("\n"))?;
    match failed {
        0 => Ok(()),
        n => Err(anyhow::anyhow!(
            "{n} check(s) failed on {}; each names its fix above",
            target.conn.context
        )),
    }
}

fn line(check: &Check) -> String {
    let mark = if check.ok { "ok  " } else { "FAIL" };
    match &check.fix {
        Some(fix) => format!("{mark} {}: {}\n     fix: {fix}", check.name, check.detail),
        None => format!("{mark} {}: {}", check.name, check.detail),
    }
}

/// The `ns:pkg/name@version` names in the app's built local wasm (remote sources are not read).
fn host_imports(app: &App) -> BTreeSet<String> {
    let mut imports = BTreeSet::new();
    for component in &app.components {
        let Source::Local(path) = &component.source else {
            continue;
        };
        let Ok(file) = std::fs::File::open(app.dir.join(path)) else {
            continue;
        };
        let mut scanner = ImportScanner::new(BufReader::new(file));
        if std::io::copy(&mut scanner, &mut std::io::sink()).is_ok() {
            imports.extend(scanner.finish());
        }
    }
    imports
}

/// ARM's checks for an AKS cluster, from one GET of the cluster (and the registry's roles).
async fn azure_checks(target: &AppTarget) -> anyhow::Result<Vec<Check>> {
    let Some(Aks {
        arm,
        cluster: cluster_ref,
    }) = &target.aks
    else {
        return Ok(Vec::new());
    };
    let cluster = arm.cluster(cluster_ref).await?;
    let mut checks = vec![running(&cluster)];
    if let Some(image) = &target.state.last_pinned {
        checks.push(kubelet_pull(arm, &cluster, cluster_ref, image).await?);
    }
    if target.state.key_vault.is_some() || target.state.identity.is_some() {
        checks.push(workload_identity(&cluster));
    }
    Ok(checks)
}

fn running(cluster: &ManagedCluster) -> Check {
    let state = cluster
        .properties
        .power_state
        .as_ref()
        .map(|p| p.code.as_str());
    match state {
        Some("Running") | None => {
            Check::pass("aks-running", format!("{} is running", cluster.name))
        }
        Some(other) => Check::fail(
            "aks-running",
            format!("{} is {other}", cluster.name),
            format!(
                "start it: POST {}/start?api-version=2025-10-01 (az aks start)",
                cluster.id
            ),
        ),
    }
}

async fn kubelet_pull(
    arm: &Arm,
    cluster: &ManagedCluster,
    cluster_ref: &crate::state::ClusterRef,
    image: &RegistryRef,
) -> anyhow::Result<Check> {
    let host = image.registry();
    let registries = arm.registries(&cluster_ref.subscription).await?;
    let Some(registry) = registries
        .iter()
        .find(|r| r.properties.login_server == host)
    else {
        return Ok(Check::pass(
            "kubelet-pull",
            format!(
                "{host} is not an ACR of subscription {}; the pull uses its own credentials",
                cluster_ref.subscription
            ),
        ));
    };
    let principal = cluster.kubelet_identity().and_then(|i| i.object_id.clone());
    let Some(principal) = principal else {
        return Ok(Check::fail(
            "kubelet-pull",
            format!(
                "{} has no kubelet managed identity to pull from {host}",
                cluster.name
            ),
            "give the nodes' service principal AcrPull on the registry, or use --image-pull-secret",
        ));
    };
    let pulls = roles::holds(arm, &registry.id, roles::ACR_PULL, &principal).await?;
    Ok(match (pulls, registry.is_abac()) {
        (_, true) => Check::fail(
            "kubelet-pull",
            format!("{host} uses ABAC repository permissions, which ignore AcrPull"),
            "give the kubelet identity \"Container Registry Repository Reader\" on the registry",
        ),
        (true, false) => Check::pass(
            "kubelet-pull",
            format!("the kubelet identity holds AcrPull on {host}"),
        ),
        (false, false) => Check::fail(
            "kubelet-pull",
            format!(
                "the kubelet identity of {} cannot pull from {host}",
                cluster.name
            ),
            format!("spin-aks cluster attach-acr --registry {}", registry.name),
        ),
    })
}

fn workload_identity(cluster: &ManagedCluster) -> Check {
    let props = &cluster.properties;
    let oidc = props.oidc_issuer_profile.as_ref().and_then(|p| p.enabled) == Some(true);
    let wi = props
        .security_profile
        .as_ref()
        .and_then(|p| p.workload_identity.as_ref())
        .and_then(|w| w.enabled)
        == Some(true);
    match (oidc, wi) {
        (true, true) => Check::pass("workload-identity", "OIDC issuer and workload identity are enabled"),
        _ => Check::fail(
            "workload-identity",
            format!("the app reads Key Vault with a workload identity, but on {} the OIDC issuer is {} and workload identity is {}", cluster.name, on_off(oidc), on_off(wi)),
            "set properties.oidcIssuerProfile.enabled and properties.securityProfile.workloadIdentity.enabled to true (az aks update --enable-oidc-issuer --enable-workload-identity)",
        ),
    }
}

fn on_off(enabled: bool) -> &'static str {
    if enabled {
        "on"
    } else {
        "off"
    }
}
