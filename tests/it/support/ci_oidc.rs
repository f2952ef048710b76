//! Fake CI token issuers and the Entra that trusts them, on one loopback TLS server: GitHub's job ID-token
//! endpoint, Azure DevOps' OIDC endpoint, and Entra's token endpoint checking the federated client assertion.
//!
//! Shapes: GitHub `GET <request url>&audience=…` with `Authorization: Bearer <request token>` answers
//! `{"count":…,"value":"<jwt>"}` (without `audience` the token's `aud` is the owner's URL, as GitHub's
//! is); Azure DevOps `POST …/oidctoken?api-version=7.1&serviceConnectionId=…` with the build's bearer
//! answers `{"oidcToken":"<jwt>"}`; Entra `POST /<tenant>/oauth2/v2.0/token` wants `client_credentials`
//! with `client_assertion_type` jwt-bearer and an assertion it minted (standing for the issuer's
//! signature check) whose `iss`/`sub`/`aud` match a federated credential, else AADSTS700211/700213/
//! 700212 as Entra words them; an expired assertion gets AADSTS700024.

// The Azure DevOps shape is the Azure SDKs' AzurePipelinesCredential's: Go azidentity
// sdk/azidentity/azure_pipelines_credential.go:21-23 (api-version 7.1, SYSTEM_ACCESSTOKEN,
// SYSTEM_OIDCREQUESTURI), :97-107 (POST `<uri>?api-version=7.1&serviceConnectionId=<id>` with
// `Authorization: Bearer <SYSTEM_ACCESSTOKEN>`), :116-117 (answer `{"oidcToken": …}`), at Azure/azure-sdk-for-go
// 4fd61cce02c1; the same in Rust azure_identity 1.0.0 src/azure_pipelines_credential.rs:21, :114,
// :161-166 (`X-TFS-FedAuthRedirect: Suppress`), :204-205, and Python azure-identity
// azure/identity/_credentials/azure_pipelines.py `build_oidc_request`.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;

pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
pub const AUDIENCE: &str = "api://AzureADTokenExchange";
pub const GITHUB_REQUEST_TOKEN: &str = "ghs-request-token-0123456789abcdef";
pub const ADO_SYSTEM_TOKEN: &str = "ado-system-access-token-fedcba9876543210";
pub const SERVICE_CONNECTION: &str = "5a6b7c8d-0000-4000-8000-00000000c0c0";
pub const ADO_ISSUER: &str = "https://vstoken.dev.azure.com/0b5e1c9a-0000-4000-8000-000000000001";

/// What Entra trusts for one client: the federated credential's issuer, subject and audience.
#[derive(Clone, Debug)]
pub struct Trust {
    pub tenant: String,
    pub client_id: String,
    pub issuer: String,
    pub subject: String,
}

/// The subjects the issuers put in their tokens, changeable during a test.
#[derive(Clone, Debug)]
pub struct Jobs {
    /// `repo:<owner>/<repo>:ref:refs/heads/<branch>` and the like.
    pub github_subject: String,
    /// `sc://<org>/<project>/<service connection name>`.
    pub ado_subject: String,
    /// Lifetime of the CI tokens minted from now on (seconds; negative: already expired).
    pub ci_token_ttl: i64,
    /// `expires_in` of the Entra tokens handed out.
    pub entra_expires_in: u64,
}

struct State {
    trust: Trust,
    jobs: Mutex<Jobs>,
    access_token: String,
    /// Other resources' scopes Entra hands tokens out for (the ACR scope gets `access_token`).
    scoped: Mutex<HashMap<String, String>>,
    /// CI tokens minted → their claims.
    minted: Mutex<HashMap<String, Value>>,
    counter: AtomicU64,
    /// `<method> <path>` of every request, and every assertion Entra was shown.
    requests: Mutex<Vec<String>>,
    assertions: Mutex<Vec<String>>,
}

