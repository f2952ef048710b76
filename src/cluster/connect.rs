//! From kubeconfig to a client, as kubectl chooses: `--kubeconfig`, else `KUBECONFIG` (a list of
//! files, merged), else `~/.kube/config`; `--context`, else the remembered one, else the current one.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Method, Request, Response};
use http_body_util::{BodyExt, Either, Full};
use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::sync::Mutex;

use crate::bad_input;
use crate::retry::{self, RetryPolicy};

/// Which cluster and namespace the user asked for.
#[derive(Clone, Debug, Default)]
pub struct KubeconfigChoice {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
}

/// What this app used last time (state file), taken when the flags say nothing.
#[derive(Clone, Debug, Default)]
pub struct Remembered {
    pub context: Option<String>,
    pub namespace: Option<String>,
}

/// A client for one context, and the names errors and reports use.
#[derive(Clone)]
pub struct Connection {
    /// For API calls: HTTP/2 where the server offers it, so concurrent requests share one
    /// connection (as kubectl's do).
    pub client: Client,
    /// For [`Connection::upgrades`], built only when one is needed.
    config: kube::Config,
    pub context: String,
    pub server: String,
    pub namespace: String,
    /// Whether `-n` chose the namespace (objects naming another one are then refused).
    pub namespace_explicit: bool,
    /// The kubeconfig file given with `--kubeconfig`, for tools we hand the cluster to (helm).
    pub kubeconfig_file: Option<PathBuf>,
    /// Credentials held in memory (AKS through ARM): no file another tool could read.
    pub in_memory: bool,
    /// What to add when the server cannot be reached (a private AKS API server).
    pub unreachable_hint: Option<String>,
}

/// Reads the kubeconfig, picks the context and namespace, and builds a client (no request yet).
pub async fn connect(
    target: &KubeconfigChoice,
    remembered: &Remembered,
) -> anyhow::Result<Connection> {
    connect_with(load_kubeconfig(target)?, target, remembered).await
}

/// As [`connect`], with a kubeconfig that did not come from a file (AKS credentials from ARM).
pub async fn connect_with(
    kubeconfig: Kubeconfig,
    target: &KubeconfigChoice,
    remembered: &Remembered,
) -> anyhow::Result<Connection> {
    let context = choose_context(target, remembered, &kubeconfig)?;
    let options = KubeConfigOptions {
        context: Some(context.clone()),
        ..KubeConfigOptions::default()
    };
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| bad_input!("the kubeconfig context `{context}` cannot be used: {e}"))?;
    if proxy_from_env_exempt(&config) {
        config.proxy_url = None;
    }
    let server = config.cluster_url.to_string();
    let server = server.trim_end_matches('/').to_string();
    let from_state = remembered
        .namespace
        .clone()
        .filter(|_| remembered.context.as_deref() == Some(context.as_str()));
    let namespace = target
        .namespace
        .clone()
        .or(from_state)
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = client(config.clone(), Http::TwoOrOneOne)
        .map_err(|e| cannot_set_up(&context, &server, e))?;
    Ok(Connection {
        client,
        config,
        context,
        server,
        namespace,
        namespace_explicit: target.namespace.is_some(),
        kubeconfig_file: target.kubeconfig.clone(),
        in_memory: false,
        unreachable_hint: None,
    })
}

fn load_kubeconfig(target: &KubeconfigChoice) -> anyhow::Result<Kubeconfig> {
    if let Some(path) = &target.kubeconfig {
        return Kubeconfig::read_from(path)
            .map_err(|e| bad_input!("--kubeconfig {}: {e}", path.display()));
    }
    match Kubeconfig::from_env() {
        Ok(Some(config)) => return Ok(config),
        Ok(None) => {}
        Err(e) => return Err(bad_input!("KUBECONFIG: {e}")),
    }
    let default = dirs::home_dir().map(|home| home.join(".kube").join("config"));
    match default {
        Some(path) if path.is_file() => {
            Kubeconfig::read_from(&path).map_err(|e| bad_input!("{}: {e}", path.display()))
        }
        _ => Err(bad_input!(
            "no kubeconfig: pass --kubeconfig <FILE>, set KUBECONFIG, or create ~/.kube/config (for AKS: `spin-aks cluster get-credentials`)"
        )),
    }
}

