//! The Key Vault data plane (api-version 7.4) for `secrets set` and `secrets list`: write a secret
//! as a new version, list secret names; refusals explained with the role the identity lacks.

use std::fmt;

use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::rest::{self, Call, ErrorBody, Repeat, Rest, ServiceError};
use super::vault::Vault;
use super::Secret;

/// The data-plane api-version (docs/cluster.md).
const API_VERSION: &str = "7.4";

/// A refusal from Key Vault: `{"error":{"code","message","innererror":{"code"}}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVaultError {
    pub status: u16,
    pub code: String,
    /// `innererror.code`, e.g. `ForbiddenByRbac`, `ForbiddenByFirewall`.
    pub inner: Option<String>,
    pub message: String,
    /// What was asked: `PUT https://…` (no query string).
    pub request: String,
    /// The `authorization` (authority and tenant) a 401's `WWW-Authenticate` challenge names.
    pub authority: Option<String>,
}

impl fmt::Display for KeyVaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(inner) = &self.inner {
            write!(f, "/{inner}")?;
        }
        // Key Vault's messages run over several `\r\n` lines (Caller, Action, Assignment…): one line.
        let message: Vec<&str> = self
            .message
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        write!(f, ": {} [{}]", message.join(" "), self.request)
    }
}

impl std::error::Error for KeyVaultError {}

impl ServiceError for KeyVaultError {
    const SERVICE: &'static str = "Key Vault";

    fn from_reply(status: u16, headers: &HeaderMap, body: &str, request: String) -> Self {
        let ErrorBody {
            code,
            message,
            inner_code,
        } = ErrorBody::parse(status, body);
        let authority = headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|challenge| challenge_field(challenge, "authorization"));
        KeyVaultError {
            status,
            code,
            inner: inner_code,
            message,
            request,
            authority,
        }
    }

    /// A repeated PUT only writes the same value as one more version, so every call is safe.
    fn retryable(&self, _repeat: Repeat) -> bool {
        self.status == 429 || (500..600).contains(&self.status)
    }
}

/// `name="value"` out of a `WWW-Authenticate: Bearer a="…", b="…"` challenge.
fn challenge_field(challenge: &str, name: &str) -> Option<String> {
    let rest = challenge.split(&format!("{name}=\"")).nth(1)?;
    rest.split('"').next().map(str::to_string)
}

/// What a command asked of the vault, for naming the role that allows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    SetSecret,
    ListSecrets,
}

impl Access {
    fn doing(self) -> &'static str {
        match self {
            Access::SetSecret => "set secrets",
            Access::ListSecrets => "list secrets",
        }
    }

    fn roles(self) -> &'static str {
        match self {
            Access::SetSecret => "Key Vault Secrets Officer role (b86a8fe4-44ce-4948-aee5-eccb2c155cd7)",
            Access::ListSecrets => "Key Vault Secrets User role (4633458b-17de-408a-b874-0445c86b69e6) or Key Vault Secrets Officer (b86a8fe4-44ce-4948-aee5-eccb2c155cd7)",
        }
    }

    fn permission(self) -> &'static str {
        match self {
            Access::SetSecret => "Set",
            Access::ListSecrets => "List",
        }
    }
}

/// A secret as the list shows it: its name and whether it is enabled, never its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretItem {
    pub name: String,
    pub enabled: bool,
}

/// One vault's data plane, signed in through the credential chain.
pub struct KeyVault {
    rest: Rest,
    vault: Vault,
    scope: String,
}

impl KeyVault {
    pub fn from_env(vault: Vault) -> anyhow::Result<KeyVault> {
        Ok(KeyVault {
            rest: Rest::from_env()?,
            scope: vault.token_scope(),
            vault,
        })
    }

    /// Writes `value` as the newest version of secret `name`; returns that version's id.
    pub async fn set_secret(&self, name: &str, value: &Secret) -> anyhow::Result<String> {
        #[derive(Deserialize)]
        struct Written {
            id: String,
        }
        let url = format!("{}secrets/{name}?api-version={API_VERSION}", self.vault.url);
        let body = json!({ "value": value.expose() });
        let reply = self
            .call(Method::PUT, &url, Some(&body), Access::SetSecret)
            .await?;
        let written: Written = reply.json("the secret write")?;
        Ok(written
            .id
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string())
    }

