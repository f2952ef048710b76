//! A loopback proxy in front of a registry injecting per-request faults (503, 429, 401, slow answers,
//! cuts before, inside or after the request); `Connection: close` makes every request meet the policy.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to do with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Pass,
    /// Answer `503 Service Unavailable`.
    Unavailable,
    /// Answer `401` with a Basic challenge, as a registry does when a token has expired.
    Unauthorized,
    /// Answer `404 BLOB_UPLOAD_UNKNOWN`, as a registry does for an expired upload session.
    UploadUnknown,
    /// Reset the connection before reading anything.
    Reset,
    /// Forward the head, read part of the body, then reset the connection.
    ResetMidBody,
    /// Answer this status with this distribution-style error body (`{"errors":[…]}`, or none
    /// when empty), as a registry refusing for good does.
    Refused(u16, &'static str),
    /// Answer `429 Too Many Requests` with `Retry-After: <seconds>`.
    Throttled(u64),
    /// Wait this many milliseconds, then pass the request on.
    Slow(u64),
    /// Pass on this many bytes of the request (head and body), then cut both connections.
    CutRequestAt(usize),
    /// Pass the request on, return this many bytes of the answer, then cut both connections.
    CutResponseAt(usize),
}

/// Decides the fault for request number `n` (from 0), given its method and path.
pub type Policy = dyn Fn(usize, &str, &str) -> Fault + Send + Sync;

/// The odds of each fault per request in a [`seeded`] policy; whatever is left passes.
#[derive(Clone, Copy, Debug, Default)]
pub struct FaultMix {
    /// A cut connection: before the request, inside it (head or body) or inside the answer.
    pub cut: f64,
    /// `503 Service Unavailable`.
    pub unavailable: f64,
    /// `429 Too Many Requests` with `Retry-After: 1`.
    pub throttled: f64,
    /// An answer delayed by up to a second.
    pub slow: f64,
}

/// A repeatable random policy: request number `n` gets the same fault for the same `seed`.
pub fn seeded(seed: u64, mix: FaultMix) -> Box<Policy> {
    Box::new(move |n, _, _| {
        let mut rng = StdRng::seed_from_u64(seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let roll: f64 = rng.random();
        let mut bound = mix.cut;
        if roll < bound {
            return match rng.random_range(0..3) {
                0 => Fault::Reset,
                1 => Fault::CutRequestAt(rng.random_range(1..200_000)),
                _ => Fault::CutResponseAt(rng.random_range(0..400)),
            };
        }
        for (odds, fault) in [
            (mix.unavailable, Fault::Unavailable),
            (mix.throttled, Fault::Throttled(1)),
            (mix.slow, Fault::Slow(rng.random_range(100..1000))),
        ] {
            bound += odds;
            if roll < bound {
                return fault;
            }
        }
        Fault::Pass
    })
}

/// A running proxy; stops when dropped (its runtime is shut down).
pub struct FaultProxy {
    port: u16,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    pub fn start(upstream_port: u16, policy: Box<Policy>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        FaultProxy::serve(listener, upstream_port, policy)
    }

    /// A proxy on a listener the caller bound (a given port, such as one a stopped server left).
    pub fn serve(listener: std::net::TcpListener, upstream_port: u16, policy: Box<Policy>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("proxy runtime");
        listener.set_nonblocking(true).expect("non-blocking proxy");
        let listener = {
            let _context = runtime.enter();
            TcpListener::from_std(listener).expect("proxy listener")
        };
        let port = listener.local_addr().expect("proxy addr").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let policy: Arc<Policy> = Arc::from(policy);
        let counter = requests.clone();
        let accepted = connections.clone();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let policy = policy.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let _ = handle(client, upstream_port, policy, counter).await;
                });
            }
        });
        FaultProxy {
            port,
            requests,
            connections,
            runtime: Some(runtime),
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Requests seen so far (faulted ones included).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted so far, those that sent no whole request (a TLS handshake) included.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn handle(
    mut client: TcpStream,
    upstream_port: u16,
    policy: Arc<Policy>,
    counter: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let head = read_head(&mut client).await?;
    let Some(head_end) = find(&head, b"\r\n\r\n") else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&head[..head_end]).into_owned();
    let mut request_line = text.lines().next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let path = request_line.next().unwrap_or_default().to_string();
    let n = counter.fetch_add(1, Ordering::SeqCst);
    let fault = policy(n, &method, &path);
    match fault {
        Fault::Pass => {}
        Fault::Unavailable => {
            client
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await?;
            return client.shutdown().await;
        }
        Fault::Unauthorized => {
            client
                .write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"spin-aks-test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await?;
            return client.shutdown().await;
        }
        Fault::UploadUnknown => {
            let body = r#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"blob upload unknown to registry"}]}"#;
            let reply = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(reply.as_bytes()).await?;
            return client.shutdown().await;
        }
        Fault::Refused(status, body) => {
            let reply = format!(
                "HTTP/1.1 {status} Refused\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(reply.as_bytes()).await?;
            return client.shutdown().await;
        }
        Fault::Throttled(seconds) => {
            let reply = format!("HTTP/1.1 429 Too Many Requests\r\nRetry-After: {seconds}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            client.write_all(reply.as_bytes()).await?;
            return client.shutdown().await;
        }
        Fault::Slow(millis) => tokio::time::sleep(Duration::from_millis(millis)).await,
        Fault::CutRequestAt(_) | Fault::CutResponseAt(_) => {}
        Fault::Reset => return reset(client),
        Fault::ResetMidBody => {
            let mut buf = vec![0u8; 16 * 1024];
            let wait = std::time::Duration::from_millis(200);
            let _ = tokio::time::timeout(wait, client.read(&mut buf)).await;
            return reset(client);
        }
    }
    let mut upstream =
        TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], upstream_port))).await?;
    let mut request = with_connection_close(&text);
    request.extend_from_slice(&head[head_end + 4..]);
    match fault {
        Fault::CutRequestAt(limit) => cut_request(client, upstream, request, limit).await,
        Fault::CutResponseAt(limit) => cut_response(client, upstream, request, limit).await,
        _ => {
            upstream.write_all(&request).await?;
            tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
            Ok(())
        }
    }
}