fn choose_context(
    target: &KubeconfigChoice,
    remembered: &Remembered,
    kubeconfig: &Kubeconfig,
) -> anyhow::Result<String> {
    let known = |name: &str| kubeconfig.contexts.iter().any(|c| c.name == name);
    if let Some(context) = &target.context {
        if known(context) {
            return Ok(context.clone());
        }
        return Err(not_in(kubeconfig, &format!("--context `{context}`")));
    }
    if let Some(context) = remembered.context.as_deref().filter(|c| known(c)) {
        return Ok(context.to_string());
    }
    kubeconfig
        .current_context
        .clone()
        .ok_or_else(|| bad_input!("the kubeconfig has no current context; pass --context <NAME>"))
}

/// Refuses the first of `contexts` the kubeconfig (`kubeconfig`, else as [`connect`] finds it)
/// lacks, named as the argument `cluster <name>`: checked before a command changes any cluster.
pub fn require_contexts(kubeconfig: Option<PathBuf>, contexts: &[&str]) -> anyhow::Result<()> {
    if contexts.is_empty() {
        return Ok(());
    }
    let target = KubeconfigChoice {
        kubeconfig,
        ..KubeconfigChoice::default()
    };
    let config = load_kubeconfig(&target)?;
    match (contexts.iter()).find(|name| !config.contexts.iter().any(|c| c.name == **name)) {
        Some(missing) => Err(not_in(&config, &format!("cluster `{missing}`"))),
        None => Ok(()),
    }
}

/// `named` is not a context of `kubeconfig`: the contexts it has.
fn not_in(kubeconfig: &Kubeconfig, named: &str) -> anyhow::Error {
    let names: Vec<&str> = (kubeconfig.contexts.iter())
        .map(|c| c.name.as_str())
        .collect();
    bad_input!(
        "{named} is not in the kubeconfig; it has: {}",
        if names.is_empty() {
            "no contexts".to_string()
        } else {
            names.join(", ")
        }
    )
}

impl Connection {
    /// A client that speaks HTTP/1.1 only, for what upgrades the connection (port-forward's
    /// WebSocket, which HTTP/2 cannot carry).
    pub fn upgrades(&self) -> anyhow::Result<Client> {
        client(self.config.clone(), Http::OneOne)
            .map_err(|e| cannot_set_up(&self.context, &self.server, e))
    }
}

fn cannot_set_up(context: &str, server: &str, e: kube::Error) -> anyhow::Error {
    anyhow::anyhow!("cannot set up a client for context `{context}` ({server}): {e}")
}

/// Which HTTP versions a client offers the API server (by ALPN).
/// Whether the proxy kube took from `HTTPS_PROXY` is one `NO_PROXY` says the API server does not
/// go through (kube applies `NO_PROXY` to nothing: a cluster on loopback or inside the network
/// would be reached through the proxy, or refused).
fn proxy_from_env_exempt(config: &Config) -> bool {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let from_env = (env("HTTPS_PROXY").or_else(|| env("https_proxy"))).and_then(|e| e.parse().ok());
    if from_env.is_none() || config.proxy_url != from_env {
        return false;
    }
    let Some(host) = config.cluster_url.host() else {
        return false;
    };
    let port = config.cluster_url.port_u16().unwrap_or(443);
    let no_proxy = env("NO_PROXY")
        .or_else(|| env("no_proxy"))
        .unwrap_or_default();
    super::no_proxy::exempt(host, port, &no_proxy)
}

