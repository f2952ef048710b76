//! Registry authentication: choosing the credential (`--auth`), parsing `WWW-Authenticate`
//! challenges, and the bearer-token flow with a per-scope cache refreshed before tokens expire.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::credential::{Challenge, Credential, Secret, SourcedCredential};
use super::{docker_config, host};
use crate::azure::acr;
use crate::azure::credential::AzureCredential;
use crate::retry::{self, Attempt, RetryPolicy};

/// Where `push` takes registry credentials from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// Azure for `*.azurecr.io`/`.cn`/`.us`, the Docker config for other registries
    #[default]
    Auto,
    /// Entra credentials exchanged for an ACR refresh token
    Azure,
    /// The Docker config: `auths`, `credHelpers`, `credsStore`
    Docker,
    /// No credentials
    Anonymous,
}

/// The credential `mode` selects for `registry`.
pub async fn resolve_credential(
    mode: AuthMode,
    registry: &str,
    http: &reqwest::Client,
) -> anyhow::Result<SourcedCredential> {
    match mode {
        AuthMode::Azure => azure_credential(registry, http).await,
        AuthMode::Auto if host::is_acr(registry) => {
            match azure_credential(registry, http).await {
                Ok(credential) => Ok(credential),
                // Without an Azure sign-in, a `docker login` to the registry (admin user, token) still works.
                Err(azure) => match docker_config::lookup(registry)? {
                    found if found.credential != Credential::Anonymous => Ok(found),
                    _ => Err(azure),
                },
            }
        }
        AuthMode::Auto | AuthMode::Docker => docker_config::lookup(registry),
        AuthMode::Anonymous => Ok(SourcedCredential::anonymous()),
    }
}

/// The seam to the Azure module: signs in with the Entra credential chain and exchanges the
/// token for an ACR refresh token, used as an identity token with ACR's fixed username.
pub async fn azure_credential(
    login_server: &str,
    http: &reqwest::Client,
) -> anyhow::Result<SourcedCredential> {
    let entra = AzureCredential::from_env();
    let token = acr::acr_refresh_token(http, login_server, &entra)
        .await
        .map_err(|e| anyhow::anyhow!("authentication to {login_server} failed: {e:#}"))?;
    Ok(SourcedCredential {
        credential: Credential::IdentityToken {
            username: acr::ACR_USERNAME.to_string(),
            token,
        },
        source: "the Azure sign-in (ACR refresh token)".to_string(),
        // ACR's token service is at the login server, as the exchange just was (docs/cluster.md).
        challenge: Some(Challenge::Bearer {
            realm: format!("{}/oauth2/token", acr::registry_base_url(login_server)),
            service: Some(login_server.to_string()),
            scope: None,
        }),
    })
}

/// Parses the first `Basic` or `Bearer` challenge of a `WWW-Authenticate` header value.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    } else {
        None
    }
}

/// `key="quoted, value", key=token` pairs; quoted strings may hold commas and `\"`.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return params;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                value.push(c);
            }
        }
        params.push((key.trim().to_string(), value.trim().to_string()));
    }
}

/// Why authentication did not work; the client turns these into user-facing errors.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The registry or its token service refused the credential itself.
    #[error("the registry refused {source_name}")]
    Refused { source_name: String },
}

