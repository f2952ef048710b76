//! A loopback proxy in front of a registry injecting per-request faults (503, 401, resets before or
//! mid-body); each forwarded request gets `Connection: close`, so every request meets the policy.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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
}

/// Decides the fault for request number `n` (from 0), given its method and path.
pub type Policy = dyn Fn(usize, &str, &str) -> Fault + Send + Sync;

/// A running proxy; stops when dropped (its runtime is shut down).
pub struct FaultProxy {
    port: u16,
    requests: Arc<AtomicUsize>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    pub fn start(upstream_port: u16, policy: Box<Policy>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let policy: Arc<Policy> = Arc::from(policy);
        let counter = requests.clone();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
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
    match policy(n, &method, &path) {
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
    upstream.write_all(&with_connection_close(&text)).await?;
    upstream.write_all(&head[head_end + 4..]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
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