#[derive(Clone, Copy, PartialEq)]
enum Http {
    TwoOrOneOne,
    OneOne,
}

/// kube's own client stack (`ClientBuilder::try_from`) with three changes and our retries: HTTP/2
/// offered (kube offers only HTTP/1.1, which its connection upgrades need; `Http::OneOne` keeps
/// that), TCP_NODELAY on its connections (a request on a new TLS connection could wait 40 ms
/// for the server's delayed ACK), and HTTP/2 pings on a silent connection ([`ping_timing`]).
/// Through a proxy, kube's stack as it is.
fn client(config: kube::Config, http: Http) -> Result<kube::Client, kube::Error> {
    use kube::client::ConfigExt;
    let config_url = config.cluster_url.to_string();
    if config.proxy_url.is_some() {
        return Ok(kube::client::ClientBuilder::try_from(config)?
            .with_layer(&RetryLayer::for_server(&config_url))
            .build());
    }
    // kube's TLS setup takes the process's default provider, which its own stack installs.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
    let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    // ALPN follows the versions enabled below.
    let mut https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config.rustls_client_config()?)
        .https_or_http();
    if let Some(name) = &config.tls_server_name {
        let name = rustls::pki_types::ServerName::try_from(name.clone())
            .map_err(|e| kube::Error::Service(format!("tls-server-name {name}: {e}").into()))?;
        https = https.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name));
    }
    let https = match http {
        Http::TwoOrOneOne => https.enable_http1().enable_http2().wrap_connector(tcp),
        Http::OneOne => https.enable_http1().wrap_connector(tcp),
    };
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let (interval, timeout) = ping_timing();
    let http_client =
        hyper_util::client::legacy::Builder::new(hyper_util::rt::TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .http2_keep_alive_interval(interval)
            .http2_keep_alive_timeout(timeout)
            .http2_keep_alive_while_idle(true)
            .build::<_, kube::client::Body>(connector);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .map_err(tower::BoxError::from)
        .service(http_client);
    Ok(
        kube::client::ClientBuilder::new(service, config.default_namespace)
            .with_layer(&RetryLayer::for_server(&config_url))
            .build(),
    )
}

/// How long an HTTP/2 connection to the API server may stay silent before it is pinged, as
/// client-go's `HTTP2_READ_IDLE_TIMEOUT_SECONDS` (30 s); `SPIN_AKS_API_PING_SECONDS` changes it.
const PING_AFTER: Duration = Duration::from_secs(30);

/// After [`PING_AFTER`] (or `SPIN_AKS_API_PING_SECONDS`, a positive whole number) of silence a
/// connection is pinged; unanswered for half that (client-go's 15 s), it is closed. Its watches
/// then end with an error and start again from their last resourceVersion on a new connection,
/// so a dead connection (a load balancer that dropped its state) is noticed within 45 s, while
/// a quiet watch or followed log on a live one is kept: the server answers the ping.
fn ping_timing() -> (Duration, Duration) {
    ping_timing_from(std::env::var("SPIN_AKS_API_PING_SECONDS").ok().as_deref())
}

/// [`ping_timing`] with `SPIN_AKS_API_PING_SECONDS` set to `set`.
fn ping_timing_from(set: Option<&str>) -> (Duration, Duration) {
    let interval = set
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(PING_AFTER, Duration::from_secs);
    (interval, (interval / 2).max(Duration::from_secs(1)))
}

/// How requests to the API server are retried: 4 tries at most, pauses from 200 ms doubling,
/// a `Retry-After` (API Priority and Fairness sends one with 429) honoured up to 10 s.
fn api_server_policy() -> RetryPolicy {
    RetryPolicy::new(
        Duration::from_millis(200),
        Duration::from_secs(2),
        Duration::MAX,
    )
    .max_tries(4)
    .max_wait(Duration::from_secs(10))
}

