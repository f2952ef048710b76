//! Workload identity federation from the CI system itself: the job's OIDC token from GitHub Actions or
//! Azure Pipelines, exchanged at Entra as a client assertion — a fresh one per exchange, nothing on disk.

use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use serde::Deserialize;

use super::jwt;
use crate::bad_input;
use crate::secret::Secret;
use crate::tls::is_loopback;

/// The audience Entra expects in a federated token (GitHub's `audience` query, ADO's fixed `aud`).
pub const AUDIENCE: &str = "api://AzureADTokenExchange";
/// RFC 7523's client assertion type, as Entra's token endpoint requires it.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Entra's public cloud; `AZURE_AUTHORITY_HOST` replaces it (as in the Azure SDKs).
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// The Azure DevOps OIDC API version the Azure SDKs' AzurePipelinesCredential sends.
const PIPELINES_API_VERSION: &str = "7.1";
const TIMEOUT: Duration = Duration::from_secs(30);

/// Which CI system issues the job's OIDC token, and how to ask it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issuer {
    /// `GET {ACTIONS_ID_TOKEN_REQUEST_URL}&audience=…` with `Authorization: Bearer
    /// {ACTIONS_ID_TOKEN_REQUEST_TOKEN}`, answered `{"count":…,"value":"<jwt>"}`.
    GitHubActions {
        request_url: String,
        request_token: Secret,
    },
    /// `POST {SYSTEM_OIDCREQUESTURI}?api-version=7.1&serviceConnectionId=…` with `Authorization:
    /// Bearer {SYSTEM_ACCESSTOKEN}`, answered `{"oidcToken":"<jwt>"}`.
    AzurePipelines {
        request_uri: String,
        service_connection: String,
        access_token: Secret,
    },
}

impl Issuer {
    fn name(&self) -> &'static str {
        match self {
            Issuer::GitHubActions { .. } => "GitHub Actions",
            Issuer::AzurePipelines { .. } => "Azure Pipelines",
        }
    }

    /// The URL the CI token request goes to, the variable it came from, and the variable of the
    /// bearer token sent with it.
    fn request(&self) -> (&str, &'static str, &'static str) {
        match self {
            Issuer::GitHubActions { request_url, .. } => (
                request_url,
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            ),
            Issuer::AzurePipelines { request_uri, .. } => {
                (request_uri, "SYSTEM_OIDCREQUESTURI", "SYSTEM_ACCESSTOKEN")
            }
        }
    }
}

/// An app registration or user-assigned identity that trusts the CI system's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiFederation {
    pub issuer: Issuer,
    pub tenant: String,
    pub client_id: String,
    /// Scheme and host of Entra, https only.
    pub authority_host: String,
}

/// GitHub Actions as the environment (`var`, empty counts as unset) configures it, or which variables
/// are missing — inside GitHub Actions, with the job permission that sets the request variables.
pub fn github_actions(var: &dyn Fn(&str) -> Option<String>) -> Result<CiFederation, String> {
    let hint = if var("GITHUB_ACTIONS").as_deref() == Some("true") {
        "; the job needs `permissions: id-token: write` for GitHub to hand it an OIDC token"
    } else {
        ""
    };
    let [request_url, request_token, tenant, client_id] = required(
        [
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                var("ACTIONS_ID_TOKEN_REQUEST_URL"),
            ),
            (
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                var("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
            ),
            ("AZURE_TENANT_ID", var("AZURE_TENANT_ID")),
            ("AZURE_CLIENT_ID", var("AZURE_CLIENT_ID")),
        ],
        hint,
    )?;
    Ok(CiFederation {
        issuer: Issuer::GitHubActions {
            request_url,
            request_token: Secret::new(request_token),
        },
        tenant,
        client_id,
        authority_host: authority_host(var),
    })
}

/// Azure Pipelines likewise. Its AzureCLI and AzurePowerShell tasks name the service connection's
/// identity `AZURESUBSCRIPTION_*`; `AZURE_*`, as everywhere else, is the fallback.
pub fn azure_pipelines(var: &dyn Fn(&str) -> Option<String>) -> Result<CiFederation, String> {
    let hint = if var("TF_BUILD").is_some() {
        "; map `SYSTEM_ACCESSTOKEN: $(System.AccessToken)` and the service connection's ids into the step's env (docs/ci.md)"
    } else {
        ""
    };
    let either = |first: &str, second: &str| var(first).or_else(|| var(second));
    let [request_uri, access_token, service_connection, tenant, client_id] = required(
        [
            ("SYSTEM_OIDCREQUESTURI", var("SYSTEM_OIDCREQUESTURI")),
            ("SYSTEM_ACCESSTOKEN", var("SYSTEM_ACCESSTOKEN")),
            (
                "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
                var("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"),
            ),
            (
                "AZURESUBSCRIPTION_TENANT_ID (or AZURE_TENANT_ID)",
                either("AZURESUBSCRIPTION_TENANT_ID", "AZURE_TENANT_ID"),
            ),
            (
                "AZURESUBSCRIPTION_CLIENT_ID (or AZURE_CLIENT_ID)",
                either("AZURESUBSCRIPTION_CLIENT_ID", "AZURE_CLIENT_ID"),
            ),
        ],
        hint,
    )?;
    Ok(CiFederation {
        issuer: Issuer::AzurePipelines {
            request_uri,
            service_connection,
            access_token: Secret::new(access_token),
        },
        tenant,
        client_id,
        authority_host: authority_host(var),
    })
}

