//! The Entra credential chain in DefaultAzureCredential's order — environment service principal, workload
//! identity (file, then GitHub Actions, Azure Pipelines), managed identity, az, azd; the first token wins.

use super::federated::{self, CiFederation};
use super::imds::{ImdsCredential, DEFAULT_IMDS_HOST};
use crate::secret::Secret;
use azure_core::credentials::TokenCredential;
use azure_identity::{
    AzureCliCredential, AzureDeveloperCliCredential, ClientSecretCredential,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential,
};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The Entra scope whose tokens ACR's `/oauth2/exchange` accepts.
pub const ACR_SCOPE: &str = "https://containerregistry.azure.net/.default";

/// One way of getting an Entra token, in chain order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    EnvironmentServicePrincipal,
    WorkloadIdentity,
    GitHubActions,
    AzurePipelines,
    ManagedIdentity,
    AzureCli,
    AzureDeveloperCli,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CredentialSource::EnvironmentServicePrincipal => "environment service principal",
            CredentialSource::WorkloadIdentity => "workload identity",
            CredentialSource::GitHubActions => "GitHub Actions OIDC",
            CredentialSource::AzurePipelines => "Azure Pipelines OIDC",
            CredentialSource::ManagedIdentity => "managed identity",
            CredentialSource::AzureCli => "Azure CLI (az)",
            CredentialSource::AzureDeveloperCli => "Azure Developer CLI (azd)",
        })
    }
}

/// Where a managed identity token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagedIdentityEndpoint {
    /// `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` (App Service, Container Apps, Functions).
    AppService(String),
    /// The instance metadata service (VMs, AKS nodes) at this host.
    Imds(String),
}

/// One step of the chain: a source and, when the environment does not configure it, why it is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub source: CredentialSource,
    pub skipped: Option<String>,
    /// Set for [`CredentialSource::ManagedIdentity`] only.
    pub endpoint: Option<ManagedIdentityEndpoint>,
    /// Set for [`CredentialSource::GitHubActions`] and [`CredentialSource::AzurePipelines`] when configured.
    pub federated: Option<CiFederation>,
}

/// The chain for an environment (`var` looks a variable up; empty values count as unset).
pub fn plan(var: impl Fn(&str) -> Option<String>) -> Vec<Step> {
    let var = |name: &str| var(name).filter(|value| !value.is_empty());
    let missing = |names: &[&str]| -> Option<String> {
        let unset: Vec<&str> = names
            .iter()
            .copied()
            .filter(|name| var(name).is_none())
            .collect();
        (!unset.is_empty()).then(|| format!("{} not set", unset.join(", ")))
    };
    let step = |source, skipped| Step {
        source,
        skipped,
        endpoint: None,
        federated: None,
    };
    let endpoint = match (var("IDENTITY_ENDPOINT"), var("IDENTITY_HEADER")) {
        (Some(endpoint), Some(_)) => ManagedIdentityEndpoint::AppService(endpoint),
        _ => ManagedIdentityEndpoint::Imds(
            var("AZURE_POD_IDENTITY_AUTHORITY_HOST").unwrap_or_else(|| DEFAULT_IMDS_HOST.into()),
        ),
    };
    vec![
        step(
            CredentialSource::EnvironmentServicePrincipal,
            missing(&["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"]),
        ),
        step(
            CredentialSource::WorkloadIdentity,
            missing(&[
                "AZURE_TENANT_ID",
                "AZURE_CLIENT_ID",
                "AZURE_FEDERATED_TOKEN_FILE",
            ]),
        ),
        ci_step(
            CredentialSource::GitHubActions,
            federated::github_actions(&var),
        ),
        ci_step(
            CredentialSource::AzurePipelines,
            federated::azure_pipelines(&var),
        ),
        Step {
            source: CredentialSource::ManagedIdentity,
            skipped: None,
            endpoint: Some(endpoint),
            federated: None,
        },
        step(CredentialSource::AzureCli, None),
        step(CredentialSource::AzureDeveloperCli, None),
    ]
}

/// The step of a CI system's own OIDC token: configured, or skipped with why.
fn ci_step(source: CredentialSource, configured: Result<CiFederation, String>) -> Step {
    let (federated, skipped) = match configured {
        Ok(federated) => (Some(federated), None),
        Err(why) => (None, Some(why)),
    };
    Step {
        source,
        skipped,
        endpoint: None,
        federated,
    }
}

/// An Entra access token and what produced it.
#[derive(Debug, Clone)]
pub struct EntraToken {
    pub token: Secret,
    pub expires_on: SystemTime,
    pub source: CredentialSource,
}