    /// Every secret's name and state, following `nextLink` verbatim.
    pub async fn list_secrets(&self) -> anyhow::Result<Vec<SecretItem>> {
        #[derive(Deserialize)]
        struct Item {
            id: String,
            #[serde(default)]
            attributes: Attributes,
        }
        #[derive(Default, Deserialize)]
        struct Attributes {
            enabled: Option<bool>,
        }
        let first = format!("{}secrets?api-version={API_VERSION}", self.vault.url);
        let items: Vec<Item> = rest::collect_pages(&self.vault.url, &first, |url| async move {
            let reply = self
                .call(Method::GET, &url, None, Access::ListSecrets)
                .await?;
            reply.json("the secret list")
        })
        .await?;
        Ok(items
            .into_iter()
            .map(|item| SecretItem {
                name: item.id.rsplit('/').next().unwrap_or_default().to_string(),
                enabled: item.attributes.enabled.unwrap_or(true),
            })
            .collect())
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
        access: Access,
    ) -> anyhow::Result<rest::Reply> {
        let call = Call {
            method,
            url,
            scope: &self.scope,
            body,
            repeat: Repeat::Safe,
        };
        let result = self.rest.send::<KeyVaultError>(call).await;
        result.map_err(|err| self.explain(err, access))
    }

    /// The one sentence a refusal needs: who refused, why, and what to do.
    fn explain(&self, err: anyhow::Error, access: Access) -> anyhow::Error {
        let Vault { url, name } = &self.vault;
        let Some(refusal) = err.downcast_ref::<KeyVaultError>() else {
            return if err.chain().any(|cause| cause.is::<reqwest::Error>()) {
                let sentence = format!("could not reach Key Vault {name} at {url}; check the URL (does the vault exist?) and the network path to it");
                err.context(sentence)
            } else {
                err
            };
        };
        let sentence = match (refusal.status, refusal.inner.as_deref()) {
            (401, _) => {
                let tenant = refusal.authority.as_deref().and_then(|a| a.rsplit('/').next());
                let login = match tenant {
                    Some(tenant) => format!("`az login --tenant {tenant}`"),
                    None => "`az login`".to_string(),
                };
                format!("Key Vault {name} refused the sign-in token; sign in again with {login} or check the AZURE_* variables (Key Vault said {refusal})")
            }
            (403, Some("ForbiddenByFirewall")) => format!("Key Vault {name} does not accept requests from this network; allow this address in the vault's networking settings (Key Vault said {refusal})"),
            (403, _) => format!(
                "the signed-in identity may not {} in Key Vault {name}; give it the {} on the vault, or a policy with the secret {} permission if the vault uses access policies (Key Vault said {refusal})",
                access.doing(),
                access.roles(),
                access.permission()
            ),
            (404, _) => format!("Key Vault {url} answered 404 Not Found; check the vault URL given to --key-vault (Key Vault said {refusal})"),
            _ => return err,
        };
        err.context(sentence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(status: u16, body: &str, challenge: Option<&str>) -> KeyVaultError {
        let mut headers = HeaderMap::new();
        if let Some(challenge) = challenge {
            headers.insert(WWW_AUTHENTICATE, challenge.parse().unwrap());
        }
        KeyVaultError::from_reply(status, &headers, body, "PUT https://v/secrets/x".into())
    }

    #[test]
    fn error_bodies_keep_code_inner_code_and_message() {
        let err = refusal(
            403,
            r#"{"error":{"code":"Forbidden","message":"Caller is not authorized.\r\nAction: 'setSecret'\r\n","innererror":{"code":"ForbiddenByRbac"}}}"#,
            None,
        );
        assert_eq!(
            err.to_string(),
            "Forbidden/ForbiddenByRbac: Caller is not authorized. Action: 'setSecret' [PUT https://v/secrets/x]"
        );
        let err = refusal(502, "<html>bad gateway</html>", None);
        assert_eq!(err.code, "HTTP502");
        assert!(err.retryable(Repeat::Safe));
        assert!(!refusal(403, "", None).retryable(Repeat::Safe));
    }

    #[test]
    fn a_401_challenge_names_the_authority() {
        let err = refusal(
            401,
            r#"{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}"#,
            Some(
                r#"Bearer authorization="https://login.microsoftonline.com/72f988bf", resource="https://vault.azure.net""#,
            ),
        );
        assert_eq!(
            err.authority.as_deref(),
            Some("https://login.microsoftonline.com/72f988bf")
        );
    }
}
