//! A fake Azure Container Registry for tests: a token service in ACR's shape (`/oauth2/exchange`,
//! `/oauth2/token`) in front of the real `docker-registry` in token-auth mode, plus fake Entra sources.
//!
//! The front listens on `127.0.0.1:<port>`, which is also the registry's `service` name, so clients use
//! it as the login server. It mints ES256 JWTs signed by a self-signed P-256 certificate that the
//! registry trusts (CONTRIBUTING.md, Fakes), forwards `/v2/…` to the registry, and serves a fake managed identity
//! endpoint at `/msi/token` (App Service shape). Entra tokens are JWT-looking strings minted by
//! [`AcrFake::entra_token`]; only those are accepted by the exchange.

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::registry::{Registry, RegistryConfig};

/// The user name ACR pairs with a refresh token used as a password.
pub const ACR_USERNAME: &str = "00000000-0000-0000-0000-000000000000";
/// The tenant the fake registry belongs to.
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The secret the fake managed identity endpoint expects in `X-IDENTITY-HEADER`.
pub const IDENTITY_HEADER: &str = "fake-identity-header-secret";
const ISSUER: &str = "acr-fake-token-service";

/// What the fake refuses or shortens; change it any time through [`AcrFake::policy`].
#[derive(Debug, Clone)]
pub struct Policy {
    /// Repositories for which `push` is never granted (the token comes back with `pull` only).
    pub deny_push: HashSet<String>,
    /// Lifetime of the access tokens minted by `/oauth2/token`.
    pub access_token_ttl: Duration,
    /// The Entra token the fake managed identity endpoint hands out.
    pub managed_identity_token: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            deny_push: HashSet::new(),
            access_token_ttl: Duration::from_secs(3600),
            managed_identity_token: None,
        }
    }
}

struct Signer {
    key: EcdsaKeyPair,
    cert_der_b64: String,
}

struct State {
    service: String,
    registry: String,
    signer: Signer,
    policy: Mutex<Policy>,
    /// Entra tokens minted by the test → their claims.
    entra_tokens: Mutex<HashMap<String, Value>>,
    /// Refresh tokens issued by the exchange.
    refresh_tokens: Mutex<HashSet<String>>,
    counter: AtomicU64,
    http: reqwest::Client,
    /// Every request's method and path, in order of arrival.
    requests: Mutex<Vec<(String, String)>>,
}

/// A running fake ACR. Dropping it stops the registry.
pub struct AcrFake {
    /// `127.0.0.1:<port>`: the login server, the registry's service name and the token realm's host.
    pub login_server: String,
    state: Arc<State>,
    registry: Registry,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl AcrFake {
    /// Starts the registry in token-auth mode and the token service in front of it, or `None` when
    /// the registry is not installed (outside CI).
    pub async fn start() -> Option<AcrFake> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let service = listener.local_addr().unwrap().to_string();

        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec![ISSUER.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let signer = Signer {
            key: EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &key.serialize_der(),
                &ring::rand::SystemRandom::new(),
            )
            .unwrap(),
            cert_der_b64: base64::engine::general_purpose::STANDARD.encode(cert.der()),
        };
        let registry = Registry::start(
            RegistryConfig::open()
                .public_url(format!("http://{service}"))
                .file("token-signer.pem", cert.pem())
                .auth(format!(
                    "  token:\n    realm: http://{service}/oauth2/token\n    service: {service}\n    issuer: {ISSUER}\n    rootcertbundle: {{dir}}/token-signer.pem\n"
                )),
        )?;

        let state = Arc::new(State {
            service: service.clone(),
            registry: registry.host(),
            signer,
            policy: Mutex::new(Policy::default()),
            entra_tokens: Mutex::new(HashMap::new()),
            refresh_tokens: Mutex::new(HashSet::new()),
            counter: AtomicU64::new(0),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .unwrap(),
            requests: Mutex::default(),
        });
        let serving = state.clone();
        super::serve_http(listener, move |req| route(serving.clone(), req));
        Some(AcrFake {
            login_server: service,
            state,
            registry,
        })
    }

    /// The requests (method, path) served since the last call.
    pub fn take_requests(&self) -> Vec<(String, String)> {
        std::mem::take(&mut self.state.requests.lock().unwrap())
    }

    /// Changes what the fake grants from now on.
    pub fn policy(&self, change: impl FnOnce(&mut Policy)) {
        change(&mut self.state.policy.lock().unwrap());
    }