/// DefaultAzureCredential, composed: tries each [`Step`] in order and remembers the one that worked.
///
/// azure_identity 1.x supplies every credential but IMDS (see [`super::imds`]) and has no chain: the
/// order, the environment checks and the "what was tried" error are ours. azure_identity itself reads
/// `AZURE_AUTHORITY_HOST` (it must be an https URL) and the other variables of each credential.
#[derive(Debug)]
pub struct AzureCredential {
    steps: Vec<Step>,
    /// `AZURE_CLIENT_ID`, which also selects a user-assigned managed identity.
    client_id: Option<String>,
    last_good: Mutex<Option<usize>>,
    /// Tokens by scope, each reused until [`REUSE_MARGIN`] before it expires.
    cached: Mutex<HashMap<String, EntraToken>>,
}

/// A cached Entra token is reused only while it stays valid at least this long.
const REUSE_MARGIN: Duration = Duration::from_secs(5 * 60);

impl AzureCredential {
    /// The chain as the process environment configures it.
    pub fn from_env() -> Self {
        AzureCredential {
            steps: plan(|name| std::env::var(name).ok()),
            client_id: std::env::var("AZURE_CLIENT_ID")
                .ok()
                .filter(|id| !id.is_empty()),
            last_good: Mutex::new(None),
            cached: Mutex::new(HashMap::new()),
        }
    }

    /// A token for `scope` from the first source that gives one; otherwise an error naming every
    /// source tried and why it failed.
    pub async fn token(&self, scope: &str) -> anyhow::Result<EntraToken> {
        if let Some(token) = self.cached.lock().unwrap().get(scope) {
            if token.expires_on > SystemTime::now() + REUSE_MARGIN {
                return Ok(token.clone());
            }
        }
        let token = self.fetch(scope).await?;
        self.cached
            .lock()
            .unwrap()
            .insert(scope.to_string(), token.clone());
        Ok(token)
    }

    /// Drops the cached token for `scope` (the service said it expired): the next
    /// [`Self::token`] asks its source again.
    pub fn forget(&self, scope: &str) {
        self.cached.lock().unwrap().remove(scope);
    }

    async fn fetch(&self, scope: &str) -> anyhow::Result<EntraToken> {
        let remembered = *self.last_good.lock().unwrap();
        if let Some(index) = remembered {
            if let Ok(token) = self.try_step(&self.steps[index], scope).await {
                return Ok(token);
            }
        }
        let mut tried = Vec::new();
        for (index, step) in self.steps.iter().enumerate() {
            if let Some(reason) = &step.skipped {
                tried.push(format!("{}: skipped, {reason}", step.source));
                continue;
            }
            if let Some(federated) = &step.federated {
                // A CI job's request token never travels in the clear: bad input, not a step to skip.
                federated.check_request_url()?;
            }
            match self.try_step(step, scope).await {
                Ok(token) => {
                    tracing::debug!(source = %step.source, "got an Entra token");
                    *self.last_good.lock().unwrap() = Some(index);
                    return Ok(token);
                }
                Err(reason) if step.federated.is_some() => {
                    // Configured by the CI job and refused: the Azure SDKs' chains end at an
                    // authentication failure too, and the rest (IMDS, az) would only bury it.
                    anyhow::bail!(
                        "could not sign in to Azure through {}: {reason}",
                        step.source
                    );
                }
                Err(reason) => {
                    tracing::debug!(source = %step.source, %reason, "credential unavailable");
                    let source = match &step.endpoint {
                        Some(ManagedIdentityEndpoint::AppService(endpoint)) => {
                            format!("{} (IDENTITY_ENDPOINT {endpoint})", step.source)
                        }
                        _ => step.source.to_string(),
                    };
                    tried.push(format!("{source}: {reason}"));
                }
            }
        }
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        let fix = if var("GITHUB_ACTIONS") == "true" {
            "In GitHub Actions: give the job `permissions: id-token: write` and set AZURE_CLIENT_ID and \
             AZURE_TENANT_ID to an identity federated with this repository (docs/ci.md)."
        } else if !var("TF_BUILD").is_empty() {
            "In Azure Pipelines: map SYSTEM_ACCESSTOKEN and the workload identity service connection's \
             AZURESUBSCRIPTION_* ids into the step's env (docs/ci.md)."
        } else {
            "Sign in with `az login` (or `azd auth login`), or set AZURE_TENANT_ID, AZURE_CLIENT_ID \
             and AZURE_CLIENT_SECRET for a service principal."
        };
        anyhow::bail!(
            "could not sign in to Azure: no credential gave a token. Tried, in order:\n  - {}\n{fix}",
            tried.join("\n  - ")
        )
    }

