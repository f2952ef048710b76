//! Shared test support: the real binary, Spin apps and OCI layouts, a real registry (with a
//! fault-injecting proxy and test TLS), and the independent readers (skopeo, umoci).

pub mod acr;
pub mod alone;
pub mod api_front;
pub mod apps;
pub mod arm;
pub mod arm_cli;
pub mod ci_oidc;
pub mod entra;
pub mod fault_proxy;
pub mod keyvault;
pub mod kubeapi;
pub mod layout;
pub mod loopback_tls;
pub mod pty;
pub mod publishers;
pub mod registry;
pub mod rig;
pub mod scaffold;
pub mod schema;
pub mod tls;
pub mod toxiproxy;
pub mod watch_cutter;

use std::path::{Path, PathBuf};
use std::process::Command;

/// An HTTP/1.1 reply of the loopback fakes.
pub type HttpReply = hyper::Response<http_body_util::Full<hyper::body::Bytes>>;

/// Serves plain HTTP/1.1 on `listener` in the background, each request answered by `handle`.
pub fn serve_http<F, Fut>(listener: tokio::net::TcpListener, handle: F)
where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = HttpReply> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let reply = handle(req);
                    async move { Ok::<_, std::convert::Infallible>(reply.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// A JSON answer as Azure services send it, with one service-specific header.
pub fn json_reply(
    status: hyper::StatusCode,
    body: &serde_json::Value,
    header: (&str, &str),
) -> HttpReply {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header(header.0, header.1)
        .body(http_body_util::Full::new(body.to_string().into()))
        .unwrap()
}

/// A request as the loopback fakes read it.
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: std::collections::HashMap<String, String>,
    /// The whole `Authorization` header.
    pub bearer: Option<String>,
    pub body: hyper::body::Bytes,
}

pub async fn receive(req: hyper::Request<hyper::body::Incoming>) -> Received {
    use http_body_util::BodyExt;
    let query = url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    Received {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query,
        bearer,
        body: req.into_body().collect().await.unwrap().to_bytes(),
    }
}

/// The `spin-aks` binary under test, with a private state file and cache.
pub fn spin_aks(home: &Path) -> assert_cmd::Command {
    assert_cmd::Command::from_std(spin_aks_std(home))
}

/// [`spin_aks`] as a plain `std::process::Command`, for a run whose standard streams the test
/// sets itself (assert_cmd pipes all three).
pub fn spin_aks_std(home: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("spin-aks"));
    cmd.env("SPIN_AKS_STATE_FILE", home.join("state"))
        .env("SPIN_AKS_CACHE_DIR", home.join("cache"))
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("SPIN_OCI_ARCHIVE_LAYERS")
        .env_remove("SPIN_BIN_PATH");
    cmd
}

/// Writes `text` into `dir/name` (a PEM, a config file): its path as a string, for an argument.
pub fn write_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// The path of an external tool (on PATH, or in the system directories, since some tests swap
/// PATH for fakes), or `None` (skipping) outside CI. Under `CI=true` a missing tool fails the
/// test: CI must never pass by skipping.
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let system = ["/usr/local/bin", "/usr/bin"].map(PathBuf::from);
    let found = std::env::split_paths(&path)
        .chain(system)
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        skip(&format!(
            "`{name}` is not installed (the README's test command installs it)"
        ));
    }
    found
}

/// How many times each fault scenario runs: `RELIABILITY_RUNS` (the nightly mode sets 10), else
/// once. A failing run's number is in its assertion messages, so it reproduces alone.
pub fn reliability_runs() -> usize {
    std::env::var("RELIABILITY_RUNS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(1)
}

/// The runs of a seeded fault scenario, `(run, seed)`: [`reliability_runs`] of them, run `n`
/// seeded `n - 1` (so the suite's one run is the same every time), or only the seed
/// `RELIABILITY_SEED` names, to repeat a failed run. Each run says its seed on stderr.
pub fn seeded_runs() -> impl Iterator<Item = (usize, u64)> {
    let only: Option<u64> = std::env::var("RELIABILITY_SEED")
        .ok()
        .and_then(|v| v.trim().parse().ok());
    let seeds: Vec<u64> = match only {
        Some(seed) => vec![seed],
        None => (0..reliability_runs() as u64).collect(),
    };
    (1..).zip(seeds).inspect(|(run, seed)| {
        eprintln!("run {run}, seed {seed} (RELIABILITY_SEED={seed} repeats it)");
    })
}

/// `count` points spread over `points`, one drawn in each of `count` equal bands with `seed`.
pub fn spread<T: Copy>(points: &[T], count: usize, seed: u64) -> Vec<T> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (points.chunks(points.len().div_ceil(count)))
        .map(|chunk| chunk[rng.random_range(0..chunk.len())])
        .collect()
}

