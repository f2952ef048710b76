//! `spin-aks cluster attach-acr`: lets the AKS cluster's kubelet identity pull from a container
//! registry (AcrPull), as `az aks update --attach-acr` does; refused for ABAC registries.

use anyhow::Context;
use serde_json::json;

use crate::azure::arm::Arm;
use crate::azure::roles::{self, Assignment};
use crate::cli::{AttachAcrArgs, GlobalArgs};
use crate::context::choose::{self, Mode};
use crate::output::Output;

pub async fn run(global: &GlobalArgs, args: &AttachAcrArgs, out: &Output) -> anyhow::Result<()> {
    let mut store = global.store(out)?;
    let arm = Arm::from_env()?;
    let mode = Mode::detect(global.yes);
    let selector = args.target.selector();
    let cluster = choose::resolve_cluster(&arm, &selector, store.state(), mode).await?;
    let managed = arm.cluster(&cluster).await?;
    let principal = managed
        .kubelet_identity()
        .and_then(|identity| identity.object_id.clone())
        .with_context(|| {
            format!(
                "the AKS cluster {} has no kubelet managed identity \
                 (identityProfile.kubeletidentity); assign AcrPull to the service principal its \
                 nodes use instead",
                cluster.name
            )
        })?;
    let wanted = args.registry.as_deref();
    let registry = choose::resolve_registry(
        &arm,
        &cluster.subscription,
        wanted,
        store.state(),
        mode,
        "--registry",
    )
    .await?;
    let login_server = registry.properties.login_server.clone();
    if registry.is_abac() {
        anyhow::bail!(
            "the registry {login_server} uses ABAC repository permissions \
             (roleAssignmentMode: AbacRepositoryPermissions), which ignore AcrPull: attaching it \
             would not let the nodes pull. Give the kubelet identity (object id {principal}) the \
             \"Container Registry Repository Reader\" role on {login_server} instead (optionally \
             with a condition limiting it to the app's repositories)."
        );
    }
    let assignment = roles::ensure_role(&arm, &registry.id, roles::ACR_PULL, &principal)
        .await
        .map_err(|err| {
            anyhow::anyhow!(
                "cannot give the kubelet identity of {} AcrPull on {login_server}: {err}",
                cluster.name
            )
        })?;
    store.update(out, |s| s.last_registry = Some(login_server.clone()))?;
    let report = json!({
        "cluster": cluster,
        "registry": login_server,
        "principalId": principal,
        "role": "AcrPull",
        "assignment": assignment,
    });
    let done = match assignment {
        Assignment::Created => "now has",
        Assignment::Existing => "already had",
    };
    out.report(
        &report,
        format!(
            "the kubelet identity of {} {done} AcrPull on {login_server}",
            cluster.name
        ),
    )
}
