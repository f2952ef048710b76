//! The Key Vault data plane (api-version 7.4): write a secret as a new version and list secret names
//! (`secrets`), read a certificate and its backing secret and sign a digest with its key (`--sign`);
//! refusals explained with the role the identity lacks.

use std::fmt;

use base64::Engine as _;
use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::rest::{self, Call, ErrorBody, Repeat, Rest, ServiceError};
use super::vault::Vault;
use crate::bad_input;
use crate::secret::Secret;

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
pub enum VaultAccess {
    SetSecret,
    ListSecrets,
    /// `GET certificates/{name}[/{version}]`.
    ReadCertificate,
    /// `GET {sid}`: the certificate's backing secret (its chain).
    ReadCertificateChain,
    /// `POST keys/{name}/{version}/sign`.
    Sign,
}

impl VaultAccess {
    fn doing(self) -> &'static str {
        match self {
            VaultAccess::SetSecret => "set secrets",
            VaultAccess::ListSecrets => "list secrets",
            VaultAccess::ReadCertificate => "read certificates",
            VaultAccess::ReadCertificateChain => "read a certificate's chain (its backing secret; --sign-cert can give the chain instead)",
            VaultAccess::Sign => "sign with keys (Microsoft.KeyVault/vaults/keys/sign/action)",
        }
    }

    fn roles(self) -> &'static str {
        match self {
            VaultAccess::SetSecret => "Key Vault Secrets Officer role (b86a8fe4-44ce-4948-aee5-eccb2c155cd7)",
            VaultAccess::ListSecrets => "Key Vault Secrets User role (4633458b-17de-408a-b874-0445c86b69e6) or Key Vault Secrets Officer (b86a8fe4-44ce-4948-aee5-eccb2c155cd7)",
            VaultAccess::ReadCertificate | VaultAccess::ReadCertificateChain => "Key Vault Certificate User role (db79e9a7-68ee-4b58-9aeb-b90e7c24fcba)",
            VaultAccess::Sign => "Key Vault Crypto User role (12338af0-0e69-4776-bea7-57ae8d297424)",
        }
    }

    /// The access-policy permission that allows it, with its kind.
    fn permission(self) -> &'static str {
        match self {
            VaultAccess::SetSecret => "secret Set",
            VaultAccess::ListSecrets => "secret List",
            VaultAccess::ReadCertificate => "certificate Get",
            VaultAccess::ReadCertificateChain => "secret Get",
            VaultAccess::Sign => "key Sign",
        }
    }

    /// What a 404 means, for the accesses whose objects the user named.
    fn missing(self) -> Option<&'static str> {
        match self {
            VaultAccess::SetSecret | VaultAccess::ListSecrets => None,
            VaultAccess::ReadCertificate => Some("no certificate of that name (or version): --sign takes https://<vault>.vault.azure.net/keys/<name>[/<version>], where <name> is a Key Vault certificate's (its key signs, its certificate is the signing certificate); check the name and version, or create or import the certificate"),
            VaultAccess::ReadCertificateChain => Some("no backing secret for the certificate; give the chain with --sign-cert"),
            VaultAccess::Sign => Some("no key of that name and version to sign with; check the key URL"),
        }
    }
}

/// A certificate as `GET certificates/{name}[/{version}]` returns it (api-version 7.4
/// `CertificateBundle`): the leaf, and the ids of its key and backing secret.
#[derive(Clone, Debug)]
pub struct CertificateBundle {
    /// The leaf certificate, DER (`cer`).
    pub cer: Vec<u8>,
    /// The key of this certificate version, `…/keys/{name}/{version}` (`kid`).
    pub kid: String,
    /// The backing secret of this certificate version, `…/secrets/{name}/{version}` (`sid`).
    pub sid: String,
}

