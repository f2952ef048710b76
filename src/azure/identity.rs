//! Workload identity in ARM steps that each look before they write: the cluster's readiness, a
//! user-assigned identity, its federated credential for a ServiceAccount, its Key Vault and Cosmos DB roles.

use serde::Serialize;

use super::arm::group_id;
use super::arm::{Arm, FederatedCredential, ManagedCluster, ManagedIdentity, NamedResource};
use super::names::path_segment;
use super::roles::{self, Assignment};
use crate::bad_input;

/// Key Vault Secrets User: reads secret values (docs/cluster.md).
pub const KEY_VAULT_SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";
/// Cosmos DB Built-in Data Contributor, a data-plane role of every account.
pub const COSMOS_DATA_CONTRIBUTOR: &str = "00000000-0000-0000-0000-000000000002";
/// Federated credentials one identity may hold (an Entra limit).
pub const CREDENTIAL_LIMIT: usize = 20;

/// What a step found or did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepOutcome {
    Created,
    Found,
    /// A federated credential of the same name trusted another issuer or subject (a recreated
    /// cluster): it now trusts this one.
    Updated,
}

impl StepOutcome {
    /// The verb of a human line: `created identity …`, `assigned Key Vault Secrets User …`.
    pub fn verb(self, creating: &'static str) -> &'static str {
        match self {
            StepOutcome::Created => creating,
            StepOutcome::Found => "found",
            StepOutcome::Updated => "updated",
        }
    }
}

impl From<Assignment> for StepOutcome {
    fn from(assignment: Assignment) -> StepOutcome {
        match assignment {
            Assignment::Created => StepOutcome::Created,
            Assignment::Existing => StepOutcome::Found,
        }
    }
}

/// The cluster's OIDC issuer URL, when the cluster can federate identities; otherwise an error
/// naming what is off and how to turn it on.
pub fn issuer(cluster: &ManagedCluster, resource_group: &str) -> anyhow::Result<String> {
    let properties = &cluster.properties;
    let oidc = properties.oidc_issuer_profile.as_ref();
    let workload = properties
        .security_profile
        .as_ref()
        .and_then(|p| p.workload_identity.as_ref());
    let mut off = Vec::new();
    if !oidc.and_then(|p| p.enabled).unwrap_or(false) {
        off.push("the OIDC issuer (properties.oidcIssuerProfile.enabled)");
    }
    if !workload.and_then(|w| w.enabled).unwrap_or(false) {
        off.push("workload identity (properties.securityProfile.workloadIdentity.enabled)");
    }
    let name = &cluster.name;
    if !off.is_empty() {
        let (are, them) = if off.len() == 1 {
            ("is", "it")
        } else {
            ("are", "both")
        };
        anyhow::bail!(
            "the AKS cluster {name} cannot federate identities: {} {are} off. Set {them} to true \
             on the cluster (with az: `az aks update -g {resource_group} -n {name} \
             --enable-oidc-issuer --enable-workload-identity`), then run this again",
            off.join(" and "),
        );
    }
    oidc.and_then(|p| p.issuer_url.clone())
        .filter(|url| !url.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the AKS cluster {name} has its OIDC issuer enabled but no issuer URL yet \
                 (properties.oidcIssuerProfile.issuerURL); wait for its update to finish, then run this again"
            )
        })
}

/// `…/resourceGroups/{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}`,
/// each part refused when it could move the path.
pub fn identity_id(subscription: &str, resource_group: &str, name: &str) -> anyhow::Result<String> {
    Ok(format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}",
        group_id(subscription, resource_group)?,
        path_segment("managed identity", name)?
    ))
}

/// The identity `id`, created in `location` when missing.
pub async fn ensure_identity(
    arm: &Arm,
    id: &str,
    location: &str,
) -> anyhow::Result<(ManagedIdentity, StepOutcome)> {
    if let Some(identity) = arm.managed_identity(id).await? {
        return Ok((identity, StepOutcome::Found));
    }
    let identity = arm.create_managed_identity(id, location).await?;
    Ok((identity, StepOutcome::Created))
}

