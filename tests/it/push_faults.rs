//! `spin-aks push` through the seeded fault front (cuts anywhere in a request or its answer, 503s,
//! 429 with Retry-After, slow answers) and through Toxiproxy's TCP faults (latency, resets, cuts
//! after N bytes, stalls, sliced streams): every push completes, reports its retries, and the tag only
//! ever names an image whose every blob the registry holds; a registry that stays down fails in time.
//! Each scenario runs once per [`support::seeded_runs`] (the nightly mode: 10 seeds).

use crate::support;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::fault_proxy::{self, Fault, FaultMix, FaultProxy};
use crate::support::registry::{Registry, RegistryConfig};
use crate::support::toxiproxy::{self, Proxy, Stream, Toxiproxy};
use crate::support::{layout, skopeo_copy_to_layout, skopeo_finds, spin_aks_isolated};
use serde_json::{json, Value};

/// Small blobs: the test is about requests failing, not bytes.
const SIZES: &[usize] = &[64, 700, 4096, 20_000];

/// Runs `push --output json`; returns (exit code, parsed stdout or Null, stderr).
fn push(home: &Path, args: &[&str]) -> (i32, Value, String) {
    let output = spin_aks_isolated(home)
        .arg("push")
        .args(args)
        .args(["--output", "json", "--verbose"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json = match output.status.success() {
        true => crate::support::json_stdout(&output),
        false => Value::Null,
    };
    (output.status.code().unwrap_or(-1), json, stderr)
}

/// Pulls `reference` with skopeo (which checks every blob against its digest) and returns the
/// pulled layout's manifest digest.
fn pulled_digest(home: &Path, reference: &str, name: &str) -> String {
    let dir = home.join(name);
    skopeo_copy_to_layout(reference, &dir);
    support::layout_digest(&dir)
}

#[test]
fn ten_pushes_of_130_blobs_through_20_percent_cuts_and_10_percent_503s_all_complete() {
    let (Some(_), Some(registry)) = (support::tool("skopeo"), Registry::open()) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let mix = FaultMix {
        cut: 0.2,
        unavailable: 0.1,
        ..FaultMix::default()
    };
    for (_, seed) in support::seeded_runs() {
        // Ten seeded pushes, side by side: each its own fault sequence and repository, all must pass.
        std::thread::scope(|scope| {
            for push in seed * 10..seed * 10 + 10 {
                let (home, registry) = (home.path(), &registry);
                scope.spawn(move || faulty_push(home, registry, push, mix));
            }
        });
    }
}

/// One push of 130 blobs through a front seeded with `run`, checked by a skopeo pull.
fn faulty_push(home_path: &Path, registry: &Registry, run: u64, mix: FaultMix) {
    let proxy = FaultProxy::start(registry.port(), fault_proxy::seeded(run, mix));
    let dir = home_path.join(format!("layout-{run}"));
    layout::generate(&dir, "1.0.0", 129, SIZES);
    let repository = format!("faults/app-{run}:1");
    let (code, json, stderr) = push(
        home_path,
        &[
            &format!("{}/{repository}", proxy.host()),
            "--from-layout",
            dir.to_str().unwrap(),
            "--jobs",
            "16",
        ],
    );
    assert_eq!(code, 0, "run {run} failed: {stderr}");
    let sent = json["blobs_uploaded"].as_u64().unwrap() + json["blobs_skipped"].as_u64().unwrap();
    assert_eq!(sent, 130, "run {run}: {json}");
    assert!(json["retries"].as_u64().unwrap() > 0, "run {run}: {json}");
    assert!(
        stderr.contains("retrying in"),
        "--verbose shows retries: {stderr}"
    );
    let pulled = pulled_digest(
        home_path,
        &format!("{}/{repository}", registry.host()),
        &format!("pulled-{run}"),
    );
    assert_eq!(pulled, json["digest"].as_str().unwrap(), "run {run}");
    assert_eq!(pulled, support::layout_digest(&dir), "run {run}");
}

#[test]
fn throttling_with_retry_after_is_waited_out_and_counted() {
    let (Some(_), Some(registry)) = (support::tool("skopeo"), Registry::open()) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    for (_, seed) in support::seeded_runs() {
        // Three requests in a row after the connection check, from the seed's on, are throttled
        // for a second each.
        let first = 1 + seed as usize % 3;
        let proxy = FaultProxy::start(
            registry.port(),
            Box::new(move |n, _, _| match n {
                n if (first..first + 3).contains(&n) => Fault::Throttled(1),
                _ => Fault::Pass,
            }),
        );
        let dir = home.path().join(format!("layout-{seed}"));
        layout::generate(&dir, "1.0.0", 3, SIZES);
        let (code, json, stderr) = push(
            home.path(),
            &[
                &format!("{}/throttled-{seed}/app:1", proxy.host()),
                "--from-layout",
                dir.to_str().unwrap(),
                "--jobs",
                "1",
            ],
        );
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(json["retries"], 3, "{json}");
        assert!(stderr.contains("429 Too Many Requests"), "{stderr}");
        assert!(
            stderr.contains("retrying in 1.0s"),
            "Retry-After honoured: {stderr}"
        );
    }
}

#[test]
fn a_registry_that_stays_down_fails_within_the_budget_with_the_last_error_and_no_tag() {
    let (Some(_), Some(registry)) = (support::tool("skopeo"), Registry::open()) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    for (_, seed) in support::seeded_runs() {
        // Up for the connection check (and, by the seed, up to two first HEADs), then every
        // request is answered 503.
        let up_to = seed as usize % 3;
        let proxy = FaultProxy::start(
            registry.port(),
            Box::new(move |n, _, _| match n <= up_to {
                true => Fault::Pass,
                false => Fault::Unavailable,
            }),
        );
        let dir = home.path().join(format!("layout-{seed}"));
        layout::generate(&dir, "1.0.0", 5, SIZES);
        let repository = format!("down-{seed}/app:1");
        let (code, _, stderr) = push(
            home.path(),
            &[
                &format!("{}/{repository}", proxy.host()),
                "--from-layout",
                dir.to_str().unwrap(),
                "--retry-budget",
                "2s",
            ],
        );
        assert_eq!(code, 1, "{stderr}");
        let error = stderr
            .lines()
            .find(|line| line.starts_with("error:"))
            .unwrap_or_default();
        assert!(error.contains("503 Service Unavailable"), "{stderr}");
        assert!(error.contains("gave up after"), "{stderr}");
        assert!(!skopeo_finds(&format!("{}/{repository}", registry.host())));
    }
}

#[test]
fn a_blob_that_arrived_although_its_answer_was_cut_is_not_sent_again() {
    let (Some(_), Some(registry)) = (support::tool("skopeo"), Registry::open()) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    for (_, seed) in support::seeded_runs() {
        // Every blob upload's answer is cut: the registry has the blob, the client never hears so.
        let uploads = Arc::new(AtomicUsize::new(0));
        let seen = uploads.clone();
        let proxy = FaultProxy::start(
            registry.port(),
            Box::new(move |_, method, path| {
                if method == "PUT" && path.contains("/blobs/uploads/") {
                    seen.fetch_add(1, Ordering::SeqCst);
                    Fault::CutResponseAt(0)
                } else {
                    Fault::Pass
                }
            }),
        );
        // 4 to 7 layers, by the seed; and the config.
        let layers = 4 + seed as usize % 4;
        let dir = home.path().join(format!("layout-{seed}"));
        layout::generate(&dir, "1.0.0", layers, SIZES);
        let repository = format!("cut-{seed}/app:1");
        let (code, json, stderr) = push(
            home.path(),
            &[
                &format!("{}/{repository}", proxy.host()),
                "--from-layout",
                dir.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(
            uploads.load(Ordering::SeqCst),
            layers + 1,
            "one PUT per blob"
        );
        assert_eq!(json["retries"], layers + 1, "{json}");
        let pulled = pulled_digest(
            home.path(),
            &format!("{}/{repository}", registry.host()),
            &format!("pulled-{seed}"),
        );
        assert_eq!(pulled, json["digest"].as_str().unwrap());
    }
}

/// A Toxiproxy fault (TCP) on the registry's connections during a push.
#[derive(Clone, Copy, Debug)]
enum Toxic {
    /// 30 ms (± 20 ms) each way on every connection, for the whole push.
    Latency,
    /// Connections reset (RST) as soon as a byte passes, for 1.5 s mid-push, then removed.
    Reset,
    /// Each connection closed once it carried 24 to 45 kB up (inside a blob's upload) or 3 to
    /// 5 kB down (inside an answer), for the whole push.
    LimitData,
    /// What the registry sends held (`bandwidth` 0) for 3 s mid-push, then delivered.
    Stall,
    /// Both ways cut into pieces of 16 to 112 bytes, 20 µs apart, for the whole push.
    Slicer,
}

impl Toxic {
    const ALL: [Toxic; 5] = [
        Toxic::Latency,
        Toxic::Reset,
        Toxic::LimitData,
        Toxic::Stall,
        Toxic::Slicer,
    ];

    /// Toxics on for the whole push; the mid-push faults get 30 ms down, so the push lasts
    /// past the moment they start.
    fn throughout(self, proxy: &Proxy, seed: u64) -> Vec<String> {
        let both = |kind: &str, attributes: Value| {
            [Stream::Upstream, Stream::Downstream].map(|s| proxy.add(kind, s, attributes.clone()))
        };
        match self {
            Toxic::Latency => both("latency", json!({ "latency": 30, "jitter": 20 })).to_vec(),
            Toxic::Reset | Toxic::Stall => {
                vec![proxy.add("latency", Stream::Downstream, json!({ "latency": 30 }))]
            }
            Toxic::LimitData => vec![
                proxy.add(
                    "limit_data",
                    Stream::Upstream,
                    json!({ "bytes": 24_000 + seed % 4 * 7_000 }),
                ),
                proxy.add(
                    "limit_data",
                    Stream::Downstream,
                    json!({ "bytes": 3_000 + seed % 3 * 1_000 }),
                ),
            ],
            Toxic::Slicer => both(
                "slicer",
                json!({ "average_size": 64, "size_variation": 48, "delay": 20 }),
            )
            .to_vec(),
        }
    }

    /// Injects a mid-push fault once the push is under way; how long it holds the push at least.
    fn inject(self, proxy: &Proxy) -> Duration {
        match self {
            Toxic::Reset => {
                let toxics = [Stream::Upstream, Stream::Downstream]
                    .map(|s| proxy.add("reset_peer", s, json!({ "timeout": 0 })));
                std::thread::sleep(Duration::from_millis(1500));
                toxics.iter().for_each(|t| proxy.remove(t));
                Duration::from_millis(1500)
            }
            Toxic::Stall => {
                let toxic = proxy.add("bandwidth", Stream::Downstream, json!({ "rate": 0 }));
                std::thread::sleep(Duration::from_secs(3));
                proxy.remove(&toxic);
                Duration::from_secs(3)
            }
            Toxic::Latency | Toxic::LimitData | Toxic::Slicer => Duration::ZERO,
        }
    }
}

/// Requests the registry served for `repository` (`/v2/<repository>/…`), in order.
fn requests_for(registry: &Registry, repository: &str) -> Vec<String> {
    let prefix = format!("/v2/{repository}/");
    registry
        .requests()
        .into_iter()
        .filter(|r| r.contains(&prefix))
        .collect()
}

#[test]
fn pushes_through_toxiproxy_latency_resets_cuts_inside_uploads_stalls_and_slices_all_complete() {
    let Some(_) = support::tool("skopeo") else {
        return;
    };
    let Some(registry) = Registry::start(RegistryConfig::open().access_log()) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    for (run, seed) in support::seeded_runs() {
        let Some(server) = Toxiproxy::start_seeded(toxiproxy::SEED + seed) else {
            return;
        };
        // The five faults side by side, each on a proxy and a repository of its own.
        std::thread::scope(|scope| {
            for toxic in Toxic::ALL {
                let (home, registry, server) = (home.path(), &registry, &server);
                scope.spawn(move || toxic_push(home, registry, server, toxic, run, seed));
            }
        });
    }
}

/// One push of 41 blobs with `toxic` on its connections to the registry: it completes on its
/// own, the registry holds every blob byte for byte, and a re-run sends nothing.
fn toxic_push(
    home: &Path,
    registry: &Registry,
    server: &Toxiproxy,
    toxic: Toxic,
    run: usize,
    seed: u64,
) {
    let case = format!("{toxic:?}-{seed}").to_lowercase();
    let proxy = server.proxy(&case, registry.port());
    let dir = home.join(format!("layout-{case}"));
    layout::generate(&dir, "1.0.0", 40, SIZES);
    let repository = format!("toxics/{case}");
    let reference = format!("127.0.0.1:{}/{repository}:1", proxy.port);
    let args = [
        reference.as_str(),
        "--from-layout",
        dir.to_str().unwrap(),
        "--jobs",
        "8",
    ];
    let toxics = toxic.throughout(&proxy, seed);
    let started = Instant::now();
    let ((code, json, stderr), finished, held) = std::thread::scope(|scope| {
        let pushing = scope.spawn(|| (push(home, &args), Instant::now()));
        // Mid-push: after a seeded number (3 to 12) of the push's requests were served.
        let after = 3 + seed as usize % 10;
        while requests_for(registry, &repository).len() < after && !pushing.is_finished() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let held = toxic.inject(&proxy);
        let (pushed, finished) = pushing.join().unwrap();
        (pushed, finished, held)
    });
    // The push's own time: a fault it did not meet ends after it and is not counted.
    let took = finished - started;
    toxics.iter().for_each(|t| proxy.remove(t));
    eprintln!(
        "run {run}: {toxic:?}: exit {code} in {took:.1?}, {} retries",
        json["retries"]
    );
    assert_eq!(code, 0, "run {run}, {toxic:?}: {stderr}");
    let sent = json["blobs_uploaded"].as_u64().unwrap() + json["blobs_skipped"].as_u64().unwrap();
    assert_eq!(sent, 41, "run {run}, {toxic:?}: {json}");
    assert!(took >= held, "run {run}, {toxic:?} not felt: {took:?}");
    if matches!(toxic, Toxic::Reset | Toxic::LimitData) {
        assert!(
            json["retries"].as_u64().unwrap() > 0,
            "run {run}, {toxic:?}: {json}"
        );
    }
    assert_eq!(
        json["digest"],
        support::layout_digest(&dir),
        "run {run}, {toxic:?}"
    );
    // What the registry holds, pulled past the proxy: every blob, byte for byte.
    let pulled = home.join(format!("pulled-{case}"));
    skopeo_copy_to_layout(&format!("{}/{repository}:1", registry.host()), &pulled);
    let (pushed, pulled) = (layout::blobs(&dir), layout::blobs(&pulled));
    assert_eq!(
        pushed.keys().collect::<Vec<_>>(),
        pulled.keys().collect::<Vec<_>>(),
        "run {run}, {toxic:?}: the blobs pulled"
    );
    let differing = pushed.iter().filter(|(k, v)| pulled[*k] != **v).count();
    assert_eq!(differing, 0, "run {run}, {toxic:?}: blobs differ in bytes");
    // The re-run, the toxics gone, finds the image and sends nothing.
    let before = requests_for(registry, &repository).len();
    let (code, again, stderr) = push(home, &args);
    assert_eq!(code, 0, "run {run}, {toxic:?} re-run: {stderr}");
    assert_eq!(again["blobs_uploaded"], 0, "run {run}, {toxic:?}: {again}");
    assert_eq!(again["bytes_uploaded"], 0, "run {run}, {toxic:?}: {again}");
    assert_eq!(again["digest"], json["digest"]);
    let writes: Vec<String> = requests_for(registry, &repository)[before..]
        .iter()
        .filter(|r| !r.starts_with("GET ") && !r.starts_with("HEAD "))
        .cloned()
        .collect();
    assert!(
        writes.is_empty(),
        "run {run}, {toxic:?}: the re-run sent {writes:?}"
    );
}
