//! Debian's `docker-registry` (CNCF distribution) on a free loopback port, storage and config in
//! a temp dir, killed on drop. Modes: open, htpasswd, or any `auth:` block (token mode); its
//! access log, when asked for, lists the requests it served.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub const BINARY: &str = "docker-registry";

/// A running registry.
pub struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// What to put in the registry's config.
#[derive(Default)]
pub struct RegistryConfig {
    /// The body of the `auth:` section, indented by two spaces per level below `auth:`;
    /// `{dir}` stands for the registry's temp dir (where [`RegistryConfig::file`]s go).
    auth: Option<String>,
    files: Vec<(String, Vec<u8>)>,
    tls: bool,
    public_url: Option<String>,
    access_log: bool,
}

impl RegistryConfig {
    pub fn open() -> Self {
        RegistryConfig::default()
    }

    /// An `auth:` block, e.g. `"  token:\n    rootcertbundle: {dir}/root.pem\n"`.
    pub fn auth(mut self, block: impl Into<String>) -> Self {
        self.auth = Some(block.into());
        self
    }

    /// Serve HTTPS with this PEM certificate chain and key.
    pub fn tls(self, certificate: &str, key: &str) -> Self {
        let mut config = self.file("tls.crt", certificate).file("tls.key", key);
        config.tls = true;
        config
    }

    /// The URL clients reach the registry at (`http.host`), when a proxy fronts it: upload
    /// `Location`s then point back at the front.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Log every request served ([`Registry::requests`]).
    pub fn access_log(mut self) -> Self {
        self.access_log = true;
        self
    }

    /// A file written into the registry's temp dir before it starts.
    pub fn file(mut self, name: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((name.to_string(), contents.into()));
        self
    }
}

impl Registry {
    /// An open registry, or `None` (skip) when the binary is missing outside CI.
    pub fn open() -> Option<Self> {
        Self::start(RegistryConfig::open())
    }

    /// A registry that requires `user`/`password` (bcrypt htpasswd).
    pub fn htpasswd(user: &str, password: &str) -> Option<Self> {
        let hash = bcrypt::hash(password, 5).expect("bcrypt");
        Self::start(
            RegistryConfig::open()
                .file("htpasswd", format!("{user}:{hash}\n"))
                .auth("  htpasswd:\n    realm: spin-aks-test\n    path: {dir}/htpasswd\n"),
        )
    }

    pub fn start(config: RegistryConfig) -> Option<Self> {
        let binary = super::tool(BINARY)?;
        let dir = tempfile::tempdir().expect("registry dir");
        let port = free_port();
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: {}\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: spin-aks-test-secret\n",
            !config.access_log,
            dir.path().join("storage").display()
        );
        if let Some(url) = &config.public_url {
            yaml.push_str(&format!("  host: {url}\n"));
        }
        if config.tls {
            yaml.push_str(&format!(
                "  tls:\n    certificate: {0}/tls.crt\n    key: {0}/tls.key\n",
                dir.path().display()
            ));
        }
        for (name, contents) in &config.files {
            std::fs::write(dir.path().join(name), contents).expect("write registry file");
        }
        if let Some(auth) = &config.auth {
            yaml.push_str("auth:\n");
            yaml.push_str(&auth.replace("{dir}", &dir.path().display().to_string()));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, yaml).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
        // distribution writes its access log to stdout (registry/registry.go, v2.8.2:169-170).
        let access = std::fs::File::create(dir.path().join("access.log")).expect("access log");
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdout(access)
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let registry = Registry { child, port, dir };
        registry.wait_until_ready();
        Some(registry)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `METHOD /path?query` of every request served so far, in order, from the access log of a
    /// registry started with [`RegistryConfig::access_log`]; the readiness probe left out.
    pub fn requests(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        log.lines()
            .filter_map(|line| line.split('"').nth(1))
            .filter_map(|request| request.rsplit_once(' ').map(|(r, _)| r.to_string()))
            .filter(|request| request != "GET /v2/")
            .collect()
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ =
                    stream.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut reply = String::new();
                let _ = stream.read_to_string(&mut reply);
                // 200/401, or a TLS registry's 400 answer to plain HTTP: it is serving.
                if reply.starts_with("HTTP/1.") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not answer on port {}: {}",
            self.port,
            self.log()
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// One request straight to the registry (`Connection: close`, OCI manifests and indexes
/// accepted); its status code.
pub fn request(host: &str, method: &str, path: &str) -> u16 {
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {reply}"))
}
