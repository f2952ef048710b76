//! Resuming a cut upload where the registry allows it (distribution 2.8 does not, see docs/reliability.md):
//! a small fake registry that keeps the bytes of a cut PUT and reports them on GET, checked to
//! receive the rest as a PATCH from that offset and the whole blob under its digest.

use crate::support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the fake registry holds and saw.
#[derive(Default)]
struct Store {
    /// Upload sessions by id: the bytes received so far.
    sessions: BTreeMap<String, Vec<u8>>,
    blobs: BTreeMap<String, Vec<u8>>,
    /// `METHOD path [Content-Range]` of every request, in order.
    log: Vec<String>,
}

type Shared = Arc<Mutex<Store>>;

async fn serve(listener: TcpListener, store: Shared) {
    while let Ok((stream, _)) = listener.accept().await {
        let store = store.clone();
        tokio::spawn(async move {
            let _ = handle(stream, store).await;
        });
    }
}

async fn handle(mut stream: TcpStream, store: Shared) -> std::io::Result<()> {
    let mut data = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (
        first.next().unwrap_or_default(),
        first.next().unwrap_or_default(),
    );
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let range = headers.get("content-range").cloned().unwrap_or_default();
    store
        .lock()
        .unwrap()
        .log
        .push(format!("{method} {path} {range}").trim().to_string());
    let mut body = data[head_end + 4..].to_vec();
    let session = path.rsplit('/').next().unwrap_or_default().to_string();
    let first_put = method == "PUT"
        && path.contains("/uploads/")
        && length > 0
        && store
            .lock()
            .unwrap()
            .sessions
            .get(&session)
            .is_some_and(Vec::is_empty);
    // The first PUT with a body into a session is cut after half its bytes: those are kept.
    let wanted = if first_put { length / 2 } else { length };
    while body.len() < wanted {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    body.truncate(wanted);
    if first_put {
        store.lock().unwrap().sessions.insert(session, body);
        stream.set_zero_linger()?;
        return Ok(());
    }
    let reply = answer(&store, method, path, query, &session, body);
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

fn answer(
    store: &Shared,
    method: &str,
    path: &str,
    query: &str,
    session: &str,
    body: Vec<u8>,
) -> String {
    let mut store = store.lock().unwrap();
    let reply = |status: &str, extra: String| {
        format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n")
    };
    let location = |id: &str| format!("Location: /v2/resume/app/blobs/uploads/{id}\r\n");
    match (method, path) {
        ("GET", "/v2/") => reply("200 OK", String::new()),
        ("HEAD", p) if p.contains("/blobs/sha256:") => {
            let digest = p.rsplit('/').next().unwrap_or_default();
            match store.blobs.contains_key(digest) {
                true => reply("200 OK", String::new()),
                false => reply("404 Not Found", String::new()),
            }
        }
        ("POST", _) => {
            let id = format!("s{}", store.sessions.len());
            store.sessions.insert(id.clone(), Vec::new());
            reply("202 Accepted", location(&id))
        }
        ("GET", p) if p.contains("/uploads/") => match store.sessions.get(session) {
            Some(held) => reply(
                "204 No Content",
                format!(
                    "{}Range: 0-{}\r\n",
                    location(session),
                    held.len().saturating_sub(1)
                ),
            ),
            None => reply("404 Not Found", String::new()),
        },
        ("PATCH", _) => {
            let Some(held) = store.sessions.get_mut(session) else {
                return reply("404 Not Found", String::new());
            };
            held.extend_from_slice(&body);
            reply("202 Accepted", location(session))
        }
        ("PUT", p) if p.contains("/uploads/") => {
            let Some(mut held) = store.sessions.remove(session) else {
                return reply("404 Not Found", String::new());
            };
            held.extend_from_slice(&body);
            let digest = query
                .strip_prefix("digest=")
                .unwrap_or_default()
                .replace("%3A", ":");
            if format!("sha256:{}", hex::encode(sha2::Sha256::digest(&held))) != digest {
                return reply("400 Bad Request", String::new());
            }
            store.blobs.insert(digest, held);
            reply("201 Created", String::new())
        }
        ("HEAD", _) => reply("404 Not Found", String::new()),
        ("PUT", _) => reply("201 Created", String::new()),
        _ => reply("405 Method Not Allowed", String::new()),
    }
}

#[test]
fn a_cut_upload_resumes_with_a_patch_from_the_offset_the_registry_reports() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let store = Shared::default();
    runtime.spawn(serve(listener, store.clone()));

    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("layout");
    support::layout::generate(&dir, "1.0.0", 1, &[300_000]);
    let output = support::spin_aks_isolated(home.path())
        .args([
            "push",
            &format!("127.0.0.1:{port}/resume/app:1"),
            "--plain-http",
            "--jobs",
            "1",
        ])
        .args(["--output", "json", "--from-layout"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let json = crate::support::json_stdout(&output);

    let store = store.lock().unwrap();
    let patches: Vec<&String> = store
        .log
        .iter()
        .filter(|l| l.starts_with("PATCH"))
        .collect();
    let layer = support::layout::blobs(&dir)
        .into_values()
        .find(|b| b.len() == 300_000)
        .unwrap();
    // Config and layer: each first PUT is cut halfway, each goes on from there.
    assert_eq!(patches.len(), 2, "{:?}", store.log);
    assert!(
        patches.iter().any(|p| p.ends_with(" 150000-299999")),
        "{:?}",
        store.log
    );
    assert_eq!(store.blobs.len(), 2, "config and layer");
    assert!(
        store.blobs.values().any(|b| *b == layer),
        "the layer arrived whole"
    );
    assert!(json["retries"].as_u64().unwrap() >= 2, "{json}");
}
