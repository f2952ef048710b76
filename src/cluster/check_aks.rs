//! What ARM says about an AKS cluster's fitness for the app, from one GET of the cluster (and the
//! registry's roles): running, its kubelet can pull the image, workload identity enabled.

use super::check::Check;
use crate::azure::arm::types::ManagedCluster;
use crate::azure::arm::Arm;
use crate::azure::roles;
use crate::azure::ClusterRef;
use crate::oci::reference::RegistryRef;
use crate::state::AppState;

/// ARM's checks for an AKS cluster, from one GET of the cluster (and the registry's roles).
pub async fn checks(
    arm: &Arm,
    cluster_ref: &ClusterRef,
    cluster: &ManagedCluster,
    remembered: &AppState,
) -> anyhow::Result<Vec<Check>> {
    let mut checks = vec![running(cluster)];
    if let Some(image) = &remembered.last_pinned {
        checks.push(kubelet_pull(arm, cluster, cluster_ref, image).await?);
    }
    if remembered.key_vault.is_some() || remembered.identity.is_some() {
        checks.push(workload_identity(cluster));
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
    cluster_ref: &ClusterRef,
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