/// How many tries a request gets while the API server answers 429 or 5xx with `Retry-After`:
/// a server that says when to come back is alive and shedding load (API Priority and Fairness),
/// so it gets client-go's 10 tries rather than [`api_server_policy`]'s 4.
const ASKED_TRIES: u32 = 10;

/// How long requests wait out an API server that answered before and now cannot be reached (a
/// restart, a paused process, a dropped load balancer): each request tries again for this long.
const OUTAGE_BUDGET: Duration = Duration::from_secs(120);

/// Pauses while riding out an outage: from 200 ms, doubling up to 2 s, for [`OUTAGE_BUDGET`]
/// (`SPIN_AKS_API_OUTAGE_SECONDS`, a positive whole number, changes it).
fn outage_policy() -> RetryPolicy {
    let budget = std::env::var("SPIN_AKS_API_OUTAGE_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(OUTAGE_BUDGET, Duration::from_secs);
    RetryPolicy::new(Duration::from_millis(200), Duration::from_secs(2), budget)
}

/// Retries what is safe to repeat against the API server: a GET or a server-side apply that met a
/// dropped connection (before or inside its answer), 408, 429 or 5xx is sent again (10 tries
/// when the server asks with `Retry-After`); creates and deletes only when the
/// connection was refused (they never left). Once the server has answered, an unreachable server
/// is waited for up to [`OUTAGE_BUDGET`] per request; before that, four tries fail fast (a wrong
/// address). The layer for `kube::client::ClientBuilder::with_layer`.
struct RetryLayer {
    /// Whether the API server has answered any request of this process.
    reached: Arc<AtomicBool>,
}

impl RetryLayer {
    /// The layer for the API server at `url`: every client of this process to that server shares
    /// whether it has answered (a command connects more than once).
    fn for_server(url: &str) -> RetryLayer {
        static REACHED: std::sync::LazyLock<
            std::sync::Mutex<std::collections::HashMap<String, Arc<AtomicBool>>>,
        > = std::sync::LazyLock::new(Default::default);
        let mut reached = REACHED.lock().unwrap_or_else(|e| e.into_inner());
        RetryLayer {
            reached: reached.entry(url.to_string()).or_default().clone(),
        }
    }
}

impl<S> tower_layer::Layer<S> for RetryLayer {
    type Service = Retrying<S>;

    fn layer(&self, inner: S) -> Retrying<S> {
        Retrying {
            inner: Arc::new(Mutex::new(inner)),
            reached: self.reached.clone(),
        }
    }
}

/// The service: the inner stack behind a lock, so a retry can send again.
struct Retrying<S> {
    inner: Arc<Mutex<S>>,
    reached: Arc<AtomicBool>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An answer as the server streams it (a watch, a log) or read whole by the retry layer.
type Answer<B> = Either<B, Full<bytes::Bytes>>;

impl<S, B> tower_service::Service<Request<Body>> for Retrying<S>
where
    S: tower_service::Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Answer<B>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Answer<B>>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let (inner, reached) = (self.inner.clone(), self.reached.clone());
        Box::pin(async move {
            let policy = api_server_policy();
            let asking = api_server_policy().max_tries(ASKED_TRIES);
            let deadline = policy.deadline();
            // Set once the server answered with `Retry-After`.
            let mut asked_to_wait = false;
            // Set at the first unreachable try once the server had answered.
            let mut outage: Option<(RetryPolicy, std::time::Instant, u32)> = None;
            let safe = safe_to_repeat(&request);
            // A connection lost inside the answer's body fails a request as one lost before
            // its head: what is safe to repeat and not a stream is read whole here, and sent
            // again when that read fails.
            let whole = safe && !streamed(&request);
            let (parts, body) = request.into_parts();
            let mut tries = 0;
            loop {
                tries += 1;
                let limit = match asked_to_wait {
                    true => asking.max_tries,
                    false => policy.max_tries,
                };
                let more = outage.is_some() || tries < limit;
                let Some(this) = more.then(|| body.try_clone()).flatten() else {
                    let outcome = send(&inner, Request::from_parts(parts, body)).await;
                    return read(outcome, whole).await;
                };
                let outcome = send(&inner, Request::from_parts(parts.clone(), this)).await;
                let outcome = read(outcome, whole).await;
                let pause = match &outcome {
                    Ok(response) => {
                        reached.store(true, Ordering::Relaxed);
                        if !safe || !retry::is_transient_status(response.status()) {
                            return outcome;
                        }
                        let asked = policy.asked(response.headers());
                        asked_to_wait |= asked.is_some();
                        match asked_to_wait {
                            true => asking.next_pause(tries, deadline, asked),
                            false => policy.next_pause(tries, deadline, asked),
                        }
                    }
                    Err(error) if reached.load(Ordering::Relaxed) && is_unreachable(error) => {
                        if !safe && !never_sent(error) {
                            return outcome;
                        }
                        let (outage_policy, since, n) = outage
                            .get_or_insert_with(|| (outage_policy(), std::time::Instant::now(), 0));
                        *n += 1;
                        let until = *since + outage_policy.budget;
                        outage_policy.next_pause(*n, until, None)
                    }
                    Err(error) if safe || never_sent(error) => {
                        policy.next_pause(tries, deadline, None)
                    }
                    Err(_) => return outcome,
                };
                let Some(pause) = pause else {
                    return outcome;
                };
                tracing::debug!(tries, method = %parts.method, uri = %parts.uri, ?pause, "retrying an API server request");
                tokio::time::sleep(pause).await;
            }
        })
    }
}

