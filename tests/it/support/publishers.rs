//! Stand-in "publishers" on loopback for the air-gap bundle tests: a registry holding images and
//! charts at their upstream paths, and a file server with Go module zips and shim archives, which
//! a test can cut off, recording every connection still made to them or through a forward proxy.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use spin_aks::oci::media_types::{IMAGE_CONFIG, IMAGE_INDEX, IMAGE_LAYER_TAR_GZIP, IMAGE_MANIFEST};

use super::fault_proxy::{Fault, FaultProxy};
use super::registry::Registry;
use super::rig::Rig;

/// The layer type of a cosign signature (sigstore/cosign pkg/types/media.go `SimpleSigningMediaType`).
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// The platforms of every stand-in image: OCI architecture and the shim archives' name for it.
pub const PLATFORMS: [(&str, &str); 2] = [("amd64", "x86_64"), ("arm64", "aarch64")];

/// The registry hosts always mapped to the stand-in by [`Publishers::registries_conf`].
const UPSTREAM_HOSTS: [&str; 2] = ["quay.io", "ghcr.io"];

/// The running stand-ins; everything stops and is removed on drop.
pub struct Publishers {
    registry: Option<Registry>,
    registry_port: u16,
    /// The file server's runtime: shutting it down closes the server's port.
    files: Option<tokio::runtime::Runtime>,
    files_port: u16,
    hosts: Vec<String>,
    /// After [`Publishers::cut_off`]: the refusing listeners on the two ports, and the forward proxy.
    stand_ins: Vec<(u16, FaultProxy)>,
    forward: Option<FaultProxy>,
    forwarded: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

impl Publishers {
    /// Starts the stand-ins (see the module docs and each argument's use below); `None` (skip
    /// outside CI) when docker-registry, the rig's chart registry or a module zip is missing.
    /// Call it outside any async runtime: it runs its own.
    pub fn start(
        rig: &Rig,
        images: &[(&str, &str)],
        charts: &[(&str, &str, &str)],
        modules: &[(&str, &str)],
        shim_version: &str,
    ) -> Option<Publishers> {
        let chart_registry = match rig.env("CHART_REGISTRY") {
            Some(registry) => registry,
            None if charts.is_empty() => String::new(),
            None => {
                super::skip(
                    "the rig has no chart registry (start it with --flux or --flux-on-install)",
                );
                return None;
            }
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("publishers' runtime");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut zips = Vec::new();
        for (path, version) in modules {
            zips.push((
                *path,
                *version,
                module_zip(rig, &runtime, &http, path, version)?,
            ));
        }
        let registry = Registry::open()?;
        let dir = tempfile::Builder::new()
            .prefix("spin-aks-publishers-")
            .tempdir()
            .unwrap();
        let oci = Oci {
            http,
            host: registry.host(),
        };
        runtime.block_on(async {
            for (n, (repository, tag)) in images.iter().enumerate() {
                let index = oci.push_stand_in(repository, tag).await;
                if n == 0 {
                    oci.push_signature(repository, &index).await;
                }
            }
            for (path, name, version) in charts {
                let from = format!("{chart_registry}/{name}:{version}");
                oci.copy(&from, &format!("{path}/{name}"), version).await;
            }
        });
        let root = dir.path().join("files");
        for (path, version, zip) in zips {
            write(
                &root.join(escape(path)).join(format!("@v/{version}.zip")),
                &zip,
            );
        }
        for (_, arch) in PLATFORMS {
            let name = format!("containerd-shim-spin-v2-linux-{arch}.tar.gz");
            let archive = shim_archive(shim_version, arch);
            write(&root.join("shim").join(shim_version).join(name), &archive);
        }
        let files_port = serve_files(&runtime, root);
        let mut hosts: Vec<String> = UPSTREAM_HOSTS.map(String::from).to_vec();
        let named = images.iter().map(|(r, _)| *r);
        for host in named.chain(charts.iter().map(|(p, _, _)| *p)) {
            let host = host.split('/').next().unwrap_or_default().to_string();
            if (host.contains('.') || host.contains(':')) && !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        Some(Publishers {
            registry_port: registry.port(),
            registry: Some(registry),
            files: Some(runtime),
            files_port,
            hosts,
            stand_ins: Vec::new(),
            forward: None,
            forwarded: Arc::default(),
            dir,
        })
    }

    /// `host:port` of the stand-in registry.
    pub fn registry(&self) -> String {
        format!("127.0.0.1:{}", self.registry_port)
    }

    /// `http://127.0.0.1:<port>`: the file server, a Go module proxy (`<path>/@v/<version>.zip`).
    pub fn module_proxy(&self) -> String {
        format!("http://127.0.0.1:{}", self.files_port)
    }

    /// Where the shim archives are: `<this>/<shim version>/containerd-shim-spin-v2-linux-<arch>.tar.gz`.
    pub fn shim_base(&self) -> String {
        format!("{}/shim", self.module_proxy())
    }

    /// A containers-registries.conf(5) (v2) mirroring each upstream host (quay.io, ghcr.io and
    /// the hosts the images and charts named) to `<registry>/<host>`, plain HTTP; its path.
    pub fn registries_conf(&self) -> PathBuf {
        let registry = self.registry();
        let mut conf = String::new();
        for host in &self.hosts {
            conf.push_str(&format!(
                "[[registry]]\nprefix = \"{host}\"\nlocation = \"{host}\"\n\n[[registry.mirror]]\nlocation = \"{registry}/{host}\"\ninsecure = true\n\n"
            ));
        }
        conf.push_str(&format!(
            "[[registry]]\nlocation = \"{registry}\"\ninsecure = true\n"
        ));
        let path = self.dir.path().join("registries.conf");
        std::fs::write(&path, conf).expect("write registries.conf");
        path
    }

    /// Stops the registry and the file server and puts on their ports listeners that record each
    /// connection and answer `503` (or close a non-HTTP one); starts a forward proxy that records
    /// every request and `CONNECT` and refuses it the same way. A second call changes nothing.
    pub fn cut_off(&mut self) {
        if self.forward.is_some() {
            return;
        }
        drop(self.registry.take());
        if let Some(runtime) = self.files.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
        // The refusing listeners never pass a request on: no upstream port is needed.
        let refuse =
            || -> Box<super::fault_proxy::Policy> { Box::new(|_, _, _| Fault::Unavailable) };
        for port in [self.registry_port, self.files_port] {
            let proxy = FaultProxy::serve(bind_again(port), 0, refuse());
            self.stand_ins.push((port, proxy));
        }
        let forwarded = self.forwarded.clone();
        let record = move |_: usize, method: &str, target: &str| {
            forwarded.lock().unwrap().push(format!("{method} {target}"));
            Fault::Unavailable
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind forward proxy");
        self.forward = Some(FaultProxy::serve(listener, 0, Box::new(record)));
    }

    /// The proxy variables for spin-aks after [`Publishers::cut_off`]: every proxy variable names
    /// the recording forward proxy, and loopback (the mirror, the rig) goes direct.
    pub fn proxy_env(&self) -> Vec<(String, String)> {
        let proxy = self
            .forward
            .as_ref()
            .expect("proxy_env is for after cut_off");
        let url = format!("http://{}", proxy.host());
        let mut env: Vec<(String, String)> =
            ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"]
                .map(|name| (name.to_string(), url.clone()))
                .to_vec();
        for name in ["NO_PROXY", "no_proxy"] {
            env.push((name.to_string(), "127.0.0.1,localhost".to_string()));
        }
        env
    }

    /// Everything recorded since [`Publishers::cut_off`]: `127.0.0.1:<port> connect` for each
    /// connection to a stopped publisher, then `CONNECT host:443` or `GET http://…` for each
    /// request to the forward proxy, and `<proxy> connect, no request` for a connection to it that
    /// sent none.
    pub fn outside_requests(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for (port, proxy) in &self.stand_ins {
            seen.extend((0..proxy.connections()).map(|_| format!("127.0.0.1:{port} connect")));
        }
        let forwarded = self.forwarded.lock().unwrap();
        seen.extend(forwarded.iter().cloned());
        // A connection to the forward proxy that sent no whole request (TLS spoken to it) counts too.
        if let Some(proxy) = &self.forward {
            let silent = proxy.connections().saturating_sub(forwarded.len());
            seen.extend((0..silent).map(|_| format!("{} connect, no request", proxy.host())));
        }
        seen
    }
}

impl Drop for Publishers {
    fn drop(&mut self) {
        if let Some(runtime) = self.files.take() {
            runtime.shutdown_background();
        }
    }
}

/// A module's zip as the Go command downloaded it (`<GOMODCACHE>/cache/download/…`), or from the
/// rig's `MODULE_PROXY`; `None` (skip) when neither has it.
fn module_zip(
    rig: &Rig,
    runtime: &tokio::runtime::Runtime,
    http: &reqwest::Client,
    path: &str,
    version: &str,
) -> Option<Vec<u8>> {
    let file = format!("{}/@v/{version}.zip", escape(path));
    if let Some(bytes) =
        go_mod_cache().and_then(|c| std::fs::read(c.join("cache/download").join(&file)).ok())
    {
        return Some(bytes);
    }
    let proxy = rig.env("MODULE_PROXY").unwrap_or_default();
    let fetched = runtime.block_on(async {
        let response = http.get(format!("{proxy}/{file}")).send().await.ok()?;
        let response = response.error_for_status().ok()?;
        response.bytes().await.ok()
    });
    if fetched.is_none() {
        super::skip(&format!(
            "the zip of {path}@{version} is neither in the Go module cache nor on the rig's module proxy (`go mod download {path}@{version}` fetches it)"
        ));
    }
    fetched.map(|bytes| bytes.to_vec())
}

/// The Go module cache (`go env GOMODCACHE`), when the Go command is there to say.
pub fn go_mod_cache() -> Option<PathBuf> {
    let output = std::process::Command::new("go")
        .args(["env", "GOMODCACHE"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let cache = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (!cache.is_empty()).then(|| PathBuf::from(cache))
}

/// A module path as the Go proxy protocol and module cache spell it: each capital letter as `!`
/// and its lower case (golang.org/x/mod module.EscapePath).
pub fn escape(path: &str) -> String {
    let mut escaped = String::new();
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            escaped.push('!');
            escaped.push(c.to_ascii_lowercase());
        } else {
            escaped.push(c);
        }
    }
    escaped
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A gzipped tar holding one file `name` (mode 0755, time 0): the same bytes for the same input.
fn tar_gz(name: &str, contents: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(contents.len() as u64);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, name, contents).unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    (tar, gz.finish().unwrap())
}

/// A release archive of the shim as upstream lays it out: `containerd-shim-spin-v2` at the top.
fn shim_archive(version: &str, arch: &str) -> Vec<u8> {
    let script = format!("#!/bin/sh\n# stand-in containerd-shim-spin-v2 {version} linux/{arch}\n");
    tar_gz("containerd-shim-spin-v2", script.as_bytes()).1
}

/// Serves the files under `root` over plain HTTP on a free loopback port of `runtime`; its port.
fn serve_files(runtime: &tokio::runtime::Runtime, root: PathBuf) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let _context = runtime.enter();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let root = Arc::new(root);
    super::serve_http(listener, move |req| {
        let root = root.clone();
        async move {
            let path = req.uri().path().trim_start_matches('/').to_string();
            let safe = !path.split('/').any(|part| part.is_empty() || part == "..");
            let file = safe.then(|| std::fs::read(root.join(&path)).ok()).flatten();
            let (status, body) = match file {
                Some(bytes) => (hyper::StatusCode::OK, bytes),
                None => (hyper::StatusCode::NOT_FOUND, b"not found\n".to_vec()),
            };
            hyper::Response::builder()
                .status(status)
                .header("content-type", "application/octet-stream")
                .body(http_body_util::Full::new(body.into()))
                .unwrap()
        }
    });
    port
}

/// Binds `port` again once the server that held it has gone (a few seconds at most).
fn bind_again(port: u16) -> std::net::TcpListener {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => return listener,
            Err(e) if Instant::now() > deadline => {
                panic!("cannot bind 127.0.0.1:{port} again: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": digest(bytes), "size": bytes.len()})
}

/// Plain-HTTP pushes and pulls of the distribution API, straight to a loopback registry.
struct Oci {
    http: reqwest::Client,
    host: String,
}

impl Oci {
    /// Uploads a blob (POST, then PUT with its digest); a blob already there is kept.
    async fn blob(&self, repository: &str, bytes: &[u8]) {
        let base = format!("http://{}/v2/{repository}/blobs", self.host);
        let head = self.http.head(format!("{base}/{}", digest(bytes)));
        if head.send().await.unwrap().status().is_success() {
            return;
        }
        let started = self
            .http
            .post(format!("{base}/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), 202, "start an upload to {repository}");
        let location = started.headers()["location"].to_str().unwrap().to_string();
        let location = match location.starts_with('/') {
            true => format!("http://{}{location}", self.host),
            false => location,
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = self
            .http
            .put(format!("{location}{separator}digest={}", digest(bytes)));
        let put = put.body(bytes.to_vec()).send().await.unwrap();
        assert_eq!(put.status(), 201, "upload a blob to {repository}");
    }

    /// Puts a manifest under `reference` (a tag or its digest).
    async fn manifest(&self, repository: &str, reference: &str, media_type: &str, bytes: &[u8]) {
        let url = format!("http://{}/v2/{repository}/manifests/{reference}", self.host);
        let put = self.http.put(url).header("content-type", media_type);
        let put = put.body(bytes.to_vec()).send().await.unwrap();
        assert_eq!(
            put.status(),
            201,
            "put the manifest {repository}:{reference}"
        );
    }

    /// A stand-in image at `repository:tag`: an index of one tiny image per platform, its layer
    /// naming the image and platform (so deterministic and distinct); the index's bytes.
    async fn push_stand_in(&self, repository: &str, tag: &str) -> Vec<u8> {
        let mut entries = Vec::new();
        for (architecture, _) in PLATFORMS {
            let text = format!("stand-in for {repository}:{tag} on linux/{architecture}\n");
            let (tar, layer) = tar_gz("stand-in.txt", text.as_bytes());
            let config = serde_json::to_vec(&json!({
                "architecture": architecture,
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [digest(&tar)]},
            }))
            .unwrap();
            let manifest = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": IMAGE_MANIFEST,
                "config": descriptor(IMAGE_CONFIG, &config),
                "layers": [descriptor(IMAGE_LAYER_TAR_GZIP, &layer)],
            }))
            .unwrap();
            self.blob(repository, &config).await;
            self.blob(repository, &layer).await;
            self.manifest(repository, &digest(&manifest), IMAGE_MANIFEST, &manifest)
                .await;
            let mut entry = descriptor(IMAGE_MANIFEST, &manifest);
            entry["platform"] = json!({"architecture": architecture, "os": "linux"});
            entries.push(entry);
        }
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": IMAGE_INDEX,
            "manifests": entries,
        }))
        .unwrap();
        self.manifest(repository, tag, IMAGE_INDEX, &index).await;
        index
    }

    /// A cosign-style signature of the index: a manifest tagged `sha256-<hex>.sig` whose one layer
    /// is the simple-signing payload, signed by a made-up signature annotation.
    async fn push_signature(&self, repository: &str, index: &[u8]) {
        let signed = digest(index);
        let payload = serde_json::to_vec(&json!({
            "critical": {
                "identity": {"docker-reference": repository},
                "image": {"docker-manifest-digest": signed},
                "type": "cosign container image signature",
            },
            "optional": null,
        }))
        .unwrap();
        let config = serde_json::to_vec(&json!({
            "architecture": "", "os": "", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [digest(&payload)]},
        }))
        .unwrap();
        let mut layer = descriptor(SIMPLE_SIGNING, &payload);
        layer["annotations"] = json!({"dev.cosignproject.cosign/signature": "c3RhbmQtaW4="});
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": IMAGE_MANIFEST,
            "config": descriptor(IMAGE_CONFIG, &config),
            "layers": [layer],
        }))
        .unwrap();
        self.blob(repository, &config).await;
        self.blob(repository, &payload).await;
        let tag = format!("{}.sig", signed.replace(':', "-"));
        self.manifest(repository, &tag, IMAGE_MANIFEST, &manifest)
            .await;
    }

    /// Copies the manifest `from` (`host:port/repository:tag`, another loopback registry) and its
    /// config and layers to `repository:tag` here, byte for byte.
    async fn copy(&self, from: &str, repository: &str, tag: &str) {
        let (source, reference) = from.rsplit_once(':').unwrap();
        let (host, name) = source.split_once('/').unwrap();
        let url = format!("http://{host}/v2/{name}/manifests/{reference}");
        let got = self
            .http
            .get(&url)
            .header("accept", IMAGE_MANIFEST)
            .send()
            .await
            .unwrap();
        assert!(
            got.status().is_success(),
            "{from} is not in the rig's chart registry: {}",
            got.status()
        );
        let media_type = got.headers()["content-type"].to_str().unwrap().to_string();
        let manifest = got.bytes().await.unwrap();
        let parsed: Value = serde_json::from_slice(&manifest).unwrap();
        let layers = parsed["layers"].as_array().cloned().unwrap_or_default();
        for blob in std::iter::once(&parsed["config"]).chain(&layers) {
            let digest = blob["digest"].as_str().unwrap();
            let url = format!("http://{host}/v2/{name}/blobs/{digest}");
            let bytes = self
                .http
                .get(url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            self.blob(repository, &bytes).await;
        }
        self.manifest(repository, tag, &media_type, &manifest).await;
    }
}
