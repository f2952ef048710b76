//! ACR's Entra token exchange (docs/cluster.md): Entra token → ACR refresh token (`/oauth2/exchange`)
//! → repository-scoped access token (`/oauth2/token`). Loopback login servers get plain http, as in Docker.

use super::credential::{AzureCredential, ACR_SCOPE};
use super::jwt;
use crate::secret::Secret;
use crate::tls::is_loopback;
use anyhow::Context;
use serde::Deserialize;
use std::time::{Duration, SystemTime};

/// The user name ACR expects beside a refresh token used as a basic-auth password.
pub const ACR_USERNAME: &str = "00000000-0000-0000-0000-000000000000";

/// Refusals from the registry's token endpoints. They are authorization problems: never retry them.
#[derive(Debug, thiserror::Error)]
pub enum AcrAuthError {
    #[error(
        "{login_server} refused the Entra token (HTTP {status}: {message}). The token's tenant \
         ({tenant}) may not be the registry's: sign in to the registry's tenant \
         (`az login --tenant <tenant id>`) or set AZURE_TENANT_ID to it."
    )]
    ExchangeRefused {
        login_server: String,
        status: u16,
        message: String,
        tenant: String,
    },
    #[error(
        "{login_server} denied `{actions}` on repository `{repository}` ({detail}). The signed-in \
         identity needs the AcrPush role on the registry (AcrPull to pull only); registries in ABAC \
         mode ignore those roles and need a repository-scoped role such as \"Container Registry \
         Repository Writer\"."
    )]
    Denied {
        login_server: String,
        repository: String,
        actions: String,
        detail: String,
    },
}

/// A registry access token and, when it is a JWT, when it expires.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_at: Option<SystemTime>,
}

impl AccessToken {
    /// True when the token expires within `margin` from now (refresh it first). Unknown expiry: false.
    pub fn expires_within(&self, margin: Duration) -> bool {
        self.expires_at
            .is_some_and(|at| at <= SystemTime::now() + margin)
    }
}

/// `http://` for loopback login servers (`localhost`, `127.x`, `[::1]`, with or without port), else `https://`.
pub fn registry_base_url(login_server: &str) -> String {
    let scheme = if is_loopback(login_server) {
        "http"
    } else {
        "https"
    };
    format!("{scheme}://{login_server}")
}

/// The scope string asking for `actions` on `repository`: `repository:<repo>:pull,push`.
pub fn repository_scope(repository: &str, actions: &[&str]) -> String {
    format!("repository:{repository}:{}", actions.join(","))
}

/// Signs in with the credential chain and exchanges the Entra token for an ACR refresh token.
/// Use it with [`acr_access_token`], or as the basic-auth password of user [`ACR_USERNAME`].
pub async fn acr_refresh_token(
    http: &reqwest::Client,
    login_server: &str,
    credential: &AzureCredential,
) -> anyhow::Result<Secret> {
    let entra = credential.token(ACR_SCOPE).await?;
    exchange_entra_token(http, login_server, &entra.token).await
}