/// The values, or `A, B not set<hint>` naming every one missing.
fn required<const N: usize>(
    values: [(&str, Option<String>); N],
    hint: &str,
) -> Result<[String; N], String> {
    let unset: Vec<&str> = values
        .iter()
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| *name)
        .collect();
    if !unset.is_empty() {
        return Err(format!("{} not set{hint}", unset.join(", ")));
    }
    Ok(values.map(|(_, value)| value.unwrap_or_default()))
}

fn authority_host(var: &dyn Fn(&str) -> Option<String>) -> String {
    var("AZURE_AUTHORITY_HOST").unwrap_or_else(|| DEFAULT_AUTHORITY_HOST.into())
}

#[derive(Deserialize)]
struct GitHubToken {
    value: String,
}

#[derive(Deserialize)]
struct PipelinesToken {
    #[serde(rename = "oidcToken")]
    oidc_token: String,
}

#[derive(Deserialize)]
struct EntraToken {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize, Default)]
struct EntraError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
}

impl CiFederation {
    /// Refuses a CI token request URL the request token would cross the network to in the clear:
    /// it must be https, or http on a loopback host (a local stand-in). Checked before anything
    /// is sent; the URL is named by its scheme and host only.
    pub fn check_request_url(&self) -> anyhow::Result<()> {
        let (given, variable, token) = self.issuer.request();
        let url = url::Url::parse(given.trim_end_matches('/'))
            .map_err(|e| bad_input!("{variable} is not a URL ({e}); nothing was sent"))?;
        let host = url.host_str().unwrap_or_default();
        match url.scheme() {
            "https" => Ok(()),
            "http" if is_loopback(host) => Ok(()),
            scheme => Err(bad_input!(
                "{variable} is a {scheme}:// URL on {host:?}: {token} is sent to it as a bearer token, so it must be https:// (plain http only on loopback); nothing was sent"
            )),
        }
    }