    /// One source's token, or a one-line reason it could not give one.
    async fn try_step(&self, step: &Step, scope: &str) -> Result<EntraToken, String> {
        let (token, expires_on) = match (step.source, &step.endpoint) {
            (CredentialSource::GitHubActions | CredentialSource::AzurePipelines, _) => {
                let federated = step.federated.as_ref().ok_or("not configured")?;
                federated
                    .get_token(scope)
                    .await
                    .map_err(|err| format!("{err:#}"))?
            }
            (CredentialSource::ManagedIdentity, Some(ManagedIdentityEndpoint::Imds(host))) => {
                ImdsCredential::new(host, self.client_id.clone())
                    .get_token(scope)
                    .await
                    .map_err(|err| format!("{err:#}"))?
            }
            _ => {
                let credential = self.azure_identity(step).map_err(|err| one_line(&err))?;
                let token = credential
                    .get_token(&[scope], None)
                    .await
                    .map_err(|err| one_line(&err))?;
                let secs = u64::try_from(token.expires_on.unix_timestamp()).unwrap_or(0);
                (
                    Secret::new(token.token.secret()),
                    UNIX_EPOCH + Duration::from_secs(secs),
                )
            }
        };
        Ok(EntraToken {
            token,
            expires_on,
            source: step.source,
        })
    }

    /// The azure_identity credential behind a step (all but IMDS).
    fn azure_identity(&self, step: &Step) -> azure_core::Result<Arc<dyn TokenCredential>> {
        Ok(match step.source {
            CredentialSource::EnvironmentServicePrincipal => {
                let var = |name| std::env::var(name).unwrap_or_default();
                ClientSecretCredential::new(
                    &var("AZURE_TENANT_ID"),
                    var("AZURE_CLIENT_ID"),
                    var("AZURE_CLIENT_SECRET").into(),
                    None,
                )?
            }
            CredentialSource::WorkloadIdentity => WorkloadIdentityCredential::new(None)?,
            CredentialSource::ManagedIdentity => {
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id: self.client_id.clone().map(UserAssignedId::ClientId),
                    ..Default::default()
                }))?
            }
            CredentialSource::GitHubActions | CredentialSource::AzurePipelines => {
                return Err(azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Credential,
                    "CI federation is spin-aks' own, not azure_identity's",
                ))
            }
            CredentialSource::AzureCli => AzureCliCredential::new(None)?,
            CredentialSource::AzureDeveloperCli => AzureDeveloperCliCredential::new(None)?,
        })
    }
}