#[derive(Clone)]
struct Token {
    value: Secret,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenReply {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Authorization for one registry: the credential, the challenge it answered, cached tokens.
pub struct Authenticator {
    http: reqwest::Client,
    credential: SourcedCredential,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, Token>>,
    retry: RetryPolicy,
}

impl Authenticator {
    pub fn new(http: reqwest::Client, credential: SourcedCredential, retry: RetryPolicy) -> Self {
        Authenticator {
            http,
            challenge: Mutex::new(credential.challenge.clone()),
            credential,
            tokens: Mutex::new(HashMap::new()),
            retry,
        }
    }

    pub fn credential_source(&self) -> &str {
        &self.credential.source
    }

    pub fn is_anonymous(&self) -> bool {
        self.credential.credential == Credential::Anonymous
    }

    /// Records the challenge of a 401 answer and drops the cached token for `scopes`, so the
    /// next [`Self::authorization`] fetches a fresh one. False when the answer had no usable challenge.
    pub async fn challenged(&self, header: Option<&str>, scopes: &[String]) -> bool {
        let Some(challenge) = header.and_then(parse_challenge) else {
            return false;
        };
        *self.challenge.lock().await = Some(challenge);
        self.tokens.lock().await.remove(&scopes.join(" "));
        true
    }

    /// The `Authorization` header for a request needing `scopes`, or `None` before any challenge.
    pub async fn authorization(&self, scopes: &[String]) -> anyhow::Result<Option<HeaderValue>> {
        let challenge = self.challenge.lock().await.clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.basic_header()),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let key = scopes.join(" ");
                let mut tokens = self.tokens.lock().await;
                if let Some(token) = tokens.get(&key).filter(|t| t.refresh_at > Instant::now()) {
                    return Ok(Some(bearer(&token.value)?));
                }
                let token = self.fetch_token(&realm, service.as_deref(), scopes).await?;
                let header = bearer(&token.value)?;
                tokens.insert(key, token);
                Ok(Some(header))
            }
        }
    }

    fn basic_header(&self) -> Option<HeaderValue> {
        let (user, secret) = match &self.credential.credential {
            Credential::Anonymous => return None,
            Credential::Basic { username, password } => (username, password),
            Credential::IdentityToken { username, token } => (username, token),
        };
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", secret.expose()));
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// Fetches a token at `realm`: a refresh-token grant for identity tokens (OAuth2 POST), else
    /// the Docker token GET with basic auth (or none, for anonymous pulls).
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> anyhow::Result<Token> {
        let reply = retry::run(&self.retry, |_| async {
            let mut query: Vec<(&str, &str)> = Vec::new();
            if let Some(service) = service {
                query.push(("service", service));
            }
            query.extend(scopes.iter().map(|s| ("scope", s.as_str())));
            let request = match &self.credential.credential {
                Credential::IdentityToken { token, .. } => {
                    query.push(("grant_type", "refresh_token"));
                    query.push(("refresh_token", token.expose()));
                    query.push(("client_id", "spin-aks"));
                    self.http.post(realm).form(&query)
                }
                _ => {
                    let request = self.http.get(realm).query(&query);
                    match self.basic_header() {
                        Some(header) => request.header(reqwest::header::AUTHORIZATION, header),
                        None => request,
                    }
                }
            };
            let response = request.send().await.map_err(|e| {
                let err = anyhow::Error::new(e)
                    .context(format!("cannot reach the token service {realm}"));
                Attempt::Transient(err, None)
            })?;
            let status = response.status();
            if status == reqwest::StatusCode::UNAUTHORIZED
                || status == reqwest::StatusCode::FORBIDDEN
            {
                return Err(Attempt::Final(
                    AuthError::Refused {
                        source_name: self.credential.source.clone(),
                    }
                    .into(),
                ));
            }
            if retry::is_transient_status(status) {
                return Err(Attempt::Transient(
                    anyhow::anyhow!("the token service {realm} answered {status}"),
                    self.retry.asked(response.headers()),
                ));
            }
            if !status.is_success() {
                return Err(Attempt::Final(anyhow::anyhow!(
                    "the token service {realm} answered {status}"
                )));
            }
            response.json::<TokenReply>().await.map_err(|e| {
                Attempt::Transient(
                    anyhow::Error::new(e).context(format!(
                        "the token service {realm} sent an unreadable reply"
                    )),
                    None,
                )
            })
        })
        .await?;
        let value = reply
            .access_token
            .or(reply.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| anyhow::anyhow!("the token service {realm} answered without a token"))?;
        let lifetime = reply
            .expires_in
            .map(Duration::from_secs)
            .or_else(|| jwt_lifetime(&value))
            .unwrap_or(Duration::from_secs(60));
        // Refresh early so a token never expires between being attached and being checked.
        let margin = (lifetime / 2).min(Duration::from_secs(30));
        Ok(Token {
            value: Secret::new(value),
            refresh_at: Instant::now() + lifetime - margin,
        })
    }
}