/// `POST /oauth2/exchange` (grant_type=access_token): an Entra token in, an ACR refresh token out.
/// The tenant sent is the token's `tid` claim, else `AZURE_TENANT_ID`.
pub async fn exchange_entra_token(
    http: &reqwest::Client,
    login_server: &str,
    entra_token: &Secret,
) -> anyhow::Result<Secret> {
    let tenant = jwt::claims(entra_token.expose())
        .and_then(|claims| claims.tid)
        .or_else(|| std::env::var("AZURE_TENANT_ID").ok())
        .filter(|tenant| !tenant.is_empty());
    let mut form = vec![
        ("grant_type", "access_token"),
        ("service", login_server),
        ("access_token", entra_token.expose()),
    ];
    if let Some(tenant) = &tenant {
        form.push(("tenant", tenant));
    }
    let url = format!("{}/oauth2/exchange", registry_base_url(login_server));
    let response = http
        .post(&url)
        .form(&form)
        .send()
        .await
        .with_context(|| format!("could not reach {url} for the ACR token exchange"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if matches!(status.as_u16(), 400 | 401 | 403) {
        return Err(AcrAuthError::ExchangeRefused {
            login_server: login_server.into(),
            status: status.as_u16(),
            message: service_message(&body, &[entra_token]),
            tenant: tenant.unwrap_or_else(|| "unknown".into()),
        }
        .into());
    }
    if !status.is_success() {
        anyhow::bail!(
            "the ACR token exchange at {url} failed with HTTP {status}: {}",
            service_message(&body, &[entra_token])
        );
    }
    #[derive(Deserialize)]
    struct Exchanged {
        refresh_token: String,
    }
    let exchanged: Exchanged = serde_json::from_str(&body)
        .with_context(|| format!("{url} answered without a refresh_token"))?;
    Ok(Secret::new(exchanged.refresh_token))
}

/// `POST /oauth2/token` (grant_type=refresh_token) for `scopes` (see [`repository_scope`]). A 401/403,
/// or a token granting fewer actions than asked (what ACR and distribution do), is [`AcrAuthError::Denied`].
pub async fn acr_access_token(
    http: &reqwest::Client,
    login_server: &str,
    refresh_token: &Secret,
    scopes: &[String],
) -> anyhow::Result<AccessToken> {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("service", login_server),
        ("refresh_token", refresh_token.expose()),
    ];
    form.extend(scopes.iter().map(|scope| ("scope", scope.as_str())));
    let url = format!("{}/oauth2/token", registry_base_url(login_server));
    let response = http
        .post(&url)
        .form(&form)
        .send()
        .await
        .with_context(|| format!("could not reach {url} for a registry access token"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if matches!(status.as_u16(), 401 | 403) {
        let (repository, actions) = scopes
            .first()
            .and_then(|scope| parse_scope(scope))
            .unwrap_or_default();
        return Err(AcrAuthError::Denied {
            login_server: login_server.into(),
            repository: repository.into(),
            actions: actions.join(","),
            detail: format!(
                "HTTP {status}: {}",
                service_message(&body, &[refresh_token])
            ),
        }
        .into());
    }
    if !status.is_success() {
        anyhow::bail!(
            "{url} failed with HTTP {status}: {}",
            service_message(&body, &[refresh_token])
        );
    }
    #[derive(Deserialize)]
    struct Issued {
        access_token: String,
    }
    let issued: Issued = serde_json::from_str(&body)
        .with_context(|| format!("{url} answered without an access_token"))?;
    if let Some(claims) = jwt::claims(&issued.access_token) {
        if let Some((repository, missing)) = missing_grant(scopes, &claims.access) {
            return Err(AcrAuthError::Denied {
                login_server: login_server.into(),
                repository,
                actions: missing,
                detail: "the issued token does not grant it".into(),
            }
            .into());
        }
    }
    Ok(AccessToken {
        expires_at: jwt::expiry(&issued.access_token),
        token: Secret::new(issued.access_token),
    })
}

/// `repository:<name>:<a,b>` → (name, [a, b]). Names may not hold `:` but scopes of other types may.
fn parse_scope(scope: &str) -> Option<(&str, Vec<&str>)> {
    let rest = scope.strip_prefix("repository:")?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some((name, actions.split(',').filter(|a| !a.is_empty()).collect()))
}

/// The first requested repository whose actions the granted `access` lacks, with the missing actions.
fn missing_grant(scopes: &[String], granted: &[jwt::AccessClaim]) -> Option<(String, String)> {
    scopes
        .iter()
        .filter_map(|s| parse_scope(s))
        .find_map(|(name, actions)| {
            let has = |action: &str| {
                granted.iter().any(|entry| {
                    entry.r#type == "repository"
                        && entry.name == name
                        && entry.actions.iter().any(|a| a == action || a == "*")
                })
            };
            let missing: Vec<&str> = actions.into_iter().filter(|a| !has(a)).collect();
            (!missing.is_empty()).then(|| (name.to_string(), missing.join(",")))
        })
}

/// The human part of a registry error body (`{"errors":[{"message"}]}` or OAuth's
/// `error_description`), with any of `secrets` blanked out in case the service echoed one.
fn service_message(body: &str, secrets: &[&Secret]) -> String {
    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Entry>,
        error_description: Option<String>,
        error: Option<String>,
    }
    #[derive(Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
    }
    let message = match serde_json::from_str::<Body>(body) {
        Ok(parsed) if !parsed.errors.is_empty() => parsed
            .errors
            .iter()
            .map(|e| match (&e.code, &e.message) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (code, message) => message.clone().or(code.clone()).unwrap_or_default(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Ok(parsed) => parsed
            .error_description
            .or(parsed.error)
            .unwrap_or_default(),
        Err(_) => body.trim().chars().take(300).collect(),
    };
    let message = secrets.iter().fold(message, |text, secret| {
        if secret.expose().is_empty() {
            text
        } else {
            text.replace(secret.expose(), "<redacted>")
        }
    });
    if message.is_empty() {
        "no details given".into()
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_login_servers_use_plain_http_others_https() {
        assert_eq!(registry_base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(registry_base_url("localhost:5000"), "http://localhost:5000");
        assert_eq!(registry_base_url("[::1]:5000"), "http://[::1]:5000");
        assert_eq!(
            registry_base_url("myregistry.azurecr.io"),
            "https://myregistry.azurecr.io"
        );
        assert_eq!(
            registry_base_url("localhost.example.com"),
            "https://localhost.example.com"
        );
    }

    #[test]
    fn repository_scope_joins_actions() {
        assert_eq!(
            repository_scope("team/app", &["pull", "push"]),
            "repository:team/app:pull,push"
        );
    }

    #[test]
    fn missing_grant_reports_the_actions_not_granted() {
        let granted = vec![jwt::AccessClaim {
            r#type: "repository".into(),
            name: "app".into(),
            actions: vec!["pull".into()],
        }];
        let scopes = vec![
            repository_scope("app", &["pull", "push"]),
            repository_scope("other", &["pull"]),
        ];
        assert_eq!(
            missing_grant(&scopes, &granted),
            Some(("app".into(), "push".into()))
        );
        assert_eq!(
            missing_grant(&[repository_scope("app", &["pull"])], &granted),
            None
        );
    }

    #[test]
    fn service_message_reads_acr_errors_and_blanks_secrets() {
        let secret = Secret::new("tok123");
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad token tok123"}]}"#;
        assert_eq!(
            service_message(body, &[&secret]),
            "UNAUTHORIZED: bad token <redacted>"
        );
        assert_eq!(
            service_message(
                r#"{"error":"invalid_grant","error_description":"expired"}"#,
                &[]
            ),
            "expired"
        );
        assert_eq!(service_message("", &[]), "no details given");
    }

    #[test]
    fn access_token_without_expiry_never_counts_as_expiring() {
        let token = AccessToken {
            token: Secret::new("opaque"),
            expires_at: None,
        };
        assert!(!token.expires_within(Duration::from_secs(3600)));
        let soon = AccessToken {
            token: Secret::new("x"),
            expires_at: Some(SystemTime::now() + Duration::from_secs(30)),
        };
        assert!(soon.expires_within(Duration::from_secs(60)));
    }
}