    /// A JWT-looking Entra token for `tenant`, valid for `ttl_secs` (negative: already expired),
    /// that the exchange will recognise.
    pub fn entra_token(&self, tenant: &str, ttl_secs: i64) -> String {
        let n = self.state.counter.fetch_add(1, Ordering::Relaxed);
        let exp = now() as i64 + ttl_secs;
        let claims = json!({
            "aud": "https://containerregistry.azure.net",
            "iss": format!("https://sts.windows.net/{tenant}/"),
            "tid": tenant,
            "oid": "11111111-2222-3333-4444-555555555555",
            "iat": now(),
            "exp": exp,
            "uti": format!("entra-{n}"),
        });
        let token = format!(
            "{}.{}.{}",
            b64url(br#"{"typ":"JWT","alg":"RS256","kid":"fake"}"#),
            b64url(claims.to_string().as_bytes()),
            b64url(format!("not-a-real-signature-{n}").as_bytes())
        );
        self.state
            .entra_tokens
            .lock()
            .unwrap()
            .insert(token.clone(), claims);
        token
    }

    /// The fake managed identity endpoint (`IDENTITY_ENDPOINT`).
    pub fn identity_endpoint(&self) -> String {
        format!("http://{}/msi/token", self.login_server)
    }

    /// A scratch directory that lives as long as the fake.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let path = self.registry.dir().join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    }
}

/// Writes an `az` that answers `az account get-access-token --output json` like the real one
/// (az 2.54+ shape) with `access_token`, and records its arguments in `<dir>/az.args`.
pub fn write_fake_az(dir: &Path, access_token: &str, tenant: &str) {
    let expires_on = now() + 3600;
    let body = json!({
        "accessToken": access_token,
        "expiresOn": "2099-01-01 00:00:00.000000",
        "expires_on": expires_on,
        "subscription": "00000000-1111-2222-3333-444444444444",
        "tenant": tenant,
        "tokenType": "Bearer",
    });
    let script = format!(
        "#!/bin/sh\necho \"$@\" > '{args}'\nprintf '%s\\n' '{body}'\n",
        args = dir.join("az.args").display()
    );
    let path = dir.join("az");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

type Reply = Response<Full<Bytes>>;

async fn route(state: Arc<State>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    state
        .requests
        .lock()
        .unwrap()
        .push((method.to_string(), path.clone()));
    match (method.as_str(), path.as_str()) {
        ("POST", "/oauth2/exchange") => exchange(&state, form(req).await),
        ("POST", "/oauth2/token") => refresh_grant(&state, form(req).await),
        ("GET", "/oauth2/token") => docker_token(&state, &req),
        ("GET", "/msi/token") => managed_identity(&state, &req),
        _ if path.starts_with("/v2") => forward(&state, req).await,
        _ => reply(
            StatusCode::NOT_FOUND,
            json!({"errors":[{"code":"NOT_FOUND"}]}),
        ),
    }
}

fn reply(status: StatusCode, body: Value) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn acr_error(status: StatusCode, code: &str, message: &str) -> Reply {
    reply(
        status,
        json!({"errors":[{"code": code, "message": message}]}),
    )
}

/// Form fields, repeated keys kept (several `scope=`).
async fn form(req: Request<Incoming>) -> Vec<(String, String)> {
    let body = req.into_body().collect().await.unwrap().to_bytes();
    url::form_urlencoded::parse(&body).into_owned().collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn query(req: &Request<Incoming>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// `POST /oauth2/exchange`: checks the Entra token as ACR would (known, unexpired, right tenant).
fn exchange(state: &State, form: Vec<(String, String)>) -> Reply {
    if field(&form, "grant_type") != Some("access_token") {
        return acr_error(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED",
            "grant_type must be access_token",
        );
    }
    if field(&form, "service") != Some(state.service.as_str()) {
        return acr_error(
            StatusCode::BAD_REQUEST,
            "UNKNOWN_SERVICE",
            "unknown service",
        );
    }
    let token = field(&form, "access_token").unwrap_or_default();
    let claims = state.entra_tokens.lock().unwrap().get(token).cloned();
    let Some(claims) = claims else {
        return acr_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "The access token is invalid or could not be validated.",
        );
    };
    if claims["exp"].as_i64().unwrap() <= now() as i64 {
        return acr_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "The access token has expired. Acquire a new one and try again.",
        );
    }
    let tenant = claims["tid"].as_str().unwrap_or_default();
    if tenant != TENANT || field(&form, "tenant").is_some_and(|t| t != TENANT) {
        return acr_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            &format!("The access token was issued by tenant {tenant}, not the registry's tenant."),
        );
    }
    let refresh = state.mint(json!({
        "sub": claims["oid"],
        "tenant": tenant,
        "grant_type": "refresh_token",
        "exp": now() + 3 * 3600,
    }));
    state.refresh_tokens.lock().unwrap().insert(refresh.clone());
    reply(StatusCode::OK, json!({ "refresh_token": refresh }))
}

/// `POST /oauth2/token` with `grant_type=refresh_token`, as ACR serves it.
fn refresh_grant(state: &State, form: Vec<(String, String)>) -> Reply {
    if field(&form, "grant_type") != Some("refresh_token") {
        return acr_error(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED",
            "grant_type must be refresh_token",
        );
    }
    let refresh = field(&form, "refresh_token").unwrap_or_default();
    if !state.refresh_tokens.lock().unwrap().contains(refresh) {
        return acr_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "invalid refresh token",
        );
    }
    let scopes: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str())
        .collect();
    let token = state.access_token(&scopes);
    reply(StatusCode::OK, json!({ "access_token": token }))
}

