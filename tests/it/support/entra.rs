//! A fake Microsoft Entra token endpoint over TLS, for the credentials azure_identity only lets talk
//! to an https `AZURE_AUTHORITY_HOST` (environment service principal, workload identity).
//!
//! It serves `POST /<tenant>/oauth2/v2.0/token` (client_credentials with a client secret or a client
//! assertion) with a certificate from a test CA; point `SSL_CERT_FILE` at [`FakeEntra::ca_file`] so
//! the real TLS stack trusts it.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// What the fake accepts and what it hands out.
#[derive(Debug, Clone)]
pub struct Accept {
    pub tenant: String,
    pub client_id: String,
    /// The client secret (environment service principal) or the federated token (workload identity).
    pub credential: String,
    /// The Entra access token returned on success.
    pub access_token: String,
}

/// A running fake Entra endpoint; it stops with the test's runtime.
pub struct FakeEntra {
    /// `https://127.0.0.1:<port>`: the value for `AZURE_AUTHORITY_HOST`.
    pub authority_host: String,
    /// PEM of the CA that signed the endpoint's certificate.
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl FakeEntra {
    pub async fn start(accept: Accept) -> FakeEntra {
        let dir = tempfile::tempdir().unwrap();
        let tls = super::loopback_tls::generate(dir.path(), "fake-entra");
        let (acceptor, ca_file) = (tls.acceptor, tls.ca_file);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority_host = format!("https://{}", listener.local_addr().unwrap());
        let accept = Arc::new(accept);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let accept = accept.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let accept = accept.clone();
                        async move { Ok::<_, std::convert::Infallible>(token(&accept, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        FakeEntra {
            authority_host,
            ca_file,
            _dir: dir,
        }
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// Entra's error body: `{"error","error_description","error_codes":[…],…}`.
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
            "error_description": format!("AADSTS{code}: {description}"),
            "error_codes": [code],
            "timestamp": "2026-01-01 00:00:00Z",
            "trace_id": "00000000-0000-0000-0000-000000000000",
            "correlation_id": "00000000-0000-0000-0000-000000000000",
        }),
    )
}

async fn token(accept: &Accept, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if req.method() != "POST" || path != format!("/{}/oauth2/v2.0/token", accept.tenant) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant not found for {path}."),
        );
    }
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("client_credentials")
        || field("scope") != Some("https://containerregistry.azure.net/.default")
        || field("client_id") != Some(accept.client_id.as_str())
    {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain grant_type, scope and client_id.",
        );
    }
    let secret_ok = field("client_secret") == Some(accept.credential.as_str());
    let assertion_ok = field("client_assertion_type")
        == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        && field("client_assertion") == Some(accept.credential.as_str());
    if !(secret_ok || assertion_ok) {
        return entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        );
    }
    reply(
        StatusCode::OK,
        json!({
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": accept.access_token,
        }),
    )
}