/// The one way a test skips: under `CI=true` it fails (CI must never pass by skipping); elsewhere
/// it says so on stderr and appends `it::<area>::<test>: <why>` to `<target tmp>/skipped-tests`,
/// which `scripts/test.sh` counts and lists after the run. The caller then returns.
/// The binary that `scripts/<script> --check` names (a tool built from the Go module proxy and
/// cached outside the clone), or a skip (a failure under CI) saying that `what` is not built.
pub fn built_tool(script: &str, what: &str) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(script);
    let output = std::process::Command::new("bash")
        .arg(path)
        .arg("--check")
        .output()
        .unwrap();
    if !output.status.success() {
        skip(&format!(
            "{what} is not built (scripts/test.sh builds it: scripts/{script})"
        ));
        return None;
    }
    let named = String::from_utf8(output.stdout).unwrap();
    Some(std::path::PathBuf::from(named.trim()))
}

pub fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}: required under CI=true");
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    eprintln!("SKIPPED {test}: {why}");
    let record = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped-tests");
    // One write per line: tests of every area append at once (one process, many threads).
    let line = format!(
        "{}::{test}: {}\n",
        env!("CARGO_CRATE_NAME"),
        why.lines().next().unwrap_or("")
    );
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(record)
    {
        use std::io::Write;
        let _ = file.write_all(line.as_bytes());
    }
}

/// Runs a command, panicking with its output when it fails; returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Parses the single JSON object a `--output json` run printed, checked against its schema.
pub fn json_stdout(output: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    schema::check(&report);
    report
}

/// [`json_stdout`] for stdout already read.
pub fn json_report(stdout: impl AsRef<[u8]>) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(stdout.as_ref());
    let report = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout}"));
    schema::check(&report);
    report
}

/// Every blob in an OCI layout re-hashed equals its file name.
pub fn assert_blobs_match_names(layout: &Path) {
    use sha2::Digest;
    for entry in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let bytes = std::fs::read(entry.path()).unwrap();
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&bytes)),
            entry.file_name().to_string_lossy(),
            "blob {:?} is corrupt",
            entry.path()
        );
    }
}

/// The manifest digest the layout's index names.
pub fn layout_digest(layout: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// [`spin_aks`], also isolated from the user's home and Docker config, run from `home`.
pub fn spin_aks_isolated(home: &Path) -> assert_cmd::Command {
    let mut cmd = spin_aks(home);
    cmd.env("HOME", home)
        .env("DOCKER_CONFIG", home.join("docker"))
        .env_remove("SPIN_AKS_LOG")
        .current_dir(home);
    cmd
}

/// The body of GET / on the local port, retried for 10 s while a forwarder starts (curl stops at
/// the response's end; the tunnel stays open for the next request); `None` if nothing answered.
pub fn http_get_retrying(port: u16) -> Option<String> {
    for _ in 0..100 {
        let output = Command::new("curl")
            .args(["-sS", "-m", "10", &format!("http://127.0.0.1:{port}/")])
            .output()
            .unwrap();
        if output.status.success() {
            return Some(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

/// The raw manifest bytes skopeo reads for `reference` (`host:port/repo:tag`).
pub fn skopeo_raw_manifest(reference: &str, creds: Option<&str>) -> Vec<u8> {
    let mut cmd = Command::new("skopeo");
    cmd.args([
        "--insecure-policy",
        "inspect",
        "--raw",
        "--tls-verify=false",
    ]);
    if let Some(creds) = creds {
        cmd.args(["--creds", creds]);
    }
    let output = cmd
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo inspect {reference} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// True when skopeo finds `reference` in the registry.
pub fn skopeo_finds(reference: &str) -> bool {
    Command::new("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            "--raw",
            "--tls-verify=false",
        ])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo")
        .status
        .success()
}

/// Pulls `reference` into the OCI layout `dir` with skopeo.
pub fn skopeo_copy_to_layout(reference: &str, dir: &Path) {
    let output = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:pulled", dir.display()))
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo copy {reference} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Serves `body` once over plain HTTP, in `chunks` parts with `pause` before each: a slow server
/// that keeps sending. Returns the URL of `/<path>`.
pub fn serve_slowly(
    body: Vec<u8>,
    chunks: usize,
    pause: std::time::Duration,
    path: &str,
) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/{path}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let Some(Ok(mut stream)) = listener.incoming().next() else {
            return;
        };
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        for part in body.chunks(body.len().div_ceil(chunks.max(1)).max(1)) {
            std::thread::sleep(pause);
            let _ = stream.write_all(part);
            let _ = stream.flush();
        }
    });
    url
}

/// A loopback address that accepts connections and never answers (each one held open until the
/// test process ends): a stalled server.
pub fn silent_server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.extend(stream.ok());
        }
    });
    address
}

/// Serves `body` over plain HTTP on a loopback port for `requests` requests; returns the URL of
/// `/<path>` (any path gets the body).
pub fn serve_bytes(body: Vec<u8>, requests: usize, path: &str) -> String {
    let (base, _) = serve_answer("200 OK", "", body, requests);
    format!("{base}/{path}")
}

/// Answers the first `requests` requests on a loopback port, whatever they ask, with `status`
/// (`500 Internal Server Error`), the header lines `headers` (each ending in `\r\n`) and `body`;
/// returns `http://<address>` and the count of requests received so far.
pub fn serve_answer(
    status: &str,
    headers: &str,
    body: Vec<u8>,
    requests: usize,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n",
        body.len()
    );
    let count = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            // The client may have gone (a timeout); the next request is answered all the same.
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (base, received)
}