/// `system:serviceaccount:<namespace>:<name>`: the subject of a ServiceAccount's tokens.
pub fn subject(namespace: &str, service_account: &str) -> String {
    format!("system:serviceaccount:{namespace}:{service_account}")
}

/// The federated credential name for a cluster's ServiceAccount: `<cluster>-<ns>-<sa>` with
/// what Entra refuses (`.` and others) as `-`, at most 120 characters.
pub fn credential_name(cluster: &str, namespace: &str, service_account: &str) -> String {
    format!("{cluster}-{namespace}-{service_account}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(120)
        .collect()
}

/// What to do about the credential `name` trusting `issuer` for `subject`, given the identity's
/// credentials: nothing (one already trusts exactly that), or write `name` (new or updated).
fn plan_credential(
    existing: &[FederatedCredential],
    identity: &str,
    name: &str,
    issuer: &str,
    subject: &str,
) -> anyhow::Result<(String, StepOutcome)> {
    if let Some(found) = existing
        .iter()
        .find(|c| c.properties.issuer == issuer && c.properties.subject == subject)
    {
        return Ok((found.name.clone(), StepOutcome::Found));
    }
    if existing.iter().any(|c| c.name == name) {
        return Ok((name.to_string(), StepOutcome::Updated));
    }
    if existing.len() >= CREDENTIAL_LIMIT {
        anyhow::bail!(
            "the managed identity {identity} already has {} federated credentials, Azure's limit \
             per identity: delete one it no longer needs (its federated credentials: {}), or give \
             this app its own identity with --name",
            existing.len(),
            existing
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok((name.to_string(), StepOutcome::Created))
}

/// Makes `identity` trust tokens of `issuer` for `subject`, under `name` unless an existing
/// credential already does. Returns the credential's name.
pub async fn ensure_credential(
    arm: &Arm,
    identity: &ManagedIdentity,
    name: &str,
    issuer: &str,
    subject: &str,
) -> anyhow::Result<(String, StepOutcome)> {
    let existing = arm.federated_credentials(&identity.id).await?;
    let (name, action) = plan_credential(&existing, &identity.name, name, issuer, subject)?;
    if action != StepOutcome::Found {
        arm.put_federated_credential(&identity.id, &name, issuer, subject)
            .await?;
    }
    Ok((name, action))
}

/// A data-plane role spin-aks grants an app's identity, on one resource of a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataRole {
    /// On a Key Vault (Azure RBAC).
    KeyVaultSecretsUser,
    /// On a whole Cosmos DB account (Cosmos DB's own SQL role assignments).
    CosmosDataContributor,
}

/// Reports name the role as Azure does.
impl Serialize for DataRole {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl DataRole {
    pub fn name(self) -> &'static str {
        match self {
            DataRole::KeyVaultSecretsUser => "Key Vault Secrets User",
            DataRole::CosmosDataContributor => "Cosmos DB Built-in Data Contributor",
        }
    }

    /// What the role is granted on, for messages: `vault`, `Cosmos DB account`.
    pub fn resource_kind(self) -> &'static str {
        match self {
            DataRole::KeyVaultSecretsUser => "vault",
            DataRole::CosmosDataContributor => "Cosmos DB account",
        }
    }

    /// The resource `name` of this role's kind among the subscription's; bad input listing
    /// those there are when it is not one of them.
    pub async fn find(
        self,
        arm: &Arm,
        subscription: &str,
        name: &str,
    ) -> anyhow::Result<NamedResource> {
        let (resources, flag) = match self {
            DataRole::KeyVaultSecretsUser => (arm.key_vaults(subscription).await?, "--key-vault"),
            DataRole::CosmosDataContributor => {
                (arm.cosmos_accounts(subscription).await?, "--cosmos")
            }
        };
        let names: Vec<String> = resources.iter().map(|r| r.name.clone()).collect();
        resources
            .into_iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                bad_input!(
                    "{flag} {name}: no {} of that name in the cluster's subscription \
                     {subscription} (it has: {}); pass one of those",
                    self.resource_kind(),
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                )
            })
    }

    /// Grants the role on `resource_id` to `principal_id` unless it holds it already (a new
    /// identity's replication delay waited out).
    pub async fn ensure(
        self,
        arm: &Arm,
        resource_id: &str,
        principal_id: &str,
    ) -> anyhow::Result<StepOutcome> {
        match self {
            DataRole::KeyVaultSecretsUser => {
                let assignment =
                    roles::ensure_role(arm, resource_id, KEY_VAULT_SECRETS_USER, principal_id)
                        .await?;
                Ok(assignment.into())
            }
            DataRole::CosmosDataContributor => {
                ensure_cosmos_contributor(arm, resource_id, principal_id).await
            }
        }
    }
}

