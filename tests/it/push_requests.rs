//! The requests a push sends. Into a new repository of the real registry: a HEAD for only the
//! first two small blobs, one single-POST try per push (distribution 2.8 answers it with a
//! session), then a POST and a PUT per blob; the warm re-push is its manifest HEAD alone; a new
//! tag in a repository with tags, and large blobs in an untagged one, are still asked about. A
//! stand-in that takes single POSTs gets one request per small blob; one that refuses them with
//! an error gets one refused POST per push, however many blobs are in flight.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use serde_json::Value;
use sha2::Digest as _;

use crate::support::fault_proxy::{Fault, FaultProxy};
use crate::support::registry::{self, Registry, RegistryConfig};
use crate::support::{layout, skopeo_copy_to_layout};

/// Small blobs (at most 256 KiB each): a push may send these without asking first.
const SMALL: &[usize] = &[64, 700, 4096, 20_000];

/// Runs `push --output json` of the layout at `dir` to `reference`; (exit code, report, stderr).
fn push(home: &Path, reference: &str, dir: &Path, extra: &[&str]) -> (i32, Value, String) {
    let output = support::spin_aks_isolated(home)
        .args(["push", reference, "--output", "json", "--from-layout"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json = match output.status.success() {
        true => support::json_stdout(&output),
        false => Value::Null,
    };
    (output.status.code().unwrap_or(-1), json, stderr)
}

/// The requests by kind: `HEAD manifest`, `GET tags`, `HEAD blob`, `POST single` (with
/// `?digest=`), `POST`, `PUT blob`, `PUT manifest`, or the request itself when none fits.
fn kinds(requests: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for request in requests {
        let kind = match request.split_once(' ') {
            Some(("HEAD", p)) if p.contains("/manifests/") => "HEAD manifest",
            Some(("GET", p)) if p.contains("/tags/list") => "GET tags",
            Some(("HEAD", p)) if p.contains("/blobs/") => "HEAD blob",
            Some(("POST", p)) if p.contains("digest=") => "POST single",
            Some(("POST", _)) => "POST",
            Some(("PUT", p)) if p.contains("/blobs/uploads/") => "PUT blob",
            Some(("PUT", p)) if p.contains("/manifests/") => "PUT manifest",
            _ => request.as_str(),
        };
        *counts.entry(kind.to_string()).or_default() += 1;
    }
    counts
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

#[test]
fn a_cold_push_into_a_new_repository_asks_about_two_blobs_then_posts_and_puts_each() {
    let (Some(_), Some(registry)) = (
        support::tool("skopeo"),
        Registry::start(RegistryConfig::open().access_log()),
    ) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("layout");
    layout::generate(&dir, "1.0.0", 30, SMALL);
    let reference = format!("{}/requests/app:1", registry.host());

    let (code, json, stderr) = push(home.path(), &reference, &dir, &["--jobs", "8"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["blobs_uploaded"], 31, "{json}");
    let cold = registry.requests();
    // The tag is not there, the registry lists no tag in the repository (404 NAME_UNKNOWN,
    // registry/handlers/tags.go, v2.8.2:35-46) and lacks the first two blobs, so no other blob is
    // asked about. distribution's POST ignores `digest` and the body and opens a session
    // (registry/handlers/blobupload.go, v2.8.2:107-145): one single-POST try, then POST and PUT
    // for each of the 31 blobs.
    assert_eq!(
        kinds(&cold),
        counts(&[
            ("HEAD manifest", 1),
            ("GET tags", 1),
            ("HEAD blob", 2),
            ("POST single", 1),
            ("POST", 30),
            ("PUT blob", 31),
            ("PUT manifest", 1),
        ]),
        "{cold:#?}"
    );
    let pulled = home.path().join("pulled");
    skopeo_copy_to_layout(&reference, &pulled);
    assert_eq!(
        support::layout_digest(&pulled),
        support::layout_digest(&dir)
    );

    // Warm: the manifest HEAD is the whole push.
    let before = registry.requests().len();
    let (code, json, stderr) = push(home.path(), &reference, &dir, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["blobs_skipped"], 31, "{json}");
    let warm = registry.requests()[before..].to_vec();
    assert_eq!(kinds(&warm), counts(&[("HEAD manifest", 1)]), "{warm:#?}");

    // A new tag in a repository with tags: every blob is asked about, none is sent again.
    let reference = format!("{}/requests/app:2", registry.host());
    let before = registry.requests().len();
    let (code, json, stderr) = push(home.path(), &reference, &dir, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["blobs_skipped"], 31, "{json}");
    let retag = registry.requests()[before..].to_vec();
    assert_eq!(
        kinds(&retag),
        counts(&[
            ("HEAD manifest", 1),
            ("GET tags", 1),
            ("HEAD blob", 31),
            ("PUT manifest", 1),
        ]),
        "{retag:#?}"
    );
}

#[test]
fn an_untagged_repository_whose_first_small_blobs_are_gone_gets_only_its_small_blobs_again() {
    let (Some(_), Some(registry)) = (
        support::tool("skopeo"),
        Registry::start(RegistryConfig::open().access_log()),
    ) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("layout");
    // Layers: large, small, small, large, small, small; the config (small) goes first.
    layout::generate(&dir, "1.0.0", 6, &[300_000, 4096, 700]);
    // The first push stores every blob, then its manifest PUT fails: the repository holds the
    // blobs and no tag.
    let proxy = FaultProxy::start(
        registry.port(),
        Box::new(
            |_, method, path| match method == "PUT" && path.contains("/manifests/") {
                true => Fault::Unavailable,
                false => Fault::Pass,
            },
        ),
    );
    let through = format!("{}/untagged/app:1", proxy.host());
    let (code, _, stderr) = push(home.path(), &through, &dir, &["--retry-budget", "1s"]);
    assert_eq!(code, 1, "{stderr}");
    // The first two small blobs in push order, which a push asks about, are taken away: the
    // repository now looks new though it holds the other five.
    let manifest = manifest(&dir);
    for digest in [
        &manifest["config"]["digest"],
        &manifest["layers"][1]["digest"],
    ] {
        let path = format!("/v2/untagged/app/blobs/{}", digest.as_str().unwrap());
        assert_eq!(registry::request(&registry.host(), "DELETE", &path), 202);
    }
    let before = registry.requests().len();

    let reference = format!("{}/untagged/app:1", registry.host());
    let (code, json, stderr) = push(home.path(), &reference, &dir, &[]);
    assert_eq!(code, 0, "{stderr}");
    // The guess was wrong for the small blobs still there: they go again, a redundant upload the
    // registry accepts (registry/storage/blobwriter.go, v2.8.2:304-318). The large ones are
    // asked about and not sent.
    assert_eq!(json["blobs_skipped"], 2, "{json}");
    assert_eq!(json["blobs_uploaded"], 5, "{json}");
    assert!(json["bytes_uploaded"].as_u64().unwrap() < 300_000, "{json}");
    let again = kinds(&registry.requests()[before..]);
    assert_eq!(
        again["HEAD blob"], 4,
        "the two asked first, the two large: {again:?}"
    );
    let pulled = home.path().join("pulled");
    skopeo_copy_to_layout(&reference, &pulled);
    assert_eq!(
        support::layout_digest(&pulled),
        support::layout_digest(&dir)
    );
}

/// The image manifest of the layout at `dir`.
fn manifest(dir: &Path) -> Value {
    let digest = support::layout_digest(dir);
    let hex = digest.trim_start_matches("sha256:");
    serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap()).unwrap()
}

/// A registry held in memory that takes single POSTs, or refuses them with `refuse`'s status.
#[derive(Default)]
struct StandIn {
    refuse: Option<u16>,
    blobs: BTreeMap<String, Vec<u8>>,
    sessions: usize,
    /// `METHOD path?query` of every request.
    log: Vec<String>,
}

/// Serves `stand_in` on a loopback port of `runtime`; returns `127.0.0.1:<port>`.
fn serve(runtime: &tokio::runtime::Runtime, stand_in: Arc<Mutex<StandIn>>) -> String {
    let _entered = runtime.enter();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let host = listener.local_addr().unwrap().to_string();
    support::serve_http(listener, move |request| {
        let stand_in = stand_in.clone();
        async move {
            let method = request.method().to_string();
            let target = request.uri().to_string();
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let (status, location) = answer(&mut stand_in.lock().unwrap(), &method, &target, &body);
            let mut reply = hyper::Response::builder().status(status);
            if let Some(location) = location {
                reply = reply.header("location", location);
            }
            reply.body(http_body_util::Full::default()).unwrap()
        }
    });
    host
}

/// The stand-in's status (and `Location`) for one request.
fn answer(s: &mut StandIn, method: &str, target: &str, body: &[u8]) -> (u16, Option<String>) {
    s.log.push(format!("{method} {target}"));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let digest = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("digest="))
        .map(|d| d.replace("%3A", ":"));
    let mut store = |digest: String, bytes: &[u8]| {
        if format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes))) != digest {
            return (400, None);
        }
        s.blobs.insert(digest.clone(), bytes.to_vec());
        (201, Some(format!("/v2/stand/in/blobs/{digest}")))
    };
    match (method, path) {
        ("POST", p) if p.ends_with("/blobs/uploads/") => match (digest, s.refuse) {
            (Some(_), Some(status)) => (status, None),
            (Some(digest), None) => store(digest, body),
            (None, _) => {
                s.sessions += 1;
                (
                    202,
                    Some(format!("/v2/stand/in/blobs/uploads/{}", s.sessions)),
                )
            }
        },
        ("PUT", p) if p.contains("/blobs/uploads/") => store(digest.unwrap_or_default(), body),
        ("PUT", p) if p.contains("/manifests/") => (201, None),
        _ => (404, None),
    }
}

