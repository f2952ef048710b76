//! A tiny fake Kubernetes API server over TLS that only answers `GET /version`, and only to the
//! expected bearer token: enough to prove real `kubectl` authenticates through an exec plugin.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::sync::{Arc, Mutex};

pub struct FakeKubeApi {
    /// `https://127.0.0.1:<port>`.
    pub server: String,
    /// The CA PEM a kubeconfig's `certificate-authority-data` carries.
    pub ca_pem: String,
    /// Bearer tokens seen, in order (empty string: no Authorization header).
    pub seen: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl FakeKubeApi {
    pub async fn start(token: &str) -> FakeKubeApi {
        let dir = tempfile::tempdir().unwrap();
        let tls = super::loopback_tls::generate(dir.path(), "fake-kube-apiserver");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = format!("https://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (acceptor, token, log) = (tls.acceptor, Arc::new(token.to_string()), seen.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, token, log) = (acceptor.clone(), token.clone(), log.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let reply = answer(&token, &log, &req);
                        async move { Ok::<_, std::convert::Infallible>(reply) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        FakeKubeApi {
            server,
            ca_pem: tls.ca_pem,
            seen,
            _dir: dir,
        }
    }
}

fn answer(token: &str, log: &Mutex<Vec<String>>, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    log.lock().unwrap().push(bearer.clone());
    let (status, body) = if bearer != token {
        (
            StatusCode::UNAUTHORIZED,
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}),
        )
    } else if req.uri().path() == "/version" {
        (
            StatusCode::OK,
            json!({"major":"1","minor":"33","gitVersion":"v1.33.0-fake","platform":"linux/amd64"}),
        )
    } else {
        (
            StatusCode::NOT_FOUND,
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","code":404}),
        )
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}