/// azure_identity errors end with a troubleshooting link on a new line; keep the first line.
fn one_line(err: &azure_core::Error) -> String {
    let text = err.to_string();
    text.lines().next().unwrap_or_default().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::federated::Issuer;
    use std::collections::HashMap;

    fn plan_for(vars: &[(&str, &str)]) -> Vec<Step> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        plan(|name| vars.get(name).cloned())
    }

    #[test]
    fn chain_order_matches_default_azure_credential() {
        let order: Vec<CredentialSource> = plan_for(&[]).iter().map(|step| step.source).collect();
        assert_eq!(
            order,
            [
                CredentialSource::EnvironmentServicePrincipal,
                CredentialSource::WorkloadIdentity,
                CredentialSource::GitHubActions,
                CredentialSource::AzurePipelines,
                CredentialSource::ManagedIdentity,
                CredentialSource::AzureCli,
                CredentialSource::AzureDeveloperCli
            ]
        );
    }

    #[test]
    fn empty_environment_skips_service_principal_and_workload_identity_naming_the_variables() {
        let steps = plan_for(&[]);
        assert_eq!(
            steps[0].skipped.as_deref(),
            Some("AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET not set")
        );
        assert_eq!(
            steps[1].skipped.as_deref(),
            Some("AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE not set")
        );
        assert_eq!(
            steps[2].skipped.as_deref(),
            Some("ACTIONS_ID_TOKEN_REQUEST_URL, ACTIONS_ID_TOKEN_REQUEST_TOKEN, AZURE_TENANT_ID, AZURE_CLIENT_ID not set")
        );
        assert_eq!(
            steps[3].skipped.as_deref(),
            Some("SYSTEM_OIDCREQUESTURI, SYSTEM_ACCESSTOKEN, AZURESUBSCRIPTION_SERVICE_CONNECTION_ID, AZURESUBSCRIPTION_TENANT_ID (or AZURE_TENANT_ID), AZURESUBSCRIPTION_CLIENT_ID (or AZURE_CLIENT_ID) not set")
        );
        assert_eq!(
            steps[4].endpoint,
            Some(ManagedIdentityEndpoint::Imds(DEFAULT_IMDS_HOST.into()))
        );
        assert!(steps[4..].iter().all(|step| step.skipped.is_none()));
    }

    #[test]
    fn service_principal_variables_enable_the_first_step_only_when_all_are_set() {
        let partial = plan_for(&[("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")]);
        assert_eq!(
            partial[0].skipped.as_deref(),
            Some("AZURE_CLIENT_SECRET not set")
        );
        let full = plan_for(&[
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "s"),
        ]);
        assert_eq!(full[0].skipped, None);
        assert!(full[1].skipped.is_some());
    }

    #[test]
    fn workload_identity_needs_the_federated_token_file() {
        let steps = plan_for(&[
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
        ]);
        assert!(steps[0].skipped.is_some());
        assert_eq!(steps[1].skipped, None);
    }

    #[test]
    fn identity_endpoint_with_header_selects_app_service_else_imds_honours_pod_identity_host() {
        let app_service = plan_for(&[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi"),
            ("IDENTITY_HEADER", "h"),
        ]);
        assert_eq!(
            app_service[4].endpoint,
            Some(ManagedIdentityEndpoint::AppService(
                "http://127.0.0.1:1/msi".into()
            ))
        );
        let endpoint_without_header = plan_for(&[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi"),
            ("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:2"),
        ]);
        assert_eq!(
            endpoint_without_header[4].endpoint,
            Some(ManagedIdentityEndpoint::Imds("http://127.0.0.1:2".into()))
        );
    }

    #[test]
    fn github_actions_step_is_configured_by_the_request_variables_and_the_identity() {
        let steps = plan_for(&[
            ("GITHUB_ACTIONS", "true"),
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                "https://gh.example/idtoken?api-version=2.0",
            ),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token"),
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
        ]);
        assert_eq!(steps[2].skipped, None);
        let federated = steps[2].federated.as_ref().unwrap();
        assert_eq!(
            (federated.tenant.as_str(), federated.client_id.as_str()),
            ("t", "c")
        );
        assert_eq!(
            federated.authority_host,
            "https://login.microsoftonline.com"
        );
        assert!(
            matches!(&federated.issuer, Issuer::GitHubActions { request_url, .. } if request_url.ends_with("api-version=2.0"))
        );
    }

    #[test]
    fn inside_github_actions_without_the_request_variables_names_the_id_token_permission() {
        let steps = plan_for(&[
            ("GITHUB_ACTIONS", "true"),
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
        ]);
        assert_eq!(
            steps[2].skipped.as_deref(),
            Some("ACTIONS_ID_TOKEN_REQUEST_URL, ACTIONS_ID_TOKEN_REQUEST_TOKEN not set; the job needs `permissions: id-token: write` for GitHub to hand it an OIDC token")
        );
    }

    #[test]
    fn azure_pipelines_step_takes_the_service_connection_ids_before_azure_ones() {
        let steps = plan_for(&[
            ("TF_BUILD", "True"),
            ("SYSTEM_OIDCREQUESTURI", "https://dev.azure.com/org/p/_apis/distributedtask/hubs/build/plans/1/jobs/2/oidctoken"),
            ("SYSTEM_ACCESSTOKEN", "system-token"),
            ("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", "sc"),
            ("AZURESUBSCRIPTION_TENANT_ID", "t1"),
            ("AZURESUBSCRIPTION_CLIENT_ID", "c1"),
            ("AZURE_TENANT_ID", "t2"),
            ("AZURE_CLIENT_ID", "c2"),
        ]);
        let federated = steps[3].federated.as_ref().unwrap();
        assert_eq!(
            (federated.tenant.as_str(), federated.client_id.as_str()),
            ("t1", "c1")
        );
        assert!(
            matches!(&federated.issuer, Issuer::AzurePipelines { service_connection, .. } if service_connection == "sc")
        );

        let without_token = plan_for(&[
            ("TF_BUILD", "True"),
            ("SYSTEM_OIDCREQUESTURI", "https://dev.azure.com/x"),
            ("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", "sc"),
            ("AZURE_TENANT_ID", "t2"),
            ("AZURE_CLIENT_ID", "c2"),
        ]);
        assert_eq!(
            without_token[3].skipped.as_deref(),
            Some("SYSTEM_ACCESSTOKEN not set; map `SYSTEM_ACCESSTOKEN: $(System.AccessToken)` and the service connection's ids into the step's env (docs/ci.md)")
        );
    }
}