/// Passes the request on and the first `limit` bytes of the answer back, then resets both sides:
/// the registry did the work, the client never hears it complete.
async fn cut_response(
    mut client: TcpStream,
    mut upstream: TcpStream,
    request: Vec<u8>,
    limit: usize,
) -> std::io::Result<()> {
    upstream.write_all(&request).await?;
    {
        let (mut from_client, mut to_client) = client.split();
        let (mut from_upstream, mut to_upstream) = upstream.split();
        let forward = tokio::io::copy(&mut from_client, &mut to_upstream);
        let answer = async {
            let mut part = Vec::new();
            let mut buf = [0u8; 4096];
            // At least the first byte: the registry has answered, so it has done the work.
            while part.len() < limit.max(1) {
                let n = from_upstream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                part.extend_from_slice(&buf[..n]);
            }
            part.truncate(limit);
            to_client.write_all(&part).await
        };
        tokio::select! {
            _ = forward => {}
            _ = answer => {}
        }
    }
    reset(upstream)?;
    reset(client)
}

/// Passes the first `limit` bytes of the request upstream (the part already read first), then
/// resets both sides: the registry sees a request cut short at that point.
async fn cut_request(
    mut client: TcpStream,
    mut upstream: TcpStream,
    mut request: Vec<u8>,
    limit: usize,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let wait = Duration::from_millis(500);
    while request.len() < limit {
        match tokio::time::timeout(wait, client.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => request.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    request.truncate(limit);
    upstream.write_all(&request).await?;
    upstream.flush().await?;
    reset(upstream)?;
    reset(client)
}

/// Reads until the end of the request head (the body may follow in the same buffer).
async fn read_head(client: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 8192];
    while find(&head, b"\r\n\r\n").is_none() && head.len() < 64 * 1024 {
        let n = client.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if !head[0].is_ascii_uppercase() {
            break; // not HTTP (a TLS handshake): the caller closes the connection
        }
    }
    Ok(head)
}

fn with_connection_close(head: &str) -> Vec<u8> {
    let mut out = String::new();
    for line in head.split("\r\n") {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// Closes with RST instead of FIN (linger 0), like a dropped connection.
fn reset(client: TcpStream) -> std::io::Result<()> {
    client.set_zero_linger()?;
    drop(client);
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
