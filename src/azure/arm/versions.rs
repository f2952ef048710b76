//! The ARM api-versions spin-aks speaks, pinned in one place (CLUSTER.md §6).
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