/// Pushes 9 small layers and a config to a stand-in refusing single POSTs with `refuse`; returns
/// the stand-in's requests by kind.
fn push_to_stand_in(refuse: Option<u16>) -> BTreeMap<String, usize> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stand_in = Arc::new(Mutex::new(StandIn {
        refuse,
        ..StandIn::default()
    }));
    let host = serve(&runtime, stand_in.clone());
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("layout");
    layout::generate(&dir, "1.0.0", 9, SMALL);
    let reference = format!("{host}/stand/in:1");
    let (code, json, stderr) = push(
        home.path(),
        &reference,
        &dir,
        &["--plain-http", "--jobs", "8"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["blobs_uploaded"], 10, "{json}");
    let stand_in = stand_in.lock().unwrap();
    assert_eq!(
        stand_in.blobs.len(),
        10,
        "every blob, checked against its digest"
    );
    kinds(&stand_in.log)
}

#[test]
fn a_registry_that_takes_single_posts_gets_one_request_per_small_blob() {
    assert_eq!(
        push_to_stand_in(None),
        counts(&[
            ("HEAD manifest", 1),
            ("GET tags", 1),
            ("HEAD blob", 2),
            ("POST single", 10),
            ("PUT manifest", 1),
        ])
    );
}

#[test]
fn a_registry_that_refuses_single_posts_with_an_error_gets_one_per_push_then_post_and_put() {
    // Eight blobs in flight at once: they wait for the first single POST's answer, not each try.
    assert_eq!(
        push_to_stand_in(Some(405)),
        counts(&[
            ("HEAD manifest", 1),
            ("GET tags", 1),
            ("HEAD blob", 2),
            ("POST single", 1),
            ("POST", 10),
            ("PUT blob", 10),
            ("PUT manifest", 1),
        ])
    );
}