    /// An Entra token for `scope` and when it expires, from a CI token requested just now (a long job
    /// outlives any one of them: each exchange asks for a new one).
    pub async fn get_token(&self, scope: &str) -> anyhow::Result<(Secret, SystemTime)> {
        self.check_request_url()?;
        let authority = self.authority_host.trim_end_matches('/');
        if !authority.starts_with("https://") {
            bail!("AZURE_AUTHORITY_HOST {authority} does not use HTTPS; a client assertion is sent only over TLS");
        }
        let http = crate::tls::client_builder(Vec::new())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()?;
        let assertion = self.assertion(&http).await?;
        let url = format!("{authority}/{}/oauth2/v2.0/token", self.tenant);
        let form = [
            ("client_id", self.client_id.as_str()),
            ("scope", scope),
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion.expose()),
        ];
        let response = http
            .post(&url)
            .form(&form)
            .send()
            .await
            .with_context(|| format!("could not reach Entra at {authority}"))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            let error: EntraError = serde_json::from_str(&body).unwrap_or_default();
            bail!(self.refusal(status.as_u16(), &error, &assertion));
        }
        let token: EntraToken = serde_json::from_str(&body)
            .with_context(|| format!("Entra answered {url} with an unexpected body"))?;
        Ok((
            Secret::new(token.access_token),
            SystemTime::now() + Duration::from_secs(token.expires_in),
        ))
    }

    /// The CI system's OIDC token for this job.
    async fn assertion(&self, http: &reqwest::Client) -> anyhow::Result<Secret> {
        let name = self.issuer.name();
        let (request, fix) = match &self.issuer {
            Issuer::GitHubActions {
                request_url,
                request_token,
            } => {
                let mut url = url::Url::parse(request_url).with_context(|| {
                    format!("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL: {request_url}")
                })?;
                url.query_pairs_mut().append_pair("audience", AUDIENCE);
                (
                    http.get(url)
                        .bearer_auth(request_token.expose())
                        .header("accept", "application/json"),
                    "the job needs `permissions: id-token: write` (and ACTIONS_ID_TOKEN_REQUEST_TOKEN from that job)",
                )
            }
            Issuer::AzurePipelines {
                request_uri,
                service_connection,
                access_token,
            } => {
                let mut url =
                    url::Url::parse(request_uri.trim_end_matches('/')).with_context(|| {
                        format!("SYSTEM_OIDCREQUESTURI is not a URL: {request_uri}")
                    })?;
                url.query_pairs_mut()
                    .append_pair("api-version", PIPELINES_API_VERSION)
                    .append_pair("serviceConnectionId", service_connection);
                (
                    http.post(url)
                        .bearer_auth(access_token.expose())
                        .header("content-type", "application/json")
                        .header("x-tfs-fedauthredirect", "Suppress")
                        .body(Vec::<u8>::new()),
                    "map `SYSTEM_ACCESSTOKEN: $(System.AccessToken)` into the step's env, and check that the service connection id (AZURESUBSCRIPTION_SERVICE_CONNECTION_ID) names a workload identity federation connection this pipeline may use",
                )
            }
        };
        let response = request
            .send()
            .await
            .with_context(|| format!("could not reach {name}'s OIDC token endpoint"))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{name} refused the OIDC token request (HTTP {status}): {fix}");
        }
        let token = match &self.issuer {
            Issuer::GitHubActions { .. } => {
                serde_json::from_str::<GitHubToken>(&body).map(|t| t.value)
            }
            Issuer::AzurePipelines { .. } => {
                serde_json::from_str::<PipelinesToken>(&body).map(|t| t.oidc_token)
            }
        };
        let token = token.map_err(|_| {
            anyhow::anyhow!("{name}'s OIDC token endpoint answered without a token")
        })?;
        Ok(Secret::new(token))
    }

    /// What to tell the user when Entra refuses the exchange: for "no matching federated identity"
    /// the issuer, subject and audience the CI token carried (claims, never the token itself).
    fn refusal(&self, status: u16, error: &EntraError, assertion: &Secret) -> String {
        // Entra's first line, without the trace and correlation ids it appends.
        let said = error.error_description.lines().next().unwrap_or_default();
        let said = said.split(" Trace ID:").next().unwrap_or_default().trim();
        let said = if said.is_empty() {
            format!("HTTP {status} {}", error.error)
        } else {
            said.to_string()
        };
        let claims = jwt::claims(assertion.expose()).unwrap_or_default();
        let claim = |value: &Option<String>| value.clone().unwrap_or_else(|| "(none)".into());
        let no_match = |code: &u64| matches!(code, 70021 | 700211 | 700212 | 700213);
        if error.error_codes.iter().any(no_match) {
            let subject = claim(&claims.sub);
            return format!(
                "Entra has no federated credential on client {client} that matches the {name} token's subject `{subject}` \
                 (issuer {issuer}, audience {audience}). Add one with exactly this subject, issuer and audience to the app \
                 registration or managed identity {client} (e.g. `az identity federated-credential create … --subject '{subject}'`), \
                 or run the job where an existing credential's subject matches. Entra said: {said}",
                client = self.client_id,
                name = self.issuer.name(),
                issuer = claim(&claims.iss),
                audience = claims.audience().unwrap_or_else(|| "(none)".into()),
            );
        }
        format!(
            "Entra refused the {} token for client {} in tenant {}: {said}",
            self.issuer.name(),
            self.client_id,
            self.tenant
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github(url: &str) -> CiFederation {
        let vars = |name: &str| match name {
            "ACTIONS_ID_TOKEN_REQUEST_URL" => Some(url.to_string()),
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN" => Some("hunter2".to_string()),
            "AZURE_TENANT_ID" | "AZURE_CLIENT_ID" => Some("id".to_string()),
            _ => None,
        };
        github_actions(&vars).unwrap()
    }

    fn pipelines(uri: &str) -> CiFederation {
        let vars = |name: &str| match name {
            "SYSTEM_OIDCREQUESTURI" => Some(uri.to_string()),
            "SYSTEM_ACCESSTOKEN" => Some("hunter2".to_string()),
            "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID" | "AZURE_TENANT_ID" | "AZURE_CLIENT_ID" => {
                Some("id".to_string())
            }
            _ => None,
        };
        azure_pipelines(&vars).unwrap()
    }

    #[test]
    fn request_tokens_go_only_over_https_or_to_loopback() {
        let cases = [
            (
                "https://pipelines.actions.githubusercontent.com/abc?x=1",
                true,
            ),
            ("http://127.0.0.1:8080/token", true),
            ("http://localhost/token", true),
            ("http://[::1]:9/token", true),
            ("http://example.invalid:9/token", false),
            ("http://user:hunter2@10.0.0.1/token", false),
            ("ftp://127.0.0.1/token", false),
            ("not a url", false),
        ];
        for (url, ok) in cases {
            for (credential, variable) in [
                (github(url), "ACTIONS_ID_TOKEN_REQUEST_URL"),
                (pipelines(url), "SYSTEM_OIDCREQUESTURI"),
            ] {
                let checked = credential.check_request_url();
                assert_eq!(checked.is_ok(), ok, "{variable}={url}");
                if let Err(err) = checked {
                    assert_eq!(crate::error::exit_code(&err), 2);
                    let text = err.to_string();
                    assert!(text.contains(variable), "{text}");
                    assert!(!text.contains("hunter2"), "{text}");
                }
            }
        }
    }
}