/// Docker-style `GET /oauth2/token?service&scope` with basic auth `<ACR_USERNAME>:<refresh token>`.
fn docker_token(state: &State, req: &Request<Incoming>) -> Reply {
    let password = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            let (user, password) = pair.split_once(':')?;
            (user == ACR_USERNAME).then(|| password.to_string())
        });
    let known = password.is_some_and(|p| state.refresh_tokens.lock().unwrap().contains(&p));
    if !known {
        return acr_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
        );
    }
    let query = query(req);
    let scopes: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str())
        .collect();
    let token = state.access_token(&scopes);
    reply(
        StatusCode::OK,
        json!({ "token": token, "access_token": token }),
    )
}

/// App Service managed identity (api-version 2019-08-01): `GET ?api-version&resource` with header
/// `X-IDENTITY-HEADER`, answered `{"access_token","expires_on":"<epoch>","resource","token_type"}`.
fn managed_identity(state: &State, req: &Request<Incoming>) -> Reply {
    let query = query(req);
    let header_ok = req
        .headers()
        .get("x-identity-header")
        .is_some_and(|v| v == IDENTITY_HEADER);
    if !header_ok || field(&query, "api-version") != Some("2019-08-01") {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"statusCode":400,"message":"missing X-IDENTITY-HEADER or unsupported api-version"}),
        );
    }
    let resource = field(&query, "resource").unwrap_or_default().to_string();
    let Some(token) = state.policy.lock().unwrap().managed_identity_token.clone() else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"statusCode":400,"message":"No managed identity assigned"}),
        );
    };
    reply(
        StatusCode::OK,
        json!({
            "access_token": token,
            "expires_on": (now() + 3600).to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": "99999999-8888-7777-6666-555555555555",
        }),
    )
}

/// Forwards a `/v2/…` request to the registry, keeping `Host` and repeated headers.
async fn forward(state: &State, req: Request<Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut outgoing = state.http.request(
        parts.method.clone(),
        format!("http://{}{path}", state.registry),
    );
    for (name, value) in &parts.headers {
        if !matches!(
            name.as_str(),
            "connection" | "transfer-encoding" | "content-length"
        ) {
            outgoing = outgoing.header(name, value);
        }
    }
    let upstream = match outgoing.body(body).send().await {
        Ok(upstream) => upstream,
        Err(err) => return reply(StatusCode::BAD_GATEWAY, json!({"error": err.to_string()})),
    };
    let mut response = Response::builder().status(upstream.status());
    for (name, value) in upstream.headers() {
        if !matches!(name.as_str(), "connection" | "transfer-encoding") {
            response = response.header(name, value);
        }
    }
    let bytes = upstream.bytes().await.unwrap_or_default();
    response.body(Full::new(bytes)).unwrap()
}

impl State {
    /// A compact ES256 JWS the registry trusts: x5c header, raw r‖s signature.
    fn mint(&self, extra: Value) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let header = json!({"typ":"JWT","alg":"ES256","x5c":[self.signer.cert_der_b64]});
        let mut claims = json!({
            "iss": ISSUER,
            "sub": "11111111-2222-3333-4444-555555555555",
            "aud": self.service,
            "nbf": now() - 5,
            "iat": now(),
            "jti": format!("jti-{n}"),
        });
        for (key, value) in extra.as_object().unwrap() {
            claims[key] = value.clone();
        }
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signature = self
            .signer
            .key
            .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64url(signature.as_ref()))
    }

    /// An access token granting the asked scopes, less what the policy denies.
    fn access_token(&self, scopes: &[&str]) -> String {
        let policy = self.policy.lock().unwrap().clone();
        let access: Vec<Value> = scopes
            .iter()
            .filter_map(|scope| {
                let rest = scope.strip_prefix("repository:")?;
                let (name, actions) = rest.rsplit_once(':')?;
                let actions: Vec<&str> = actions
                    .split(',')
                    .filter(|a| !(*a == "push" && policy.deny_push.contains(name)))
                    .collect();
                Some(json!({"type":"repository","name":name,"actions":actions}))
            })
            .collect();
        self.mint(json!({
            "exp": now() + policy.access_token_ttl.as_secs(),
            "access": access,
        }))
    }
}
