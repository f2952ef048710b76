//! The ARM calls behind `cluster install` on AKS: the cluster's agent pools (their `nodeLabels`
//! outlive node upgrades, scaling and reimaging) and the first-party Flux cluster extension.

use reqwest::Method;
use serde_json::{json, Value};

use super::transport::{not_found_as_none, Repeat};
use super::types::cluster_id;
use super::versions;
use super::{Arm, ArmError};
use crate::azure::names::path_segment;
use crate::azure::ClusterRef;

/// The Flux extension's resource name on a cluster (as `az k8s-extension create --name flux`).
pub const FLUX_EXTENSION: &str = "flux";

impl Arm {
    /// The cluster's agent pools, as ARM returns them (kept whole: a PUT sends them back).
    pub async fn agent_pools(&self, cluster: &ClusterRef) -> anyhow::Result<Vec<Value>> {
        let path = format!("{}/agentPools", cluster_id(cluster)?);
        self.list(&self.url(&path, versions::MANAGED_CLUSTERS)?)
            .await
    }

    /// Writes agent pool `pool` (a whole resource, as read, with changed properties) and waits for
    /// the operation (AKS rolls the change onto the pool's nodes).
    pub async fn put_agent_pool(&self, cluster: &ClusterRef, pool: &Value) -> anyhow::Result<()> {
        let name = pool["name"].as_str().unwrap_or_default();
        let path = format!(
            "{}/agentPools/{}",
            cluster_id(cluster)?,
            path_segment("agent pool", name)?
        );
        let url = self.url(&path, versions::MANAGED_CLUSTERS)?;
        let body = json!({"properties": writable(&pool["properties"])});
        let started = self
            .send(Method::PUT, &url, Some(&body), Repeat::Safe)
            .await?;
        self.finish(started).await?;
        Ok(())
    }

    /// The Flux extension on the cluster once no operation runs on it (a run killed after its
    /// write, another client), or `None` when it has none (404); `waiting` is told the state once.
    async fn settled_flux_extension(
        &self,
        cluster: &ClusterRef,
        waiting: impl Fn(&str),
    ) -> anyhow::Result<Option<Value>> {
        let url = self.url(&extension_path(cluster)?, versions::EXTENSIONS)?;
        self.settled(&url, waiting).await
    }

    /// Whether the cluster's Flux extension is there and `Succeeded`, once no operation runs on
    /// it; `tell` gets one line when it waits for one.
    pub async fn flux_extension_succeeded(
        &self,
        cluster: &ClusterRef,
        tell: impl Fn(String),
    ) -> anyhow::Result<bool> {
        let waiting = |state: &str| {
            tell(format!(
                "the Flux cluster extension on {} is {state}: waiting for that operation to end",
                cluster.name
            ))
        };
        let extension = self.settled_flux_extension(cluster, waiting).await?;
        Ok(extension.is_some_and(|e| e["properties"]["provisioningState"] == "Succeeded"))
    }

    /// The cluster's Deployment Safeguards (`deploymentSafeguards/default`), or `None` when it has
    /// none (404), or the subscription does not know the resource type (400).
    pub async fn deployment_safeguards(
        &self,
        cluster: &ClusterRef,
    ) -> anyhow::Result<Option<Value>> {
        let path = format!(
            "{}/providers/Microsoft.ContainerService/deploymentSafeguards/default",
            cluster_id(cluster)?
        );
        let url = self.url(&path, versions::DEPLOYMENT_SAFEGUARDS)?;
        match self.get::<Value>(&url).await {
            Err(err)
                if err
                    .downcast_ref::<ArmError>()
                    .is_some_and(|e| e.status == 400) =>
            {
                Ok(None)
            }
            read => not_found_as_none(read),
        }
    }

    /// Installs the Flux extension (`extensionType: microsoft.flux`) and waits for it.
    pub async fn put_flux_extension(&self, cluster: &ClusterRef) -> anyhow::Result<()> {
        let url = self.url(&extension_path(cluster)?, versions::EXTENSIONS)?;
        let body = json!({"properties": {"extensionType": "microsoft.flux", "autoUpgradeMinorVersion": true}});
        let started = self
            .send(Method::PUT, &url, Some(&body), Repeat::Safe)
            .await?;
        self.finish(started).await?;
        Ok(())
    }
}

fn extension_path(cluster: &ClusterRef) -> anyhow::Result<String> {
    Ok(format!(
        "{}/providers/Microsoft.KubernetesConfiguration/extensions/{FLUX_EXTENSION}",
        cluster_id(cluster)?
    ))
}

/// An agent pool's properties without the ones ARM reports but refuses in a write.
fn writable(properties: &Value) -> Value {
    let mut properties = properties.clone();
    if let Some(map) = properties.as_object_mut() {
        for read_only in [
            "provisioningState",
            "powerState",
            "nodeImageVersion",
            "currentOrchestratorVersion",
        ] {
            map.remove(read_only);
        }
    }
    properties
}
