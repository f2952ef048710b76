//! `cluster install` on an AKS cluster reached through ARM: refused on AKS Automatic before
//! anything is written; the first-party Flux extension enabled; the shim's label on every Linux
//! agent pool (`nodeLabels`, which AKS keeps on new and reimaged nodes).

use serde::Serialize;
use serde_json::{json, Value};

use super::objects::{INSTALLER_NAMESPACE, NODE_LABEL};
use crate::bad_input;
use crate::context::target::Aks;
use crate::output::Output;

/// What ARM changed for the install.
#[derive(Debug, Default, Serialize)]
pub struct AksChanges {
    /// Whether the Flux extension was installed now.
    pub flux_extension_installed: bool,
    /// Agent pools given the shim's label now.
    pub labelled_pools: Vec<String>,
}

/// The namespace whose privileged installer Deployment Safeguards would refuse: enforced
/// (`level: Enforce`) with a Pod Security Standard stricter than Privileged, and the
/// runtime-class-manager namespace not excluded.
fn refused_namespace(safeguards: &Value) -> Option<&'static str> {
    let properties = &safeguards["properties"];
    let enforced = (properties["level"].as_str()).is_some_and(|level| {
        level.eq_ignore_ascii_case("Enforce") || level.eq_ignore_ascii_case("Enforcement")
    });
    let standard = properties["podSecurityStandardsLevel"]
        .as_str()
        .unwrap_or("Privileged");
    let strict = !standard.eq_ignore_ascii_case("Privileged");
    let excluded = (properties["excludedNamespaces"]
        .as_array()
        .into_iter()
        .flatten())
    .chain(
        properties["systemExcludedNamespaces"]
            .as_array()
            .into_iter()
            .flatten(),
    )
    .any(|ns| ns == INSTALLER_NAMESPACE);
    (enforced && strict && !excluded).then_some(INSTALLER_NAMESPACE)
}

/// Makes the AKS side ready: Flux through its cluster extension, the agent pools labelled.
pub async fn prepare(aks: &Aks, dry_run: bool, out: &Output) -> anyhow::Result<AksChanges> {
    let managed = aks.managed().await?;
    if managed.is_automatic() {
        return Err(bad_input!(
            "{} is an AKS Automatic cluster: its Deployment Safeguards refuse runtime-class-manager's privileged shim installer and labels on nodes, so nothing was written. Run the app as a Deployment on a runtime class AKS provides (--workload deployment), or install on an AKS Standard cluster",
            aks.cluster.name
        ));
    }
    let arm = &aks.arm;
    let safeguards = arm.deployment_safeguards(&aks.cluster).await?;
    if let Some(refusal) = safeguards.as_ref().and_then(refused_namespace) {
        return Err(bad_input!(
            "{}'s Deployment Safeguards enforce the {} Pod Security Standard outside their excluded namespaces, which refuses runtime-class-manager's privileged shim installer in namespace {refusal}, so nothing was written. Exclude that namespace (Deployment Safeguards' excludedNamespaces, e.g. `az aks safeguards update --excluded-ns {refusal}`) and run this again, or run the app as a Deployment on a runtime class AKS provides (--workload deployment)",
            aks.cluster.name,
            safeguards.as_ref().and_then(|s| s["properties"]["podSecurityStandardsLevel"].as_str()).unwrap_or("Baseline"),
        ));
    }
    let mut changes = AksChanges::default();
    let installed = (arm.flux_extension_succeeded(&aks.cluster, |line| out.info(line))).await?;
    if !installed {
        out.info(format!(
            "enabling the Flux cluster extension on {} (a few minutes)",
            aks.cluster.name
        ));
        if !dry_run {
            arm.put_flux_extension(&aks.cluster).await?;
        }
        changes.flux_extension_installed = true;
    }
    let (key, value) = NODE_LABEL;
    for mut pool in arm.agent_pools(&aks.cluster).await? {
        let properties = &pool["properties"];
        let linux = properties["osType"].as_str().unwrap_or("Linux") == "Linux";
        if !linux || properties["nodeLabels"][key] == value {
            continue;
        }
        let name = pool["name"].as_str().unwrap_or_default().to_string();
        out.info(format!(
            "labelling agent pool {name} {key}={value} (AKS rolls it onto the pool's nodes)"
        ));
        if !dry_run {
            let labels = &mut pool["properties"]["nodeLabels"];
            if !labels.is_object() {
                *labels = json!({});
            }
            labels[key] = json!(value);
            arm.put_agent_pool(&aks.cluster, &pool).await?;
        }
        changes.labelled_pools.push(name);
    }
    Ok(changes)
}
