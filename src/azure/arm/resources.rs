//! The ARM calls spin-aks makes: subscriptions, resource groups, registries, managed clusters and
//! their user credentials and run command, and role assignments.

use anyhow::Context;
use base64::Engine;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::transport::Repeat;
use super::types::*;
use super::versions;
use super::Arm;
use crate::azure::names::path_segment;
use crate::azure::ClusterRef;

impl Arm {
    pub async fn subscriptions(&self) -> anyhow::Result<Vec<Subscription>> {
        self.list(&self.url("/subscriptions", versions::SUBSCRIPTIONS)?)
            .await
    }

    pub async fn resource_groups(&self, subscription: &str) -> anyhow::Result<Vec<ResourceGroup>> {
        let path = format!("{}/resourcegroups", subscription_id(subscription)?);
        self.list(&self.url(&path, versions::RESOURCE_GROUPS)?)
            .await
    }

    pub async fn registries(&self, subscription: &str) -> anyhow::Result<Vec<Registry>> {
        let path = format!(
            "{}/providers/Microsoft.ContainerRegistry/registries",
            subscription_id(subscription)?
        );
        self.list(&self.url(&path, versions::REGISTRIES)?).await
    }

    pub async fn clusters(&self, subscription: &str) -> anyhow::Result<Vec<ManagedCluster>> {
        let path = format!(
            "{}/providers/Microsoft.ContainerService/managedClusters",
            subscription_id(subscription)?
        );
        self.list(&self.url(&path, versions::MANAGED_CLUSTERS)?)
            .await
    }

    pub async fn cluster(&self, cluster: &ClusterRef) -> anyhow::Result<ManagedCluster> {
        let url = self.url(&cluster_id(cluster)?, versions::MANAGED_CLUSTERS)?;
        self.get(&url).await
    }

    /// The cluster user kubeconfig (`listClusterUserCredential?format=exec`), decoded. It may hold
    /// credentials: keep it in memory.
    pub async fn cluster_user_kubeconfig(&self, cluster: &ClusterRef) -> anyhow::Result<Vec<u8>> {
        #[derive(Deserialize)]
        struct Credentials {
            kubeconfigs: Vec<Named>,
        }
        #[derive(Deserialize)]
        struct Named {
            value: String,
        }
        let path = format!(
            "{}/listClusterUserCredential?format=exec",
            cluster_id(cluster)?
        );
        let url = self.url(&path, versions::MANAGED_CLUSTERS)?;
        let reply = self.send(Method::POST, &url, None, Repeat::Safe).await?;
        let credentials: Credentials = reply.json("listClusterUserCredential")?;
        let first = credentials
            .kubeconfigs
            .into_iter()
            .next()
            .with_context(|| {
                format!(
                    "ARM returned no kubeconfig for the cluster {}",
                    cluster.name
                )
            })?;
        base64::engine::general_purpose::STANDARD
            .decode(first.value.trim())
            .context("the kubeconfig ARM returned is not base64")
    }

    /// Starts a run command (never repeated blindly) and waits for its result.
    pub async fn run_command(
        &self,
        cluster: &ClusterRef,
        request: &serde_json::Value,
    ) -> anyhow::Result<RunCommandResult> {
        let path = format!("{}/runCommand", cluster_id(cluster)?);
        let url = self.url(&path, versions::MANAGED_CLUSTERS)?;
        let started = self
            .send(Method::POST, &url, Some(request), Repeat::Once)
            .await?;
        self.finish(started).await?.json("the run command result")
    }

    /// Role assignments of `principal_id` that apply at `scope` (inherited ones included).
    pub async fn role_assignments(
        &self,
        scope: &str,
        principal_id: &str,
    ) -> anyhow::Result<Vec<RoleAssignment>> {
        let path = format!(
            "{scope}/providers/Microsoft.Authorization/roleAssignments?$filter=principalId%20eq%20%27{principal_id}%27"
        );
        self.list(&self.url(&path, versions::ROLE_ASSIGNMENTS)?)
            .await
    }

    /// Assigns the built-in role `role` (a GUID) to a service principal at `scope` under the
    /// assignment name `name` (a new GUID; repeating the same PUT is idempotent).
    pub async fn create_role_assignment(
        &self,
        scope: &str,
        role: &str,
        principal_id: &str,
        name: &str,
    ) -> anyhow::Result<RoleAssignment> {
        let subscription = ResourceId::parse(scope)
            .map(|id| id.subscription)
            .context("role assignment scope")?;
        let name = path_segment("role assignment", name)?;
        let path = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
        let body = json!({"properties": {
            "roleDefinitionId": role_definition_id(&subscription, role),
            "principalId": principal_id,
            "principalType": "ServicePrincipal",
        }});
        let url = self.url(&path, versions::ROLE_ASSIGNMENTS)?;
        let reply = self
            .send(Method::PUT, &url, Some(&body), Repeat::Safe)
            .await?;
        reply.json("the role assignment")
    }
}

/// `/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{role}`.
fn role_definition_id(subscription: &str, role: &str) -> String {
    format!(
        "/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role}"
    )
}