/// The answer, its body read whole when `whole` (a failed read is the request's error), else
/// streamed as it comes.
async fn read<B>(
    outcome: Result<Response<B>, BoxError>,
    whole: bool,
) -> Result<Response<Answer<B>>, BoxError>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<BoxError>,
{
    let response = outcome?;
    if !whole {
        return Ok(response.map(Either::Left));
    }
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map_err(Into::into)?.to_bytes();
    Ok(Response::from_parts(parts, Either::Right(Full::new(bytes))))
}

/// A request whose answer is a stream with no end of its own: a watch, a followed log.
fn streamed(request: &Request<Body>) -> bool {
    let query = request.uri().query().unwrap_or_default();
    query
        .split('&')
        .any(|pair| pair == "watch=true" || pair == "watch=1" || pair == "follow=true")
}

/// The causes of `error`, outermost first.
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source())
}

/// A request that got no answer because the server could not be reached: the connection was
/// refused, reset, timed out or could not be made.
fn is_unreachable(error: &BoxError) -> bool {
    causes(error.as_ref()).any(|e| {
        e.downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(|e| e.is_connect())
            || e.downcast_ref::<std::io::Error>().is_some_and(|e| {
                use std::io::ErrorKind::*;
                matches!(
                    e.kind(),
                    ConnectionRefused
                        | ConnectionReset
                        | ConnectionAborted
                        | BrokenPipe
                        | TimedOut
                        | UnexpectedEof
                        | NotConnected
                )
            })
    })
}

/// A request that cannot have reached the server: its connection was never made.
fn never_sent(error: &BoxError) -> bool {
    causes(error.as_ref()).any(|e| {
        e.downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(|e| e.is_connect())
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
    })
}

async fn send<S, B>(inner: &Mutex<S>, request: Request<Body>) -> Result<Response<B>, BoxError>
where
    S: tower_service::Service<Request<Body>, Response = Response<B>>,
    S::Error: Into<BoxError>,
{
    let future = {
        let mut service = inner.lock().await;
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .map_err(Into::into)?;
        service.call(request)
    };
    future.await.map_err(Into::into)
}

