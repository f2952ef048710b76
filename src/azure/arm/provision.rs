//! The ARM calls behind `cluster create` and `cluster delete`: resource groups, a managed cluster
//! written whole and deleted, a registry created after its global name is checked.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::transport::{not_found_as_none, Repeat, LRO_DEADLINE, POLL_EVERY};
use super::types::{cluster_id, group_id, subscription_id, Registry};
use super::{versions, Arm};
use crate::azure::names::path_segment;
use crate::azure::ClusterRef;

/// What `checkNameAvailability` says about a registry name.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NameAvailability {
    pub name_available: bool,
    pub reason: Option<String>,
    pub message: Option<String>,
}

impl Arm {
    /// The resource group's location, or `None` when it does not exist.
    pub async fn resource_group(
        &self,
        subscription: &str,
        group: &str,
    ) -> anyhow::Result<Option<String>> {
        #[derive(Deserialize)]
        struct Group {
            location: String,
        }
        let url = self.url(&group_id(subscription, group)?, versions::RESOURCE_GROUPS)?;
        not_found_as_none(self.get::<Group>(&url).await).map(|g| g.map(|g| g.location))
    }

    /// Creates the resource group in `location` (a synchronous PUT).
    pub async fn put_resource_group(
        &self,
        subscription: &str,
        group: &str,
        location: &str,
    ) -> anyhow::Result<()> {
        let url = self.url(&group_id(subscription, group)?, versions::RESOURCE_GROUPS)?;
        let body = json!({"location": location});
        self.send(Method::PUT, &url, Some(&body), Repeat::Safe)
            .await?;
        Ok(())
    }

    /// The cluster's resource as ARM returns it (kept whole: an update sends it back), or `None`.
    pub async fn cluster_resource(&self, cluster: &ClusterRef) -> anyhow::Result<Option<Value>> {
        let url = self.url(&cluster_id(cluster)?, versions::MANAGED_CLUSTERS)?;
        not_found_as_none(self.get::<Value>(&url).await)
    }

    /// The cluster's resource once no operation runs on it (its `provisioningState` is not
    /// Creating, Updating, Deleting or another `…ing`), read afresh each time; `waiting` is told
    /// the state once. Gives up waiting after an operation's deadline (a write then meets 409).
    pub async fn settled_cluster(
        &self,
        cluster: &ClusterRef,
        waiting: impl Fn(&str),
    ) -> anyhow::Result<Option<Value>> {
        let url = self.url(&cluster_id(cluster)?, versions::MANAGED_CLUSTERS)?;
        self.settled(&url, waiting).await
    }

    /// The resource at `url` once no operation runs on it, or `None` (404); as
    /// [`Arm::settled_cluster`].
    pub(super) async fn settled(
        &self,
        url: &str,
        waiting: impl Fn(&str),
    ) -> anyhow::Result<Option<Value>> {
        let deadline = std::time::Instant::now() + LRO_DEADLINE;
        let mut told = false;
        loop {
            let resource = not_found_as_none(self.get::<Value>(url).await)?;
            let state = (resource.as_ref())
                .and_then(|r| r["properties"]["provisioningState"].as_str())
                .unwrap_or_default()
                .to_string();
            if !state.ends_with("ing") || std::time::Instant::now() >= deadline {
                return Ok(resource);
            }
            if !told {
                waiting(&state);
                told = true;
            }
            self.cache.lock().unwrap().remove(url);
            self.pause(POLL_EVERY).await;
        }
    }

    /// Starts writing the whole cluster resource; [`Arm::wait_for`] follows the operation.
    pub async fn start_put_cluster(
        &self,
        cluster: &ClusterRef,
        resource: &Value,
    ) -> anyhow::Result<Started> {
        let url = self.url(&cluster_id(cluster)?, versions::MANAGED_CLUSTERS)?;
        let reply = self
            .send(Method::PUT, &url, Some(resource), Repeat::Safe)
            .await?;
        Ok(Started(reply))
    }

    /// Starts deleting the cluster (its node resource group goes with it).
    pub async fn start_delete_cluster(&self, cluster: &ClusterRef) -> anyhow::Result<Started> {
        let url = self.url(&cluster_id(cluster)?, versions::MANAGED_CLUSTERS)?;
        let reply = self.send(Method::DELETE, &url, None, Repeat::Safe).await?;
        Ok(Started(reply))
    }

    /// Waits for an operation started by one of the `start_*` calls.
    pub async fn wait_for(&self, started: Started) -> anyhow::Result<()> {
        self.finish(started.0).await?;
        Ok(())
    }

    /// Whether a registry may take `name` (registry names are global).
    pub async fn registry_name_available(
        &self,
        subscription: &str,
        name: &str,
    ) -> anyhow::Result<NameAvailability> {
        let path = format!(
            "{}/providers/Microsoft.ContainerRegistry/checkNameAvailability",
            subscription_id(subscription)?
        );
        let url = self.url(&path, versions::REGISTRIES)?;
        let body = json!({"name": name, "type": "Microsoft.ContainerRegistry/registries"});
        let reply = self
            .send(Method::POST, &url, Some(&body), Repeat::Safe)
            .await?;
        reply.json("checkNameAvailability")
    }

    /// Creates a registry (Basic unless `sku` says otherwise, no admin user) and waits for it.
    pub async fn put_registry(
        &self,
        subscription: &str,
        group: &str,
        name: &str,
        location: &str,
        sku: &str,
    ) -> anyhow::Result<Registry> {
        let path = format!(
            "{}/providers/Microsoft.ContainerRegistry/registries/{}",
            group_id(subscription, group)?,
            path_segment("container registry", name)?
        );
        let url = self.url(&path, versions::REGISTRIES)?;
        let body = json!({
            "location": location,
            "sku": {"name": sku},
            "properties": {"adminUserEnabled": false},
        });
        let started = self
            .send(Method::PUT, &url, Some(&body), Repeat::Safe)
            .await?;
        self.finish(started).await?;
        self.get(&url).await
    }
}

/// A long-running operation ARM accepted.
pub struct Started(crate::azure::rest::Reply);
