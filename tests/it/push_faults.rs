//! `spin-aks push` through the seeded fault front (cuts anywhere in a request or its answer, 503s,
//! 429 with Retry-After, slow answers): every push completes, reports its retries, and the tag only
//! ever names an image whose every blob the registry holds; a registry that stays down fails in time.
//! Each scenario runs once per [`support::seeded_runs`] (the nightly mode: 10 seeds).

use crate::support;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::support::fault_proxy::{self, Fault, FaultMix, FaultProxy};
use crate::support::registry::Registry;
use crate::support::{layout, skopeo_copy_to_layout, skopeo_finds, spin_aks_isolated};
use serde_json::Value;

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
