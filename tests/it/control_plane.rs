//! The control plane failing under a running command, on a rig of the test's own: the API server
//! killed and started again between `up`'s push and its apply, the API server and etcd paused
//! during a rollout wait. Each command finishes on its own when the fault is shorter than its
//! budget, else exits 1 naming the step and that a re-run continues; the re-run converges with
//! nothing duplicated. Each scenario runs `RELIABILITY_RUNS` times (once by default).

use std::process::{Child, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support;
use crate::support::apps::example_copy;
use crate::support::fault_proxy::{Fault, FaultProxy};
use crate::support::registry::Registry;
use crate::support::rig::{private_rig, spawn_on as spin_aks, Rig};

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub(crate) fn succeeded(output: &Output) -> Value {
    assert!(output.status.success(), "{}", stderr(output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Waits until `done` holds (polled every 20 ms), at most a minute.
pub(crate) fn until(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(60), "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A registry front that holds the first manifest PUT for 3 s, so the test can break the
/// cluster between `up`'s push and its apply; how many manifest PUTs came.
fn slow_manifest_front(registry: &Registry) -> (FaultProxy, Arc<AtomicUsize>) {
    let puts = Arc::new(AtomicUsize::new(0));
    let seen = puts.clone();
    let proxy = FaultProxy::start(
        registry.port(),
        Box::new(move |_, method, path| {
            if method == "PUT"
                && path.contains("/manifests/")
                && seen.fetch_add(1, Ordering::SeqCst) == 0
            {
                Fault::Slow(3000)
            } else {
                Fault::Pass
            }
        }),
    );
    (proxy, puts)
}

/// `up` of a copy of the example into a fresh namespace of `rig`, pushing through a
/// [`slow_manifest_front`]: what a test needs to start it and break the cluster under it.
struct UpCase {
    home: tempfile::TempDir,
    app: std::path::PathBuf,
    ns: String,
    args: Vec<String>,
    puts: Arc<AtomicUsize>,
    _front: FaultProxy,
}

impl UpCase {
    /// Run `run` of a scenario: the app gets a file of its own, so each run pushes a new image.
    fn new(rig: &Rig, registry: &Registry, hint: &str, run: usize) -> UpCase {
        let (front, puts) = slow_manifest_front(registry);
        let home = tempfile::tempdir().unwrap();
        let app = example_copy(home.path());
        std::fs::write(app.join("static/run.txt"), format!("{hint} {run}")).unwrap();
        let ns = rig.namespace(hint);
        let reference = format!("{}/hello-aks", front.host());
        let args = ["up", "--output", "json", &reference, "-n", &ns]
            .into_iter()
            .chain(["--secret", "api_token=x"])
            .map(str::to_string)
            .collect();
        UpCase {
            home,
            app,
            ns,
            args,
            puts,
            _front: front,
        }
    }

    fn up(&self, rig: &Rig, env: &[(&str, &str)]) -> Child {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        spin_aks(rig, self.home.path(), &self.app, env, &args)
    }

    /// Waits until the run is pushing the manifest (after its first API server request).
    fn pushing(&self) {
        until("the manifest is being pushed", || {
            self.puts.load(Ordering::SeqCst) > 0
        });
    }
}

/// What the app's ApplySet holds: the objects labelled part of it, by kind and name.
pub(crate) fn members(rig: &Rig, ns: &str) -> Vec<String> {
    members_of_kinds(rig, ns, "spinapps,secrets,services,deployments")
}

/// The objects of `kinds` in `ns` labelled part of an ApplySet, by kind and name, sorted.
pub(crate) fn members_of_kinds(rig: &Rig, ns: &str, kinds: &str) -> Vec<String> {
    let listed = rig.kubectl_ok(&[
        "get",
        kinds,
        "-n",
        ns,
        "-l",
        "applyset.kubernetes.io/part-of",
        "-o",
        "name",
    ]);
    let mut names: Vec<String> = listed.lines().map(str::to_string).collect();
    names.sort();
    names
}

#[test]
fn up_rides_out_an_api_server_killed_and_restarted_between_its_push_and_its_apply() {
    let Some(own) = private_rig() else { return };
    let Some(registry) = Registry::open() else {
        return;
    };
    for run in 1..=support::reliability_runs() {
        eprintln!("run {run}");
        let case = UpCase::new(&own, &registry, "restart", run);
        let up = case.up(&own, &[]);
        // `up` has asked the cluster for its version and is pushing: the API server goes down 5 s.
        case.pushing();
        own.kill_and_restart("kube_apiserver", Duration::from_secs(5));
        let report = succeeded(&up.wait_with_output().unwrap());
        let pinned = report["apply"]["image"].as_str().unwrap().to_string();
        assert_eq!(own.running_image(&case.ns, "hello-aks"), pinned);

        // The re-run finds everything in place: nothing new, nothing twice.
        let before = members(&own, &case.ns);
        let again = succeeded(&case.up(&own, &[]).wait_with_output().unwrap());
        let actions: Vec<&str> = again["apply"]["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["action"].as_str().unwrap())
            .collect();
        assert!(actions.iter().all(|a| *a == "unchanged"), "{again}");
        assert_eq!(members(&own, &case.ns), before);
        assert!(
            before.contains(&"spinapp.core.spinkube.dev/hello-aks".to_string()),
            "{before:?}"
        );
    }
}

#[test]
fn an_outage_longer_than_the_budget_names_the_step_and_a_re_run_continues() {
    let Some(own) = private_rig() else { return };
    let Some(registry) = Registry::open() else {
        return;
    };
    for run in 1..=support::reliability_runs() {
        eprintln!("run {run}");
        let case = UpCase::new(&own, &registry, "outage", run);
        let up = case.up(&own, &[("SPIN_AKS_API_OUTAGE_SECONDS", "2")]);
        case.pushing();
        // Down for 12 s: past the 2 s budget.
        own.kill_and_restart("kube_apiserver", Duration::from_secs(12));
        let failed = up.wait_with_output().unwrap();
        let err = stderr(&failed);
        assert_eq!(failed.status.code(), Some(1), "{err}");
        assert!(err.contains("cannot reach the cluster of context"), "{err}");
        assert!(
            err.contains("run the same command again: what was applied stays"),
            "{err}"
        );
        assert!(!err.contains("api_token=x"), "{err}");

        // Once it is back, the same command completes.
        until("the API server answers", || {
            own.kubectl()
                .args(["get", "--raw", "/readyz"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        let report = succeeded(&case.up(&own, &[]).wait_with_output().unwrap());
        assert_eq!(
            own.running_image(&case.ns, "hello-aks"),
            report["apply"]["image"].as_str().unwrap()
        );
    }
}

#[test]
fn a_rollout_wait_rides_out_a_paused_api_server_and_a_paused_etcd() {
    let Some(own) = private_rig() else { return };
    for run in 1..=support::reliability_runs() {
        eprintln!("run {run}");
        let home = tempfile::tempdir().unwrap();
        let app = example_copy(home.path());
        let ns = own.namespace("paused");
        let image = crate::support::rig::fake_image(21);
        // No rollout progresses while the controller manager is stopped: the wait is sure to be
        // on when the API server and then etcd pause.
        own.signal("kube_controller_manager", "STOP");
        let apply = spin_aks(
            &own,
            home.path(),
            &app,
            &[],
            &[
                "apply",
                "--output",
                "json",
                "-n",
                &ns,
                "--image",
                &image,
                "--secret",
                "api_token=x",
            ],
        );
        until("the SpinApp is applied", || {
            own.kubectl()
                .args(["get", "spinapp", "hello-aks", "-n", &ns])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        for part in ["kube_apiserver", "etcd"] {
            own.signal(part, "STOP");
            std::thread::sleep(Duration::from_secs(5));
            own.signal(part, "CONT");
        }
        own.signal("kube_controller_manager", "CONT");
        let report = succeeded(&apply.wait_with_output().unwrap());
        assert_eq!(report["rollout"]["ready"], 2, "{report}");
        assert_eq!(own.running_image(&ns, "hello-aks"), image);
    }
}