/// GETs (not upgrades: port-forward and exec) and server-side apply PATCHes.
fn safe_to_repeat(request: &Request<Body>) -> bool {
    let upgrade = request.headers().contains_key(http::header::UPGRADE);
    let apply = request.method() == Method::PATCH
        && request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"application/apply-patch"));
    !upgrade && (request.method() == Method::GET || apply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, content_type: Option<&str>) -> Request<Body> {
        let mut builder = Request::builder().method(method).uri("/api/v1/pods");
        if let Some(t) = content_type {
            builder = builder.header(http::header::CONTENT_TYPE, t);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn watches_and_followed_logs_are_streamed_other_answers_read_whole() {
        for (uri, streamed_) in [
            (
                "/api/v1/namespaces/a/pods?&watch=true&resourceVersion=5",
                true,
            ),
            ("/api/v1/namespaces/a/pods/p/log?&follow=true", true),
            (
                "/api/v1/namespaces/a/pods?&labelSelector=watch%3Dtrue",
                false,
            ),
            ("/api/v1/namespaces/a/pods/p/log?&tailLines=10", false),
            ("/apis/apps/v1/namespaces/a/deployments/d", false),
        ] {
            let request = Request::get(uri).body(Body::empty()).unwrap();
            assert_eq!(streamed(&request), streamed_, "{uri}");
        }
    }

    #[test]
    fn only_reads_and_server_side_applies_are_repeated() {
        assert!(safe_to_repeat(&request(Method::GET, None)));
        assert!(safe_to_repeat(&request(
            Method::PATCH,
            Some("application/apply-patch+yaml")
        )));
        assert!(!safe_to_repeat(&request(
            Method::PATCH,
            Some("application/merge-patch+json")
        )));
        assert!(!safe_to_repeat(&request(
            Method::POST,
            Some("application/json")
        )));
        assert!(!safe_to_repeat(&request(Method::DELETE, None)));
        let mut upgrade = request(Method::GET, None);
        upgrade
            .headers_mut()
            .insert(http::header::UPGRADE, "websocket".parse().unwrap());
        assert!(!safe_to_repeat(&upgrade));
    }

    #[test]
    fn a_silent_connection_is_pinged_after_30_s_and_closed_15_s_later() {
        let s = Duration::from_secs;
        // (SPIN_AKS_API_PING_SECONDS, the ping's interval and timeout)
        for (set, expected) in [
            (None, (s(30), s(15))),
            (Some("4"), (s(4), s(2))),
            (Some("1"), (s(1), s(1))),
            (Some("0"), (s(30), s(15))),
            (Some("soon"), (s(30), s(15))),
        ] {
            assert_eq!(ping_timing_from(set), expected, "{set:?}");
        }
    }

    #[test]
    fn api_server_requests_get_four_tries_with_short_pauses() {
        let policy = api_server_policy();
        let deadline = policy.deadline();
        let ms = Duration::from_millis;
        // (tries made, the longest pause after them)
        for (tries, ceiling) in [(1, ms(200)), (2, ms(400)), (3, ms(800))] {
            let pause = policy.next_pause(tries, deadline, None).unwrap();
            assert!(
                pause >= ceiling / 2 && pause <= ceiling,
                "{tries}: {pause:?}"
            );
        }
        assert_eq!(policy.next_pause(4, deadline, None), None);
        let asked = Some(Duration::from_secs(1));
        assert_eq!(policy.next_pause(1, deadline, asked), asked);
        let asked = Some(Duration::from_secs(3600));
        assert_eq!(
            policy.next_pause(1, deadline, asked),
            Some(Duration::from_secs(10))
        );
        // A server that says when to come back gets 10 tries, as client-go gives it.
        let asking = api_server_policy().max_tries(ASKED_TRIES);
        let asked = Some(Duration::from_secs(1));
        let ninth = asking.next_pause(9, deadline, asked);
        assert!(
            ninth.is_some_and(|p| p >= Duration::from_secs(1)),
            "{ninth:?}"
        );
        assert_eq!(asking.next_pause(10, deadline, asked), None);
    }
}
