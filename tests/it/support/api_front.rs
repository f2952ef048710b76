//! An HTTPS front before a rig's API server that answers chosen requests itself (429 or 503 with
//! `Retry-After`, as API Priority and Fairness and a starting server do) and passes the rest on
//! with the rig's admin certificate; it records every request and when it came.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine;
use http_body_util::{Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio_rustls::rustls;

use super::rig::Rig;

/// For request number `n` (from 0), its method and path: a status and its `Retry-After`
/// seconds (0: none) to answer instead of the API server, or `None` to pass it on.
pub type Policy = dyn Fn(usize, &str, &str) -> Option<(u16, u64)> + Send + Sync;

/// Told each request's method and path once the API server has answered it, before the client
/// gets the answer (it may hold it there).
pub type Answered = dyn Fn(&str, &str) + Send + Sync;

/// One request the front saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub method: String,
    /// Path and query.
    pub path: String,
    /// What the client got: the front's own status, or the API server's.
    pub status: u16,
}

/// A running front; stops when dropped.
pub struct ApiFront {
    /// A copy of the rig's kubeconfig naming the front and trusting its CA.
    pub kubeconfig: PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

type Upstream = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Incoming,
>;

impl ApiFront {
    pub fn start(rig: &Rig, policy: Box<Policy>) -> ApiFront {
        ApiFront::start_telling(rig, policy, Box::new(|_, _| {}))
    }

    /// A front whose watches are answered 200 and then stay open and quiet for good, as an API
    /// server's lagging watch cache serves them: every event is lost, the connection is alive.
    /// Lists and reads pass.
    pub fn muting_watches(rig: &Rig) -> ApiFront {
        ApiFront::serve(rig, Box::new(|_, _, _| None), Box::new(|_, _| {}), true)
    }

    /// As [`ApiFront::start`], telling `answered` of each request the API server answered.
    pub fn start_telling(rig: &Rig, policy: Box<Policy>, answered: Box<Answered>) -> ApiFront {
        ApiFront::serve(rig, policy, answered, false)
    }

