//! The ARM calls behind workload identity: user-assigned identities and their federated
//! credentials, the Key Vaults and Cosmos DB accounts of a subscription, Cosmos DB SQL role assignments.

use reqwest::Method;
use serde_json::json;

use super::transport::{not_found_as_none, Repeat};
use super::types::*;
use super::versions;
use super::Arm;
use crate::azure::names::path_segment;

impl Arm {
    /// The user-assigned identity `id`, or `None` when there is none (404).
    pub async fn managed_identity(&self, id: &str) -> anyhow::Result<Option<ManagedIdentity>> {
        let url = self.url(id, versions::USER_ASSIGNED_IDENTITIES)?;
        not_found_as_none(self.get(&url).await)
    }

    /// Creates the user-assigned identity `id` in `location` (a PUT: repeating it changes nothing).
    pub async fn create_managed_identity(
        &self,
        id: &str,
        location: &str,
    ) -> anyhow::Result<ManagedIdentity> {
        let url = self.url(id, versions::USER_ASSIGNED_IDENTITIES)?;
        let body = json!({ "location": location });
        let reply = self
            .send(Method::PUT, &url, Some(&body), Repeat::Safe)
            .await?;
        reply.json("the managed identity")
    }

    pub async fn federated_credentials(
        &self,
        identity_id: &str,
    ) -> anyhow::Result<Vec<FederatedCredential>> {
        let path = format!("{identity_id}/federatedIdentityCredentials");
        self.list(&self.url(&path, versions::USER_ASSIGNED_IDENTITIES)?)
            .await
    }

    /// Creates or replaces the federated credential `name` of `identity_id`, trusting tokens of
    /// `issuer` for `subject` with the Entra token exchange audience.
    pub async fn put_federated_credential(
        &self,
        identity_id: &str,
        name: &str,
        issuer: &str,
        subject: &str,
    ) -> anyhow::Result<FederatedCredential> {
        let name = path_segment("federated credential", name)?;
        let path = format!("{identity_id}/federatedIdentityCredentials/{name}");
        let url = self.url(&path, versions::USER_ASSIGNED_IDENTITIES)?;
        let body = json!({"properties": {
            "issuer": issuer,
            "subject": subject,
            "audiences": ["api://AzureADTokenExchange"],
        }});
        let reply = self
            .send(Method::PUT, &url, Some(&body), Repeat::Safe)
            .await?;
        reply.json("the federated credential")
    }

    pub async fn key_vaults(&self, subscription: &str) -> anyhow::Result<Vec<NamedResource>> {
        let path = format!(
            "{}/providers/Microsoft.KeyVault/vaults",
            subscription_id(subscription)?
        );
        self.list(&self.url(&path, versions::KEY_VAULTS)?).await
    }

    pub async fn cosmos_accounts(&self, subscription: &str) -> anyhow::Result<Vec<NamedResource>> {
        let path = format!(
            "{}/providers/Microsoft.DocumentDB/databaseAccounts",
            subscription_id(subscription)?
        );
        self.list(&self.url(&path, versions::COSMOS)?).await
    }

    pub async fn sql_role_assignments(
        &self,
        account_id: &str,
    ) -> anyhow::Result<Vec<SqlRoleAssignment>> {
        let path = format!("{account_id}/sqlRoleAssignments");
        self.list(&self.url(&path, versions::COSMOS)?).await
    }

    /// Grants `principal_id` the SQL role `role_definition_id` on the whole account under the
    /// assignment name `name` (a new GUID), and waits for the asynchronous operation to finish.
    pub async fn create_sql_role_assignment(
        &self,
        account_id: &str,
        name: &str,
        role_definition_id: &str,
        principal_id: &str,
    ) -> anyhow::Result<()> {
        let name = path_segment("SQL role assignment", name)?;
        let path = format!("{account_id}/sqlRoleAssignments/{name}");
        let url = self.url(&path, versions::COSMOS)?;
        let body = json!({"properties": {
            "roleDefinitionId": role_definition_id,
            "scope": account_id,
            "principalId": principal_id,
        }});
        let started = self
            .send(Method::PUT, &url, Some(&body), Repeat::Safe)
            .await?;
        self.finish(started).await?;
        Ok(())
    }
}
