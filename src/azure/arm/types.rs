//! Typed ARM resources: only the fields spin-aks reads (docs/cluster.md), everything else ignored.
//! Optional fields stay `Option`: ARM omits what a resource does not use.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::azure::names::path_segment;
use crate::azure::ClusterRef;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub subscription_id: String,
    #[serde(default)]
    pub display_name: String,
    pub state: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct ResourceGroup {
    pub id: String,
    pub name: String,
    pub location: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Registry {
    pub id: String,
    pub name: String,
    pub location: Option<String>,
    pub properties: RegistryProperties,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RegistryProperties {
    pub login_server: String,
    /// `AbacRepositoryPermissions` for registries whose access is repository-scoped ABAC.
    pub role_assignment_mode: Option<String>,
}

impl Registry {
    /// True when AcrPull/AcrPush are ignored (ABAC repository permissions mode).
    pub fn is_abac(&self) -> bool {
        self.properties
            .role_assignment_mode
            .as_deref()
            .is_some_and(|mode| mode.eq_ignore_ascii_case("AbacRepositoryPermissions"))
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct ManagedCluster {
    pub id: String,
    pub name: String,
    pub location: Option<String>,
    #[serde(default)]
    pub sku: Option<ClusterSku>,
    pub properties: ClusterProperties,
}

/// `sku.name`: `Base`, or `Automatic` (AKS Automatic: Deployment Safeguards enforced).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct ClusterSku {
    pub name: Option<String>,
    pub tier: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterProperties {
    pub fqdn: Option<String>,
    #[serde(rename = "privateFQDN")]
    pub private_fqdn: Option<String>,
    pub kubernetes_version: Option<String>,
    pub provisioning_state: Option<String>,
    pub power_state: Option<PowerState>,
    pub api_server_access_profile: Option<ApiServerAccessProfile>,
    pub aad_profile: Option<AadProfile>,
    pub disable_local_accounts: Option<bool>,
    /// `kubeletidentity` is the identity nodes pull images with.
    pub identity_profile: Option<BTreeMap<String, UserAssignedIdentity>>,
    pub oidc_issuer_profile: Option<OidcIssuerProfile>,
    pub security_profile: Option<SecurityProfile>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct PowerState {
    /// `Running` or `Stopped`.
    pub code: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ApiServerAccessProfile {
    pub enable_private_cluster: Option<bool>,
    pub disable_run_command: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AadProfile {
    pub managed: Option<bool>,
    #[serde(rename = "enableAzureRBAC")]
    pub enable_azure_rbac: Option<bool>,
    #[serde(rename = "tenantID")]
    pub tenant_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UserAssignedIdentity {
    pub object_id: Option<String>,
    pub client_id: Option<String>,
    pub resource_id: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OidcIssuerProfile {
    pub enabled: Option<bool>,
    #[serde(rename = "issuerURL")]
    pub issuer_url: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecurityProfile {
    pub workload_identity: Option<Enabled>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Enabled {
    pub enabled: Option<bool>,
}

impl ManagedCluster {
    /// Entra ID (AAD-managed) authentication: kubeconfigs call kubelogin, run command needs a clusterToken.
    pub fn is_entra(&self) -> bool {
        let aad = self.properties.aad_profile.as_ref();
        aad.and_then(|aad| aad.managed).unwrap_or(false)
    }

    /// AKS Automatic: node edits and privileged pods outside excluded namespaces are refused.
    pub fn is_automatic(&self) -> bool {
        self.sku.as_ref().and_then(|s| s.name.as_deref()) == Some("Automatic")
    }

    pub fn is_private(&self) -> bool {
        let profile = self.properties.api_server_access_profile.as_ref();
        profile
            .and_then(|p| p.enable_private_cluster)
            .unwrap_or(false)
    }

    pub fn run_command_disabled(&self) -> bool {
        let profile = self.properties.api_server_access_profile.as_ref();
        profile.and_then(|p| p.disable_run_command).unwrap_or(false)
    }

    /// The kubelet identity (the one that pulls images), when the cluster has managed identities.
    pub fn kubelet_identity(&self) -> Option<&UserAssignedIdentity> {
        self.properties
            .identity_profile
            .as_ref()?
            .get("kubeletidentity")
    }

    /// Where this cluster is, from its resource id.
    pub fn cluster_ref(&self) -> anyhow::Result<ClusterRef> {
        let ids = ResourceId::parse(&self.id)?;
        Ok(ClusterRef {
            subscription: ids.subscription,
            resource_group: ids.resource_group,
            name: self.name.clone(),
        })
    }
}

/// The subscription and resource group of an ARM resource id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceId {
    pub subscription: String,
    pub resource_group: String,
}

impl ResourceId {
    /// Segments are matched case-insensitively: ARM returns `resourcegroups` as often as `resourceGroups`.
    pub fn parse(id: &str) -> anyhow::Result<ResourceId> {
        let parts: Vec<&str> = id.split('/').collect();
        let after = |key: &str| {
            parts
                .windows(2)
                .find(|pair| pair[0].eq_ignore_ascii_case(key))
                .map(|pair| pair[1].to_string())
        };
        match (after("subscriptions"), after("resourceGroups")) {
            (Some(subscription), Some(resource_group)) => Ok(ResourceId {
                subscription,
                resource_group,
            }),
            _ => anyhow::bail!("ARM returned the resource id {id:?} without a resource group"),
        }
    }
}

/// `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{n}`,
/// each part refused when it could move the path (the state file may have been edited).
pub fn cluster_id(cluster: &ClusterRef) -> anyhow::Result<String> {
    Ok(format!(
        "{}/providers/Microsoft.ContainerService/managedClusters/{}",
        group_id(&cluster.subscription, &cluster.resource_group)?,
        path_segment("AKS cluster", &cluster.name)?
    ))
}

/// `/subscriptions/{s}`, the subscription checked as one path segment.
pub fn subscription_id(subscription: &str) -> anyhow::Result<String> {
    Ok(format!(
        "/subscriptions/{}",
        path_segment("subscription", subscription)?
    ))
}

/// `/subscriptions/{s}/resourceGroups/{rg}`, both checked as path segments.
pub fn group_id(subscription: &str, group: &str) -> anyhow::Result<String> {
    Ok(format!(
        "{}/resourceGroups/{}",
        subscription_id(subscription)?,
        path_segment("resource group", group)?
    ))
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct RoleAssignment {
    pub id: String,
    pub name: String,
    pub properties: RoleAssignmentProperties,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentProperties {
    pub role_definition_id: String,
    pub principal_id: String,
    pub scope: Option<String>,
}

/// Any resource found by listing a type in a subscription (Key Vaults, Cosmos DB accounts).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct NamedResource {
    pub id: String,
    pub name: String,
}

/// A user-assigned managed identity (`Microsoft.ManagedIdentity/userAssignedIdentities`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct ManagedIdentity {
    pub id: String,
    pub name: String,
    pub properties: ManagedIdentityProperties,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ManagedIdentityProperties {
    pub client_id: String,
    /// The object id of the identity's service principal: what role assignments name.
    pub principal_id: String,
    pub tenant_id: String,
}

/// A federated identity credential of a user-assigned identity.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct FederatedCredential {
    pub name: String,
    pub properties: FederatedCredentialProperties,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct FederatedCredentialProperties {
    pub issuer: String,
    pub subject: String,
    #[serde(default)]
    pub audiences: Vec<String>,
}

/// A Cosmos DB data-plane role assignment (`databaseAccounts/{a}/sqlRoleAssignments/{id}`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct SqlRoleAssignment {
    pub name: String,
    pub properties: SqlRoleAssignmentProperties,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SqlRoleAssignmentProperties {
    pub role_definition_id: String,
    pub scope: String,
    pub principal_id: String,
}

/// The result of a run command (`commandResults/{id}`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct RunCommandResult {
    pub properties: RunCommandProperties,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RunCommandProperties {
    pub provisioning_state: Option<String>,
    pub exit_code: Option<i32>,
    pub logs: Option<String>,
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_fields_read_from_the_arm_shape() {
        let cluster: ManagedCluster = serde_json::from_value(serde_json::json!({
            "id": "/subscriptions/s1/resourcegroups/rg1/providers/Microsoft.ContainerService/managedClusters/c1",
            "name": "c1",
            "location": "westeurope",
            "properties": {
                "fqdn": "c1-dns.hcp.westeurope.azmk8s.io",
                "privateFQDN": "c1.privatelink.westeurope.azmk8s.io",
                "powerState": {"code": "Running"},
                "apiServerAccessProfile": {"enablePrivateCluster": true, "disableRunCommand": false},
                "aadProfile": {"managed": true, "enableAzureRBAC": true, "tenantID": "t"},
                "identityProfile": {"kubeletidentity": {"objectId": "o", "clientId": "c", "resourceId": "r"}},
                "oidcIssuerProfile": {"enabled": true, "issuerURL": "https://oidc/"},
                "securityProfile": {"workloadIdentity": {"enabled": true}},
                "kubernetesVersion": "1.33.2"
            }
        }))
        .unwrap();
        assert!(cluster.is_entra() && cluster.is_private() && !cluster.run_command_disabled());
        assert_eq!(
            cluster.kubelet_identity().unwrap().object_id.as_deref(),
            Some("o")
        );
        assert_eq!(
            cluster.cluster_ref().unwrap(),
            ClusterRef {
                subscription: "s1".into(),
                resource_group: "rg1".into(),
                name: "c1".into()
            }
        );
        let aad = cluster.properties.aad_profile.unwrap();
        assert_eq!(aad.tenant_id.as_deref(), Some("t"));
        assert_eq!(aad.enable_azure_rbac, Some(true));
    }
}
