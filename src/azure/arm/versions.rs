//! The ARM api-versions spin-aks speaks, pinned in one place (docs/cluster.md).
//! Change one here and every request for that resource type follows.

/// `Microsoft.ContainerService/managedClusters` (and run command, credentials).
pub const MANAGED_CLUSTERS: &str = "2025-10-01";
/// `Microsoft.ContainerRegistry/registries`.
pub const REGISTRIES: &str = "2025-11-01";
/// `/subscriptions`.
pub const SUBSCRIPTIONS: &str = "2022-12-01";
/// `resourcegroups`.
pub const RESOURCE_GROUPS: &str = "2021-04-01";
/// `Microsoft.Authorization/roleAssignments`.
pub const ROLE_ASSIGNMENTS: &str = "2022-04-01";
/// `Microsoft.ManagedIdentity/userAssignedIdentities` (and their federated credentials).
pub const USER_ASSIGNED_IDENTITIES: &str = "2024-11-30";
/// `Microsoft.DocumentDB/databaseAccounts` (and their SQL role assignments).
pub const COSMOS: &str = "2024-11-15";
/// `Microsoft.KeyVault/vaults` (management plane; secrets use the data plane's `7.4`).
pub const KEY_VAULTS: &str = "2023-07-01";
/// `Microsoft.KubernetesConfiguration/extensions` (the Flux cluster extension).
pub const EXTENSIONS: &str = "2023-05-01";
/// `Microsoft.KubernetesConfiguration/fluxConfigurations` (OCIRepository sources).
pub const FLUX_CONFIGURATIONS: &str = "2025-04-01";
/// `Microsoft.ContainerService/deploymentSafeguards` (an extension resource of a cluster).
pub const DEPLOYMENT_SAFEGUARDS: &str = "2025-07-01";