    fn serve(rig: &Rig, policy: Box<Policy>, answered: Box<Answered>, mute: bool) -> ApiFront {
        let dir = tempfile::tempdir().unwrap();
        let tls = super::loopback_tls::generate(dir.path(), "api-front");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = rig.server();
        let client = {
            let _context = runtime.enter();
            upstream_client(&rig.path("pki"))
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, policy, counter) = (
            seen.clone(),
            Arc::<Policy>::from(policy),
            Arc::new(AtomicUsize::new(0)),
        );
        let answered = Arc::<Answered>::from(answered);
        let acceptor = tls.acceptor;
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, client, upstream) =
                    (acceptor.clone(), client.clone(), upstream.clone());
                let (log, policy, counter) = (log.clone(), policy.clone(), counter.clone());
                let answered = answered.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let (client, upstream) = (client.clone(), upstream.clone());
                        let (log, policy, counter) = (log.clone(), policy.clone(), counter.clone());
                        let answered = answered.clone();
                        async move {
                            let n = counter.fetch_add(1, Ordering::SeqCst);
                            let hooks = (policy.as_ref(), answered.as_ref());
                            Ok::<_, hyper::Error>(
                                answer(n, req, &client, &upstream, hooks, mute, &log).await,
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        let kubeconfig = fronted_kubeconfig(rig, dir.path(), port, &tls.ca_pem);
        ApiFront {
            kubeconfig,
            seen,
            runtime: Some(runtime),
            _dir: dir,
        }
    }

    /// Every request so far, in the order they came.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many watches came, asserting there was one (a muting front muted them all).
    pub fn watches(&self) -> usize {
        let seen = self.seen.lock().unwrap();
        let watches = seen
            .iter()
            .filter(|s| s.path.contains("watch=true"))
            .count();
        assert!(watches > 0, "no watch went through the front");
        watches
    }
}

impl Drop for ApiFront {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A client to the API server with the rig's CA and admin certificate (HTTP/1.1).
fn upstream_client(pki: &Path) -> Upstream {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.join("ca.crt")).unwrap())
        .unwrap();
    let chain = CertificateDer::pem_file_iter(pki.join("admin.crt"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(pki.join("admin.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .build();
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https)
}

/// A body that never sends a byte and never ends.
type Quiet = http_body_util::StreamBody<
    futures_util::stream::Pending<Result<hyper::body::Frame<Bytes>, std::convert::Infallible>>,
>;

type Answer = Response<Either<Incoming, Either<Full<Bytes>, Quiet>>>;

async fn answer(
    n: usize,
    req: Request<Incoming>,
    client: &Upstream,
    upstream: &str,
    (policy, answered): (&Policy, &Answered),
    mute: bool,
    log: &Mutex<Vec<Seen>>,
) -> Answer {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let record = |status: u16| {
        log.lock().unwrap().push(Seen {
            at: Instant::now(),
            method: method.clone(),
            path: path.clone(),
            status,
        })
    };
    if let Some((status, retry_after)) = policy(n, &method, &path) {
        record(status);
        let reason = match status {
            429 => "TooManyRequests",
            _ => "ServiceUnavailable",
        };
        let body = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "the front refuses this request for now, please try again later",
            "reason": reason, "details": {"retryAfterSeconds": retry_after}, "code": status,
        });
        let mut answer = Response::builder()
            .status(status)
            .header("content-type", "application/json");
        // 0: no `Retry-After`, as a server that is starting answers.
        if retry_after > 0 {
            answer = answer.header("retry-after", retry_after.to_string());
        }
        return answer
            .body(Either::Right(Either::Left(Full::new(Bytes::from(
                body.to_string(),
            )))))
            .unwrap();
    }
    if mute && path.contains("watch=true") {
        record(200);
        return Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Either::Right(Either::Right(
                http_body_util::StreamBody::new(futures_util::stream::pending()),
            )))
            .unwrap();
    }
    let (mut parts, body) = req.into_parts();
    parts.uri = format!("{upstream}{path}").parse().unwrap();
    parts.headers.remove(hyper::header::HOST);
    match client.request(Request::from_parts(parts, body)).await {
        Ok(response) => {
            record(response.status().as_u16());
            answered(&method, &path);
            response.map(Either::Left)
        }
        Err(e) => {
            record(502);
            let body = Full::new(Bytes::from(format!(
                "the front could not reach the API server: {e}"
            )));
            Response::builder()
                .status(502)
                .body(Either::Right(Either::Left(body)))
                .unwrap()
        }
    }
}

/// The rig's kubeconfig with the front as its server and the front's CA as the one to trust.
fn fronted_kubeconfig(rig: &Rig, dir: &Path, port: u16, ca_pem: &str) -> PathBuf {
    let admin = std::fs::read_to_string(&rig.kubeconfig).unwrap();
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let fronted: String = admin
        .lines()
        .map(|line| {
            let indent = &line[..line.len() - line.trim_start().len()];
            if line.trim_start().starts_with("server: ") {
                format!("{indent}server: https://127.0.0.1:{port}")
            } else if line
                .trim_start()
                .starts_with("certificate-authority-data: ")
            {
                format!("{indent}certificate-authority-data: {ca}")
            } else {
                line.to_string()
            }
        })
        .map(|line| line + "\n")
        .collect();
    let path = dir.join("kubeconfig");
    std::fs::write(&path, fronted).unwrap();
    path
}

/// The requests answered `status` by the front, each with the pause the client then took before
/// the same request again (`None`: never sent again).
pub fn pauses_after(seen: &[Seen], status: u16) -> Vec<(String, Option<std::time::Duration>)> {
    seen.iter()
        .enumerate()
        .filter(|(_, s)| s.status == status)
        .map(|(i, s)| {
            let again = seen[i + 1..]
                .iter()
                .find(|t| t.method == s.method && t.path == s.path)
                .map(|t| t.at - s.at);
            (format!("{} {}", s.method, s.path), again)
        })
        .collect()
}