pub struct CiOidc {
    /// `https://127.0.0.1:<port>`: Entra's authority host and the issuers' host.
    pub base: String,
    pub ca_file: PathBuf,
    state: Arc<State>,
    _dir: tempfile::TempDir,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl CiOidc {
    /// Starts the server; Entra answers successful exchanges with `access_token`.
    pub async fn start(trust: Trust, jobs: Jobs, access_token: String) -> CiOidc {
        let dir = tempfile::tempdir().unwrap();
        let tls = super::loopback_tls::generate(dir.path(), "fake-ci-oidc");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            trust,
            jobs: Mutex::new(jobs),
            access_token,
            scoped: Mutex::new(HashMap::new()),
            minted: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(0),
            requests: Mutex::new(Vec::new()),
            assertions: Mutex::new(Vec::new()),
        });
        let (acceptor, served) = (tls.acceptor, state.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, state) = (acceptor.clone(), served.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(&state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        CiOidc {
            base,
            ca_file: tls.ca_file,
            state,
            _dir: dir,
        }
    }

    /// `ACTIONS_ID_TOKEN_REQUEST_URL` as GitHub sets it (with its own query).
    pub fn github_request_url(&self) -> String {
        format!(
            "{}/github/_apis/distributedtask/hubs/Actions/plans/1/jobs/2/idtoken?api-version=2.0",
            self.base
        )
    }

    /// `SYSTEM_OIDCREQUESTURI` as Azure DevOps sets it.
    pub fn ado_request_uri(&self) -> String {
        format!(
            "{}/ado/org/project-id/_apis/distributedtask/hubs/build/plans/3/jobs/4/oidctoken",
            self.base
        )
    }

    pub fn jobs(&self, change: impl FnOnce(&mut Jobs)) {
        change(&mut self.state.jobs.lock().unwrap());
    }

    /// Entra answers exchanges for `scope` (another resource than ACR) with `token`.
    pub fn grant(&self, scope: &str, token: &str) {
        let mut scoped = self.state.scoped.lock().unwrap();
        scoped.insert(scope.to_string(), token.to_string());
    }

    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut self.state.requests.lock().unwrap())
    }

    /// Every assertion Entra was shown, and every CI token minted (for "never printed" checks).
    pub fn assertions(&self) -> Vec<String> {
        self.state.assertions.lock().unwrap().clone()
    }

    pub fn minted(&self) -> Vec<String> {
        self.state.minted.lock().unwrap().keys().cloned().collect()
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn entra_error(
    status: StatusCode,
    error: &str,
    code: u32,
    description: &str,
) -> Response<Full<Bytes>> {
    reply(
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description} Trace ID: 00000000-0000-0000-0000-000000000000 Correlation ID: 00000000-0000-0000-0000-000000000000 Timestamp: 2026-01-01 00:00:00Z"),
            "error_codes": [code],
            "timestamp": "2026-01-01 00:00:00Z",
            "trace_id": "00000000-0000-0000-0000-000000000000",
            "correlation_id": "00000000-0000-0000-0000-000000000000",
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

fn mint(state: &State, issuer: &str, subject: &str, audience: &str) -> String {
    let n = state.counter.fetch_add(1, Ordering::Relaxed);
    let ttl = state.jobs.lock().unwrap().ci_token_ttl;
    let claims = json!({
        "jti": format!("ci-{n}"),
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "nbf": now() - 5,
        "iat": now() - 5,
        "exp": now() + ttl,
    });
    let token = format!(
        "{}.{}.{}",
        b64url(br#"{"typ":"JWT","alg":"RS256","kid":"ci-fake"}"#),
        b64url(claims.to_string().as_bytes()),
        b64url(format!("ci-signature-{n}").as_bytes())
    );
    state.minted.lock().unwrap().insert(token.clone(), claims);
    token
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    state
        .requests
        .lock()
        .unwrap()
        .push(format!("{method} {path}"));
    let jobs = state.jobs.lock().unwrap().clone();
    if path.starts_with("/github/") && path.ends_with("/idtoken") {
        if method != "GET" || query.get("api-version").map(String::as_str) != Some("2.0") {
            return reply(StatusCode::BAD_REQUEST, json!({"message": "bad request"}));
        }
        if bearer.as_deref() != Some(&format!("Bearer {GITHUB_REQUEST_TOKEN}")) {
            return reply(
                StatusCode::UNAUTHORIZED,
                json!({"message": "Bad credentials"}),
            );
        }
        let audience = query
            .get("audience")
            .cloned()
            .unwrap_or_else(|| "https://github.com/org".into());
        let token = mint(state, GITHUB_ISSUER, &jobs.github_subject, &audience);
        return reply(StatusCode::OK, json!({"count": 1, "value": token}));
    }
    if path.starts_with("/ado/") && path.ends_with("/oidctoken") {
        if method != "POST"
            || query.get("api-version").map(String::as_str) != Some("7.1")
            || query.get("serviceConnectionId").map(String::as_str) != Some(SERVICE_CONNECTION)
        {
            return reply(
                StatusCode::BAD_REQUEST,
                json!({"message": "VS800075: The project with id 'x' does not exist, or you do not have permission to access it.", "typeKey": "ProjectDoesNotExistException"}),
            );
        }
        if bearer.as_deref() != Some(&format!("Bearer {ADO_SYSTEM_TOKEN}")) {
            return reply(
                StatusCode::UNAUTHORIZED,
                json!({"message": "TF400813: The user is not authorized to access this resource."}),
            );
        }
        let token = mint(state, ADO_ISSUER, &jobs.ado_subject, AUDIENCE);
        return reply(StatusCode::OK, json!({"oidcToken": token}));
    }
    entra(state, &jobs, req, &method, &path).await
}

async fn entra(
    state: &State,
    jobs: &Jobs,
    req: Request<Incoming>,
    method: &str,
    path: &str,
) -> Response<Full<Bytes>> {
    let trust = &state.trust;
    if method != "POST" || path != format!("/{}/oauth2/v2.0/token", trust.tenant) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant not found for {path}."),
        );
    }
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("grant_type") != Some("client_credentials") {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    }
    let scope = field("scope").unwrap_or_default();
    let access_token = if scope == "https://containerregistry.azure.net/.default" {
        state.access_token.clone()
    } else if let Some(token) = state.scoped.lock().unwrap().get(scope) {
        token.clone()
    } else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            &format!("The resource principal named {scope} was not found in the tenant."),
        );
    };
    if field("client_id") != Some(trust.client_id.as_str()) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{}' was not found in the directory.",
                field("client_id").unwrap_or("")
            ),
        );
    }
    if field("client_assertion_type")
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return entra_error(StatusCode::BAD_REQUEST, "invalid_request", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }
    let assertion = field("client_assertion").unwrap_or("").to_string();
    state.assertions.lock().unwrap().push(assertion.clone());
    let Some(claims) = state.minted.lock().unwrap().get(&assertion).cloned() else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            50027,
            "JWT token is invalid or malformed.",
        );
    };
    let claim = |name: &str| claims[name].as_str().unwrap_or("").to_string();
    if claims["exp"].as_i64().unwrap_or(0) < now() {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        );
    }
    if claim("iss") != trust.issuer {
        return entra_error(StatusCode::BAD_REQUEST, "invalid_client", 700211, &format!("No matching federated identity record found for presented assertion issuer '{}'. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion.", claim("iss")));
    }
    if claim("sub") != trust.subject {
        return entra_error(StatusCode::BAD_REQUEST, "invalid_client", 700213, &format!("No matching federated identity record found for presented assertion subject '{}'. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion.", claim("sub")));
    }
    if claim("aud") != AUDIENCE {
        return entra_error(StatusCode::BAD_REQUEST, "invalid_client", 700212, &format!("No matching federated identity record found for presented assertion audience '{}'. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion.", claim("aud")));
    }
    reply(
        StatusCode::OK,
        json!({
            "token_type": "Bearer",
            "expires_in": jobs.entra_expires_in,
            "ext_expires_in": jobs.entra_expires_in,
            "access_token": access_token,
        }),
    )
}
