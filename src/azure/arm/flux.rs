//! The ARM calls behind `fleet add|remove` on AKS: a `fluxConfigurations` resource on the cluster
//! (the Flux extension's fluxconfig-agent turns it into an OCIRepository and Kustomizations).

use reqwest::Method;
use serde_json::Value;

use super::transport::{not_found_as_none, Repeat};
use super::types::cluster_id;
use super::versions;
use super::Arm;
use crate::azure::names::path_segment;
use crate::azure::ClusterRef;

impl Arm {
    /// The Flux configuration `name` on the cluster, or `None` (404).
    pub async fn flux_configuration(
        &self,
        cluster: &ClusterRef,
        name: &str,
    ) -> anyhow::Result<Option<Value>> {
        let url = configuration_url(self, cluster, name)?;
        not_found_as_none(self.get::<Value>(&url).await)
    }

    /// Creates or replaces the Flux configuration `name` (`properties` as ARM takes them) and
    /// waits for its long-running operation.
    pub async fn put_flux_configuration(
        &self,
        cluster: &ClusterRef,
        name: &str,
        properties: &Value,
    ) -> anyhow::Result<()> {
        let url = configuration_url(self, cluster, name)?;
        let body = serde_json::json!({ "properties": properties });
        let started = self
            .send(Method::PUT, &url, Some(&body), Repeat::Safe)
            .await?;
        self.finish(started).await?;
        Ok(())
    }

    /// Deletes the Flux configuration `name` (a 404 counts as done) and waits for it.
    pub async fn delete_flux_configuration(
        &self,
        cluster: &ClusterRef,
        name: &str,
    ) -> anyhow::Result<()> {
        let url = configuration_url(self, cluster, name)?;
        let sent = self.send(Method::DELETE, &url, None, Repeat::Safe).await;
        if let Some(started) = not_found_as_none(sent)? {
            self.finish(started).await?;
        }
        Ok(())
    }
}

fn configuration_url(arm: &Arm, cluster: &ClusterRef, name: &str) -> anyhow::Result<String> {
    let path = format!(
        "{}/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/{}",
        cluster_id(cluster)?,
        path_segment("Flux configuration", name)?
    );
    arm.url(&path, versions::FLUX_CONFIGURATIONS)
}
