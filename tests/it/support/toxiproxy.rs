//! Shopify's Toxiproxy (scripts/build-toxiproxy.sh) as a test part: a server on a free loopback
//! port, killed on drop, and TCP proxies with toxics (cuts, resets, stalls, latency) set over its HTTP API.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The seed of the server's randomness (toxicity, latency jitter): fixed, so a failure reproduces.
pub const SEED: u64 = 32;

/// A running `toxiproxy-server`.
pub struct Toxiproxy {
    api: u16,
    child: Child,
}

/// The binary scripts/build-toxiproxy.sh built, or a skip (a failure under CI).
fn binary() -> Option<PathBuf> {
    super::built_tool("build-toxiproxy.sh", "toxiproxy")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Toxiproxy {
    /// Starts the server on a free loopback port; `None` (skip) when it is not built.
    pub fn start() -> Option<Toxiproxy> {
        Self::start_seeded(SEED)
    }

    /// [`Toxiproxy::start`] with the server's randomness seeded `seed` (a seeded run's own).
    pub fn start_seeded(seed: u64) -> Option<Toxiproxy> {
        let binary = binary()?;
        let api = free_port();
        let child = Command::new(binary)
            .args(["-host", "127.0.0.1", "-port", &api.to_string()])
            .args(["-seed", &seed.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start toxiproxy-server");
        let server = Toxiproxy { api, child };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", api)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "toxiproxy-server did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    /// Sends one request to the API; panics unless it answers 2xx. The answer's JSON (or null).
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut stream = TcpStream::connect(("127.0.0.1", self.api)).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (head, rest) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head.split(' ').nth(1).unwrap_or_default();
        assert!(
            status.starts_with('2'),
            "toxiproxy {method} {path}: {head}\n{rest}"
        );
        serde_json::from_str(rest).unwrap_or(Value::Null)
    }

    /// The port of its HTTP API (for a rig that makes a proxy of its own: `--etcd-toxiproxy`).
    pub fn api_port(&self) -> u16 {
        self.api
    }

    /// The proxy named `name` that another program made on this server.
    pub fn existing(&self, name: &str) -> Proxy<'_> {
        let found = self.call("GET", &format!("/proxies/{name}"), None);
        self.handle(name, &found)
    }

    fn handle(&self, name: &str, proxy: &Value) -> Proxy<'_> {
        let listen = proxy["listen"].as_str().expect("the proxy's address");
        let port = listen.rsplit(':').next().unwrap().parse().unwrap();
        Proxy {
            server: self,
            name: name.to_string(),
            port,
        }
    }

    /// A proxy on a free loopback port passing TCP to `127.0.0.1:<upstream>`.
    pub fn proxy(&self, name: &str, upstream: u16) -> Proxy<'_> {
        let made = self.call(
            "POST",
            "/proxies",
            Some(&json!({
                "name": name,
                "listen": "127.0.0.1:0",
                "upstream": format!("127.0.0.1:{upstream}"),
                "enabled": true,
            })),
        );
        self.handle(name, &made)
    }
}

impl Drop for Toxiproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which way a toxic acts: on what the server sends (`Downstream`) or what the client sends.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    Downstream,
    Upstream,
}

/// One proxy of a [`Toxiproxy`].
pub struct Proxy<'a> {
    server: &'a Toxiproxy,
    name: String,
    /// The loopback port it listens on.
    pub port: u16,
}

impl Proxy<'_> {
    /// Adds toxic `kind` (`reset_peer`, `timeout`, `latency`, `bandwidth`, `limit_data`,
    /// `slicer`) with these attributes to every connection, open or new; named `<kind>_<stream>`.
    pub fn add(&self, kind: &str, stream: Stream, attributes: Value) -> String {
        let stream = match stream {
            Stream::Downstream => "downstream",
            Stream::Upstream => "upstream",
        };
        let name = format!("{kind}_{stream}");
        self.server.call(
            "POST",
            &format!("/proxies/{}/toxics", self.name),
            Some(&json!({
                "name": name,
                "type": kind,
                "stream": stream,
                "toxicity": 1.0,
                "attributes": attributes,
            })),
        );
        name
    }

    /// Removes a toxic [`Proxy::add`] named.
    pub fn remove(&self, toxic: &str) {
        self.server.call(
            "DELETE",
            &format!("/proxies/{}/toxics/{toxic}", self.name),
            None,
        );
    }

    /// Disabling closes every connection and the listener; enabling listens on the same port again.
    pub fn set_enabled(&self, enabled: bool) {
        self.server.call(
            "POST",
            &format!("/proxies/{}", self.name),
            Some(&json!({ "enabled": enabled })),
        );
    }
}