fn bearer(token: &Secret) -> anyhow::Result<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
        anyhow::anyhow!("the token service returned a token that is not a valid header value")
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// The time left until a JWT's `exp` claim (ACR tokens carry no `expires_in`).
fn jwt_lifetime(token: &str) -> Option<Duration> {
    #[derive(Deserialize)]
    struct Claims {
        exp: u64,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(claims.exp.saturating_sub(now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_with_quoted_commas_parses() {
        let header = r#"Bearer realm="https://acr.example/oauth2/token",service="acr.example",scope="repository:a/b:pull,push""#;
        assert_eq!(
            parse_challenge(header),
            Some(Challenge::Bearer {
                realm: "https://acr.example/oauth2/token".into(),
                service: Some("acr.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
    }

    #[test]
    fn challenge_scheme_and_keys_are_case_insensitive_and_tokens_unquoted() {
        assert_eq!(
            parse_challenge(r#"bearer Realm=https://r.example/token, Service = "svc""#),
            Some(Challenge::Bearer {
                realm: "https://r.example/token".into(),
                service: Some("svc".into()),
                scope: None,
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
    }

    #[test]
    fn unusable_challenges_are_none() {
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge(r#"Bearer service="no realm""#), None);
        assert_eq!(parse_challenge(""), None);
    }

    #[test]
    fn escaped_quotes_inside_values_are_kept() {
        let params = parse_params(r#"realm="a\"b",x=1"#);
        assert_eq!(
            params,
            vec![("realm".into(), "a\"b".into()), ("x".into(), "1".into())]
        );
    }

    /// A one-request-per-connection token service that answers `{"token":"t<n>","expires_in":1}`
    /// and hands back the raw text of every request it got.
    async fn token_service() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((mut stream, _)) = listener.accept().await {
                n += 1;
                let mut request = String::new();
                let mut buf = vec![0u8; 8192];
                while !complete(&request) {
                    let len = stream.read(&mut buf).await.unwrap();
                    request.push_str(&String::from_utf8_lossy(&buf[..len]));
                }
                sender.send(request).unwrap();
                let body = format!(r#"{{"token":"t{n}","expires_in":1}}"#);
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        (realm, receiver)
    }

    /// True once the head and as many body bytes as `Content-Length` says have arrived.
    fn complete(request: &str) -> bool {
        let Some((head, body)) = request.split_once("\r\n\r\n") else {
            return false;
        };
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        body.len() >= length
    }

    async fn authenticator(credential: Credential, realm: &str) -> Authenticator {
        let auth = Authenticator::new(
            reqwest::Client::new(),
            SourcedCredential {
                credential,
                source: "test".into(),
                challenge: None,
            },
            RetryPolicy::default(),
        );
        let header = format!(r#"Bearer realm="{realm}",service="reg.example""#);
        assert!(auth.challenged(Some(&header), &[]).await);
        auth
    }

    #[tokio::test]
    async fn tokens_are_cached_per_scope_and_fetched_again_once_they_near_expiry() {
        let (realm, mut requests) = token_service().await;
        let auth = authenticator(
            Credential::Basic {
                username: "u".into(),
                password: Secret::new("p"),
            },
            &realm,
        )
        .await;
        let push = vec!["repository:a:pull,push".to_string()];
        let pull = vec!["repository:b:pull".to_string()];
        let header = |v: Option<HeaderValue>| v.unwrap().to_str().unwrap().to_string();
        assert_eq!(
            header(auth.authorization(&push).await.unwrap()),
            "Bearer t1"
        );
        assert_eq!(
            header(auth.authorization(&push).await.unwrap()),
            "Bearer t1"
        );
        assert_eq!(
            header(auth.authorization(&pull).await.unwrap()),
            "Bearer t2"
        );
        // expires_in 1 s: refreshed half a second before it runs out.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            header(auth.authorization(&push).await.unwrap()),
            "Bearer t3"
        );

        let first = requests.recv().await.unwrap();
        assert!(
            first.starts_with("GET /token?service=reg.example&scope=repository%3Aa%3Apull%2Cpush "),
            "{first}"
        );
        assert!(
            first
                .to_ascii_lowercase()
                .contains("authorization: basic dtpw"),
            "{first}"
        );
    }

    #[tokio::test]
    async fn identity_tokens_use_the_oauth2_refresh_token_grant() {
        let (realm, mut requests) = token_service().await;
        let auth = authenticator(
            Credential::IdentityToken {
                username: "00000000-0000-0000-0000-000000000000".into(),
                token: Secret::new("refresh-me"),
            },
            &realm,
        )
        .await;
        let scopes = vec![
            "repository:a:pull,push".to_string(),
            "repository:b:pull".to_string(),
        ];
        auth.authorization(&scopes).await.unwrap();
        let request = requests.recv().await.unwrap();
        assert!(request.starts_with("POST /token "), "{request}");
        let body = request.split("\r\n\r\n").nth(1).unwrap();
        assert_eq!(
            body,
            "service=reg.example&scope=repository%3Aa%3Apull%2Cpush&scope=repository%3Ab%3Apull&grant_type=refresh_token&refresh_token=refresh-me&client_id=spin-aks"
        );
    }

    #[test]
    fn jwt_expiry_gives_the_remaining_lifetime() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"exp":{}}}"#, now + 600));
        let lifetime = jwt_lifetime(&format!("e30.{claims}.sig")).unwrap();
        assert!(lifetime <= Duration::from_secs(600) && lifetime >= Duration::from_secs(590));
        assert_eq!(jwt_lifetime("not-a-jwt"), None);
    }
}