/// Cosmos DB Built-in Data Contributor on the whole account `account_id` for `principal_id`.
async fn ensure_cosmos_contributor(
    arm: &Arm,
    account_id: &str,
    principal_id: &str,
) -> anyhow::Result<StepOutcome> {
    let role = format!("{account_id}/sqlRoleDefinitions/{COSMOS_DATA_CONTRIBUTOR}");
    let held = arm.sql_role_assignments(account_id).await?;
    if held.iter().any(|a| {
        let p = &a.properties;
        p.principal_id == principal_id
            && p.scope.eq_ignore_ascii_case(account_id)
            && p.role_definition_id.eq_ignore_ascii_case(&role)
    }) {
        return Ok(StepOutcome::Found);
    }
    let name = sql_assignment_name(account_id, &role, principal_id);
    arm.create_sql_role_assignment(account_id, &name, &role, principal_id)
        .await?;
    Ok(StepOutcome::Created)
}

/// The assignment's id, the same for the same account, role and principal: a run killed while
/// Cosmos DB was still creating it, run again, writes that one again rather than a second one.
fn sql_assignment_name(account_id: &str, role: &str, principal_id: &str) -> String {
    use sha2::Digest;
    let key = format!(
        "{}\n{}\n{principal_id}",
        account_id.to_ascii_lowercase(),
        role.to_ascii_lowercase()
    );
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::arm::FederatedCredentialProperties;

    #[test]
    fn a_cosmos_assignment_keeps_its_id_across_runs() {
        let account =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DocumentDB/databaseAccounts/db";
        let role = format!("{account}/sqlRoleDefinitions/00000000-0000-0000-0000-000000000002");
        let name = sql_assignment_name(account, &role, "p1");
        assert_eq!(
            name,
            sql_assignment_name(&account.to_uppercase(), &role, "p1")
        );
        assert_ne!(name, sql_assignment_name(account, &role, "p2"));
        assert!(uuid::Uuid::parse_str(&name).is_ok(), "{name}");
    }

    fn credential(name: &str, issuer: &str, subject: &str) -> FederatedCredential {
        FederatedCredential {
            name: name.into(),
            properties: FederatedCredentialProperties {
                issuer: issuer.into(),
                subject: subject.into(),
                audiences: vec!["api://AzureADTokenExchange".into()],
            },
        }
    }

    #[test]
    fn a_credential_is_found_by_issuer_and_subject_else_written_under_its_name() {
        let existing = vec![credential(
            "other-name",
            "https://oidc/1/",
            "system:serviceaccount:default:shop",
        )];
        let plan = |existing: &[FederatedCredential], issuer: &str| {
            plan_credential(
                existing,
                "id",
                "c1-default-shop",
                issuer,
                "system:serviceaccount:default:shop",
            )
        };
        assert_eq!(
            plan(&existing, "https://oidc/1/").unwrap(),
            ("other-name".into(), StepOutcome::Found)
        );
        assert_eq!(
            plan(&existing, "https://oidc/2/").unwrap(),
            ("c1-default-shop".into(), StepOutcome::Created)
        );
        let recreated = vec![credential(
            "c1-default-shop",
            "https://oidc/old/",
            "system:serviceaccount:default:shop",
        )];
        assert_eq!(
            plan(&recreated, "https://oidc/2/").unwrap(),
            ("c1-default-shop".into(), StepOutcome::Updated)
        );
    }

    #[test]
    fn credential_names_keep_only_what_entra_accepts() {
        assert_eq!(credential_name("c1", "prod", "web.api"), "c1-prod-web-api");
        assert_eq!(credential_name("c", "n", &"s".repeat(200)).len(), 120);
    }
}
