//! Reads the claims of a JWT without verifying it: we only need `exp`, `tid` and `access` of tokens
//! we were just handed over TLS, to refresh before expiry, name the tenant and spot missing grants.

use base64::Engine;
use serde::Deserialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The claims spin-aks looks at. Unknown claims are ignored; all are optional.
#[derive(Debug, Default, Deserialize)]
pub struct Claims {
    /// Expiry, seconds since the Unix epoch.
    pub exp: Option<u64>,
    /// Entra tenant id (in Entra tokens).
    pub tid: Option<String>,
    /// Issuer and subject (of a CI system's OIDC token: what a federated credential must match).
    pub iss: Option<String>,
    pub sub: Option<String>,
    /// Audience: one string or a list.
    pub aud: Option<serde_json::Value>,
    /// Granted registry access (in registry access tokens).
    #[serde(default)]
    pub access: Vec<AccessClaim>,
}

/// One `access` entry of a registry token (ACR spells the keys in either case).
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct AccessClaim {
    #[serde(alias = "Type")]
    pub r#type: String,
    #[serde(alias = "Name")]
    pub name: String,
    #[serde(default, alias = "Actions")]
    pub actions: Vec<String>,
}

impl Claims {
    /// The audience as one string (a list joined with `, `).
    pub fn audience(&self) -> Option<String> {
        match self.aud.as_ref()? {
            serde_json::Value::String(one) => Some(one.clone()),
            serde_json::Value::Array(many) => Some(
                many.iter()
                    .filter_map(serde_json::Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            _ => None,
        }
    }
}

/// The claims of `token`, or `None` when it is not a JWT (opaque tokens are legal).
pub fn claims(token: &str) -> Option<Claims> {
    let mut parts = token.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    parts.next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// When `token` expires, if it is a JWT with an `exp` claim.
pub fn expiry(token: &str) -> Option<SystemTime> {
    claims(token)?
        .exp
        .map(|exp| UNIX_EPOCH + Duration::from_secs(exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.c2ln", b64(r#"{"alg":"ES256"}"#), b64(payload))
    }

    #[test]
    fn expiry_reads_exp_as_unix_seconds() {
        let token = jwt(r#"{"exp":1700000000,"iss":"x"}"#);
        assert_eq!(
            expiry(&token),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
    }

    #[test]
    fn opaque_or_malformed_tokens_have_no_expiry() {
        assert_eq!(expiry("not-a-jwt"), None);
        assert_eq!(expiry("a.b"), None);
        assert_eq!(expiry("a.!!!.c"), None);
        assert_eq!(expiry(&jwt(r#"{"iss":"x"}"#)), None);
    }

    #[test]
    fn access_claims_accept_acr_capitalised_keys() {
        let token =
            jwt(r#"{"tid":"t1","access":[{"Type":"repository","Name":"app","Actions":["pull"]}]}"#);
        let claims = claims(&token).unwrap();
        assert_eq!(claims.tid.as_deref(), Some("t1"));
        assert_eq!(
            claims.access,
            vec![AccessClaim {
                r#type: "repository".into(),
                name: "app".into(),
                actions: vec!["pull".into()]
            }]
        );
    }
}
