//! Managed identity through the instance metadata service (VMs, AKS nodes), over reqwest with a 1 s connect
//! timeout: azure_identity's IMDS credential retries for ~72 s at a fixed address (a laptop would hang, a test can't fake it).

use crate::secret::Secret;
use anyhow::{bail, Context};
use serde::Deserialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The well-known IMDS address; `AZURE_POD_IDENTITY_AUTHORITY_HOST` replaces it (as in the other Azure SDKs).
pub const DEFAULT_IMDS_HOST: &str = "http://169.254.169.254";
const API_VERSION: &str = "2018-02-01";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A token request to IMDS: `GET {host}/metadata/identity/oauth2/token?api-version&resource`,
/// header `Metadata: true`, answered `{"access_token","expires_on":"<epoch>","resource","token_type"}`.
#[derive(Debug, Clone)]
pub struct ImdsCredential {
    host: String,
    client_id: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    /// IMDS sends seconds since the epoch as a string.
    expires_on: String,
}

impl ImdsCredential {
    /// `host` is the scheme and authority of IMDS; `client_id` picks a user-assigned identity.
    pub fn new(host: &str, client_id: Option<String>) -> Self {
        ImdsCredential {
            host: host.trim_end_matches('/').to_string(),
            client_id,
        }
    }

    /// A token for `scope` (`<resource>/.default`), and when it expires.
    pub async fn get_token(&self, scope: &str) -> anyhow::Result<(Secret, SystemTime)> {
        let http = crate::tls::client_builder(Vec::new())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .no_proxy()
            .build()?;
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        let mut query = vec![("api-version", API_VERSION), ("resource", resource)];
        if let Some(client_id) = &self.client_id {
            query.push(("client_id", client_id));
        }
        let response = http
            .get(format!("{}/metadata/identity/oauth2/token", self.host))
            .query(&query)
            .header("Metadata", "true")
            .send()
            .await
            .map_err(|err| {
                let why = if err.is_timeout() {
                    "timed out"
                } else if err.is_connect() {
                    "could not connect"
                } else {
                    "request failed"
                };
                anyhow::anyhow!("no instance metadata service at {} ({why})", self.host)
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!(
                "the instance metadata service answered HTTP {status}: {}",
                body.trim()
            );
        }
        let token: TokenResponse = response
            .json()
            .await
            .context("the instance metadata service sent an unexpected token response")?;
        let expires_on = token
            .expires_on
            .parse::<u64>()
            .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
            .context("the instance metadata service sent an unreadable expires_on")?;
        Ok((Secret::new(token.access_token), expires_on))
    }
}