/// A secret's value and content type (`application/x-pem-file`, `application/x-pkcs12`…).
pub struct SecretValue {
    pub value: Secret,
    pub content_type: Option<String>,
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
            .call(Method::PUT, &url, Some(&body), VaultAccess::SetSecret)
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
                .call(Method::GET, &url, None, VaultAccess::ListSecrets)
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

    /// The certificate `name` (its newest version, or `version`).
    pub async fn certificate(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> anyhow::Result<CertificateBundle> {
        #[derive(Deserialize)]
        struct Bundle {
            cer: String,
            kid: String,
            sid: String,
        }
        let path = match version {
            Some(version) => format!("{name}/{version}"),
            None => name.to_string(),
        };
        let url = format!(
            "{}certificates/{path}?api-version={API_VERSION}",
            self.vault.url
        );
        let reply = self
            .call(Method::GET, &url, None, VaultAccess::ReadCertificate)
            .await?;
        let bundle: Bundle = reply.json("the certificate read")?;
        let cer = base64::engine::general_purpose::STANDARD
            .decode(bundle.cer.as_bytes())
            .map_err(|_| anyhow::anyhow!("Key Vault answered the certificate read of `{path}` with a `cer` that is not base64"))?;
        Ok(CertificateBundle {
            cer,
            kid: bundle.kid,
            sid: bundle.sid,
        })
    }

    /// The secret at `id` (an id Key Vault handed back, such as a certificate's `sid`; it must
    /// lie in this vault). Its value never reaches a message.
    pub async fn secret_at(&self, id: &str) -> anyhow::Result<SecretValue> {
        rest::same_origin(&self.vault.url, id)?;
        let url = format!("{id}?api-version={API_VERSION}");
        let reply = self
            .call(Method::GET, &url, None, VaultAccess::ReadCertificateChain)
            .await?;
        let body: serde_json::Value = serde_json::from_str(&reply.body).map_err(|_| {
            anyhow::anyhow!(
                "Key Vault answered the read of {} with a body that is not JSON",
                rest::strip(id)
            )
        })?;
        let value = body["value"].as_str().ok_or_else(|| {
            anyhow::anyhow!(
                "Key Vault answered the read of {} without a value",
                rest::strip(id)
            )
        })?;
        Ok(SecretValue {
            value: Secret::new(value),
            content_type: body["contentType"].as_str().map(str::to_string),
        })
    }

    /// Key Vault's `sign` operation: `digest` signed by the key `kid` (an id Key Vault handed
    /// back, in this vault) with the JWS algorithm `alg`; returns the signature's bytes.
    pub async fn sign(&self, kid: &str, alg: &str, digest: &[u8]) -> anyhow::Result<Vec<u8>> {
        #[derive(Deserialize)]
        struct Signed {
            value: String,
        }
        rest::same_origin(&self.vault.url, kid)?;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let url = format!("{kid}/sign?api-version={API_VERSION}");
        let body = json!({ "alg": alg, "value": b64.encode(digest) });
        let reply = self
            .call(Method::POST, &url, Some(&body), VaultAccess::Sign)
            .await?;
        let signed: Signed = reply.json("the sign operation")?;
        b64.decode(signed.value.trim_end_matches('=')).map_err(|_| {
            anyhow::anyhow!(
                "Key Vault answered the sign operation with a value that is not base64url"
            )
        })
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
        access: VaultAccess,
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
    fn explain(&self, err: anyhow::Error, access: VaultAccess) -> anyhow::Error {
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
                "the signed-in identity may not {} in Key Vault {name}; give it the {} on the vault (role assignment scope /subscriptions/<subscription>/resourceGroups/<group>/providers/Microsoft.KeyVault/vaults/{name}), or a policy with the {} permission if the vault uses access policies (Key Vault said {refusal})",
                access.doing(),
                access.roles(),
                access.permission()
            ),
            (404, _) if access.missing().is_some() => {
                let what = access.missing().unwrap_or_default();
                return bad_input!("Key Vault {name} has {what} ({refusal})");
            }
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
