//! API-server faults under a running command, injected by Toxiproxy (TCP: cut, reset, stalled and
//! slow streams) in front of a rig's API server or between it and etcd, by the rig (the server
//! killed and restarted, paused), by an HTTPS front answering 429 and 503 with `Retry-After`, and
//! by a relay that forgets its connections (they go silent for good), done to `apply`, `up`,
//! `cluster install` and `fleet add`. Each command finishes on its own; the re-run converges with
//! the same ApplySet members and the Secret intact. `RELIABILITY_RUNS` times each.

use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::control_plane::{members, members_of_kinds, stderr, succeeded, until};
use crate::support;
use crate::support::api_front::{pauses_after, Answered, ApiFront, Policy};
use crate::support::apps::example_copy;
use crate::support::rig::{fake_image, private_rig, private_rig_with, spawn_on, Rig};
use crate::support::toxiproxy::{Proxy, Stream, Toxiproxy};
use crate::support::watch_cutter::WatchCutter;

/// A TCP fault on the API server's connections, done to a running command.
#[derive(Clone, Copy, Debug)]
enum TcpFault {
    /// The proxy disabled 2 s (every connection closed, new ones refused), then enabled again.
    Cut,
    /// Connections reset (RST) as soon as a byte passes, for 2 s; an event is made to pass.
    Reset,
    /// What the API server sends is dropped while the connections stay open (a `timeout` toxic
    /// without a timeout): the rollout finishes unseen, 5 s pass, then the toxic's removal closes
    /// the connections. The watches resume from their last resourceVersion and see what was lost.
    Drop,
    /// What the API server sends is held (`bandwidth` 0) while the rollout finishes and 10 s more
    /// pass, then delivered late.
    Stall,
    /// 300 ms (±100 ms) each way on every connection, for the whole command.
    Latency,
}

impl TcpFault {
    const ALL: [TcpFault; 5] = [
        TcpFault::Cut,
        TcpFault::Reset,
        TcpFault::Drop,
        TcpFault::Stall,
        TcpFault::Latency,
    ];

    /// Injects the fault while the command waits; `nudge` makes an event pass the watches,
    /// `resume` lets the rollout go on and returns once it is done.
    fn inject(self, proxy: &Proxy, nudge: &dyn Fn(), resume: &dyn Fn()) {
        match self {
            TcpFault::Cut => {
                proxy.set_enabled(false);
                std::thread::sleep(Duration::from_secs(2));
                proxy.set_enabled(true);
            }
            TcpFault::Reset => {
                let toxics = [Stream::Downstream, Stream::Upstream]
                    .map(|s| proxy.add("reset_peer", s, json!({ "timeout": 0 })));
                nudge();
                std::thread::sleep(Duration::from_secs(2));
                toxics.iter().for_each(|t| proxy.remove(t));
            }
            TcpFault::Drop | TcpFault::Stall => {
                let (toxic, held) = match self {
                    TcpFault::Drop => (
                        proxy.add("timeout", Stream::Downstream, json!({ "timeout": 0 })),
                        5,
                    ),
                    _ => (
                        proxy.add("bandwidth", Stream::Downstream, json!({ "rate": 0 })),
                        10,
                    ),
                };
                nudge();
                resume();
                std::thread::sleep(Duration::from_secs(held));
                proxy.remove(&toxic);
                return;
            }
            TcpFault::Latency => {}
        }
        resume();
    }

    /// The least time the command can take: it cannot finish while the fault holds its streams.
    fn held(self) -> Duration {
        Duration::from_secs(match self {
            TcpFault::Cut => 2,
            TcpFault::Drop => 5,
            TcpFault::Stall => 10,
            TcpFault::Reset | TcpFault::Latency => 0,
        })
    }

    /// Toxics on for the whole command.
    fn throughout(self, proxy: &Proxy) -> Vec<String> {
        match self {
            TcpFault::Latency => [Stream::Downstream, Stream::Upstream]
                .map(|s| proxy.add("latency", s, json!({ "latency": 300, "jitter": 100 })))
                .to_vec(),
            _ => Vec::new(),
        }
    }
}

/// The example's Secret as the cluster holds it (its `api_token`).
fn secret_token(rig: &Rig, ns: &str) -> String {
    let secrets = rig.kubectl_ok(&["get", "secrets", "-n", ns, "-o", "json"]);
    let secrets: Value = serde_json::from_str(&secrets).unwrap();
    let tokens: Vec<&str> = secrets["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["data"]["api_token"].as_str())
        .collect();
    assert_eq!(tokens.len(), 1, "one Secret holds api_token: {secrets}");
    tokens[0].to_string()
}

/// Whether Deployment hello-aks in `ns` has all its replicas ready and updated (asked directly).
fn rolled_out(rig: &Rig, ns: &str) -> bool {
    let jsonpath = "jsonpath={.status.updatedReplicas}/{.status.readyReplicas}/{.status.replicas}";
    let output = rig
        .kubectl()
        .args(["get", "deployment", "hello-aks", "-n", ns, "-o", jsonpath])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout) == "2/2/2"
}

/// `apply` of the example with a made-up image into `ns`, its rollout waited for at most 2 min.
fn apply_args<'a>(ns: &'a str, image: &'a str) -> Vec<&'a str> {
    let mut args = vec!["apply", "--output", "json", "-n", ns, "--image", image];
    args.extend(["--secret", "api_token=x", "--timeout", "120s"]);
    args
}

/// `up` of the example into `ns`, pushed to `reference`, its rollout waited for at most 2 min.
fn up_args<'a>(ns: &'a str, reference: &'a str) -> Vec<&'a str> {
    let mut args = vec!["up", "--output", "json", reference, "-n", ns];
    args.extend(["--secret", "api_token=x", "--timeout", "120s"]);
    args
}

/// What a report says of the apply: an `apply` report itself, an `up` report's `apply`.
fn applied(report: &Value) -> &Value {
    match report.get("apply") {
        Some(apply) => apply,
        None => report,
    }
}

/// Runs the command of `args` again with `kubeconfig`; asserts it finished with every object
/// `unchanged`.
fn apply_converges(rig: &Rig, home: &Path, app: &Path, kubeconfig: &Path, args: &[&str]) {
    let env = [("KUBECONFIG", kubeconfig.to_str().unwrap())];
    let again = spawn_on(rig, home, app, &env, args);
    let again = succeeded(&again.wait_with_output().unwrap());
    let actions: Vec<&str> = applied(&again)["objects"]
        .as_array()
        .unwrap_or_else(|| panic!("{again}"))
        .iter()
        .map(|o| o["action"].as_str().unwrap())
        .collect();
    assert!(actions.iter().all(|a| *a == "unchanged"), "{again}");
}

#[test]
fn apply_and_up_ride_out_cut_reset_stalled_slow_and_throttled_api_server_streams() {
    let Some(toxiproxy) = Toxiproxy::start() else {
        return;
    };
    let Some(registry) = crate::support::registry::Registry::open() else {
        return;
    };
    let Some(own) = private_rig() else { return };
    let proxy = toxiproxy.proxy("kube-apiserver", own.server_port());
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = own.kubeconfig_via(proxy.port, home.path());
    let env = [("KUBECONFIG", kubeconfig.to_str().unwrap())];
    let reference = format!("{}/hello-aks", registry.host());
    for run in 1..=support::reliability_runs() {
        for (n, fault) in TcpFault::ALL.into_iter().enumerate() {
            for command in ["apply", "up"] {
                eprintln!("{command} run {run}: {fault:?}");
                let app = example_copy(&home.path().join(format!("{run}-{n}-{command}")));
                let ns = own.namespace(&format!("{command}-{fault:?}").to_lowercase());
                let image = fake_image(40 + n as u8);
                let args = match command {
                    "apply" => apply_args(&ns, &image),
                    _ => up_args(&ns, &reference),
                };
                // No rollout progresses while the controller manager is stopped: the fault is
                // sure to fall inside the wait.
                own.signal("kube_controller_manager", "STOP");
                let toxics = fault.throughout(&proxy);
                let started = Instant::now();
                let child = spawn_on(&own, home.path(), &app, &env, &args);
                until("the SpinApp is applied", || {
                    own.kubectl()
                        .args(["get", "spinapp", "hello-aks", "-n", &ns])
                        .output()
                        .is_ok_and(|o| o.status.success())
                });
                let nudge = || {
                    own.kubectl_ok(&[
                        "annotate",
                        "--overwrite",
                        "spinapp",
                        "hello-aks",
                        "-n",
                        &ns,
                        &format!("spin-aks-test/nudge={run}"),
                    ]);
                };
                let resume = || {
                    own.signal("kube_controller_manager", "CONT");
                    until("the rollout is done", || rolled_out(&own, &ns));
                };
                fault.inject(&proxy, &nudge, &resume);
                let output = child.wait_with_output().unwrap();
                let took = started.elapsed();
                toxics.iter().for_each(|t| proxy.remove(t));
                let report = succeeded(&output);
                eprintln!("{command} run {run}: {fault:?} finished on its own in {took:.1?}");
                assert_eq!(applied(&report)["rollout"]["ready"], 2, "{report}");
                assert!(took >= fault.held(), "{fault:?} not felt: {took:?}");
                let running = applied(&report)["image"].as_str().unwrap().to_string();
                if command == "apply" {
                    assert_eq!(running, image);
                }
                assert_eq!(own.running_image(&ns, "hello-aks"), running);
                let (before, token) = (members(&own, &ns), secret_token(&own, &ns));
                apply_converges(&own, home.path(), &app, &kubeconfig, &args);
                assert_eq!(members(&own, &ns), before, "{}", stderr(&output));
                assert_eq!(secret_token(&own, &ns), token);
                own.drop_namespace(&ns);
            }
        }
        throttled_apply(&own, home.path(), run);
        forgotten_apply(&own, home.path(), run);
        muted_apply(&own, home.path(), run);
    }
}

/// `apply` behind a relay that forgets the connections open during the rollout wait, as a load
/// balancer that lost its state: what either side sends on them is dropped, and they are never
/// closed. Pinged every 2 s of silence (`SPIN_AKS_API_PING_SECONDS`), the dead connection is
/// closed 1 s after an unanswered ping and the watches resume on a new one: the apply finishes
/// while the forgotten connections stay silent. Without the pings it would wait out `--timeout`.
fn forgotten_apply(rig: &Rig, home: &Path, run: usize) {
    eprintln!("apply run {run}: connections forgotten");
    let relay = WatchCutter::passing(rig.server_port());
    let kubeconfig = rig.kubeconfig_via(relay.port, home);
    let app = example_copy(&home.join(format!("{run}-forgotten")));
    let ns = rig.namespace("forgotten");
    let image = fake_image(51);
    let env = [
        ("KUBECONFIG", kubeconfig.to_str().unwrap()),
        ("SPIN_AKS_API_PING_SECONDS", "2"),
    ];
    rig.signal("kube_controller_manager", "STOP");
    let apply = spawn_on(rig, home, &app, &env, &apply_args(&ns, &image));
    // The operator has made the Deployment: the wait watches it.
    until("the Deployment exists", || {
        rig.kubectl()
            .args(["get", "deployment", "hello-aks", "-n", &ns])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    std::thread::sleep(Duration::from_secs(1));
    let forgotten = Instant::now();
    relay.forget();
    rig.signal("kube_controller_manager", "CONT");
    until("the rollout is done", || rolled_out(rig, &ns));
    let output = apply.wait_with_output().unwrap();
    let took = forgotten.elapsed();
    let report = succeeded(&output);
    eprintln!("apply run {run}: connections forgotten, finished on its own {took:.1?} after");
    assert_eq!(report["rollout"]["ready"], 2, "{report}");
    // Well inside `--timeout` (120 s), and sooner than the default pings (30 s, then 15 s) could
    // notice: the dead connection was noticed by the 2 s pings, not waited out.
    noticed(&relay, took, Duration::from_secs(25), &output);
    assert_eq!(rig.running_image(&ns, "hello-aks"), image);
    let (before, token) = (members(rig, &ns), secret_token(rig, &ns));
    apply_converges(rig, home, &app, &kubeconfig, &apply_args(&ns, &image));
    assert_eq!(members(rig, &ns), before);
    assert_eq!(secret_token(rig, &ns), token);
    rig.drop_namespace(&ns);
}

/// Asserts the relay's forgotten connections carried bytes (the command used them) and the
/// command, finished `took` after the forgetting, noticed them dead within `within`.
fn noticed(relay: &WatchCutter, took: Duration, within: Duration, output: &Output) {
    assert!(
        relay.dropped() > 0,
        "no forgotten connection carried a byte"
    );
    assert!(took < within, "{took:?}: {}", stderr(output));
}

/// `apply` through a front whose watches stay open and quiet, as a restarted API server's
/// lagging watch cache serves them: the rollout wait reads the Deployment after 5 s without an
/// event and sees the rollout done. Without that it would wait out `--timeout`.
fn muted_apply(rig: &Rig, home: &Path, run: usize) {
    eprintln!("apply run {run}: watches muted");
    let front = ApiFront::muting_watches(rig);
    apply_through(rig, home, run, &front, "muted", 52, &|output, took| {
        let muted = front.watches();
        eprintln!(
            "apply run {run}: watches muted, finished on its own in {took:.1?}, {muted} watches"
        );
        // Well inside `--timeout` (120 s).
        assert!(
            took < Duration::from_secs(60),
            "{took:?}: {}",
            stderr(output)
        );
    });
}

/// `apply` through the HTTPS front: 3 GETs answered 429, 2 server-side applies 429 then 503,
/// all with `Retry-After: 1`; it finishes, each refused request sent again after the pause.
fn throttled_apply(rig: &Rig, home: &Path, run: usize) {
    eprintln!("apply run {run}: 429/503 with Retry-After");
    let front = ApiFront::start(rig, throttling(3, 2));
    apply_through(rig, home, run, &front, "throttled", 50, &|_, took| {
        let requests = honoured(&front, 5);
        eprintln!(
            "apply run {run}: 429/503 finished on its own in {took:.1?}, {requests} requests"
        );
    });
}

/// `apply` of the example into a new namespace (`hint`, image `fake_image(image)`) through
/// `front`, `check` given its output and time once it finished; then asserts the rollout and
/// that a re-run straight to the API server converges with the same members and Secret.
fn apply_through(
    rig: &Rig,
    home: &Path,
    run: usize,
    front: &ApiFront,
    hint: &str,
    image: u8,
    check: &dyn Fn(&Output, Duration),
) {
    let app = example_copy(&home.join(format!("{run}-{hint}")));
    let ns = rig.namespace(hint);
    let image = fake_image(image);
    let env = [("KUBECONFIG", front.kubeconfig.to_str().unwrap())];
    let started = Instant::now();
    let apply = spawn_on(rig, home, &app, &env, &apply_args(&ns, &image));
    let output = apply.wait_with_output().unwrap();
    let took = started.elapsed();
    let report = succeeded(&output);
    check(&output, took);
    assert_eq!(report["rollout"]["ready"], 2, "{report}");
    assert_eq!(rig.running_image(&ns, "hello-aks"), image);
    let (before, token) = (members(rig, &ns), secret_token(rig, &ns));
    apply_converges(rig, home, &app, &rig.kubeconfig, &apply_args(&ns, &image));
    assert_eq!(members(rig, &ns), before);
    assert_eq!(secret_token(rig, &ns), token);
    rig.drop_namespace(&ns);
}

/// A fault done to a command mid-way: a TCP fault of Toxiproxy's, or the rig's API server
/// killed and started again 5 s later, or paused (SIGSTOP) 5 s.
#[derive(Clone, Copy, Debug)]
enum MidFault {
    Tcp(TcpFault),
    Restart,
    Pause,
}

impl MidFault {
    const ALL: [MidFault; 4] = [
        MidFault::Tcp(TcpFault::Cut),
        MidFault::Tcp(TcpFault::Reset),
        MidFault::Restart,
        MidFault::Pause,
    ];

    fn inject(self, rig: &Rig, proxy: &Proxy) {
        match self {
            MidFault::Tcp(fault) => fault.inject(proxy, &|| {}, &|| {}),
            MidFault::Restart => rig.kill_and_restart("kube_apiserver", Duration::from_secs(5)),
            MidFault::Pause => {
                rig.signal("kube_apiserver", "STOP");
                std::thread::sleep(Duration::from_secs(5));
                rig.signal("kube_apiserver", "CONT");
            }
        }
    }
}

/// The objects of kinds `kinds` labelled part of an ApplySet, across namespaces, sorted.
fn applyset_members(rig: &Rig, kinds: &str) -> Vec<String> {
    let listed = rig.kubectl_ok(&[
        "get",
        kinds,
        "-A",
        "-l",
        "applyset.kubernetes.io/part-of",
        "-o",
        "jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}{\"\\n\"}{end}",
    ]);
    let mut names: Vec<String> = listed.lines().map(str::to_string).collect();
    names.sort();
    names
}

/// Secrets of namespace `ns` by name and content digest.
fn secrets_of(rig: &Rig, ns: &str) -> Vec<String> {
    let listed = rig.kubectl_ok(&[
        "get",
        "secrets",
        "-n",
        ns,
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.data}{\"\\n\"}{end}",
    ]);
    let mut secrets: Vec<String> = listed.lines().map(str::to_string).collect();
    secrets.sort();
    secrets
}

/// Waits until the API server answers again (after a restart or a pause).
fn answering(rig: &Rig) {
    until("the API server answers", || {
        rig.kubectl()
            .args(["get", "--raw", "/readyz"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
}

/// Objects a report lists (`objects`: kind, namespace, name) whose action is not `unchanged`.
fn changed(report: &Value) -> Vec<Value> {
    let objects = report["objects"].as_array();
    let objects = objects.unwrap_or_else(|| panic!("no objects: {report}"));
    objects
        .iter()
        .filter(|o| o["action"] != "unchanged")
        .cloned()
        .collect()
}

#[test]
fn cluster_install_rides_out_cuts_resets_throttling_and_a_restarted_or_paused_api_server() {
    let Some(toxiproxy) = Toxiproxy::start() else {
        return;
    };
    let Some((own, charts, module_proxy)) = crate::install::bare_flux_rig() else {
        return;
    };
    let proxy = toxiproxy.proxy("kube-apiserver", own.server_port());
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = own.kubeconfig_via(proxy.port, home.path());
    let install_with = |kubeconfig: &Path, env: &[(&str, &str)]| {
        let mut cmd = crate::support::spin_aks_std(home.path());
        cmd.env("KUBECONFIG", kubeconfig)
            .envs(env.iter().copied())
            .args(["cluster", "install", "--output", "json", "--timeout", "5m"])
            .args(["--chart-registry", &charts, "--module-proxy", &module_proxy])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    let install = || install_with(&kubeconfig, &[]);
    let uninstall = || {
        let removed = crate::support::spin_aks_std(home.path())
            .env("KUBECONFIG", &own.kubeconfig)
            .args(["cluster", "uninstall", "--output", "json"])
            .output()
            .unwrap();
        succeeded(&removed);
    };
    let kinds = "helmreleases.helm.toolkit.fluxcd.io,helmrepositories.source.toolkit.fluxcd.io,\
                 ocirepositories.source.toolkit.fluxcd.io,namespaces,secrets,configmaps";
    for run in 1..=support::reliability_runs() {
        for fault in MidFault::ALL {
            eprintln!("cluster install run {run}: {fault:?}");
            let started = Instant::now();
            let first = install();
            // Mid-way: the first stage's HelmRelease is applied and being waited for.
            until("the cert-manager HelmRelease is applied", || {
                own.kubectl()
                    .args(["get", "helmrelease", "cert-manager", "-n", "spin-aks"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            });
            fault.inject(&own, &proxy);
            let output = first.wait_with_output().unwrap();
            let took = started.elapsed();
            let report = succeeded(&output);
            eprintln!("cluster install run {run}: {fault:?} finished on its own in {took:.1?}");
            answering(&own);
            let (members, secrets) = (applyset_members(&own, kinds), secrets_of(&own, "spin-aks"));
            assert!(!members.is_empty(), "{report}");
            let again = succeeded(&install().wait_with_output().unwrap());
            assert_eq!(changed(&again), Vec::<Value>::new(), "{again}");
            assert_eq!(applyset_members(&own, kinds), members);
            assert_eq!(secrets_of(&own, "spin-aks"), secrets);
            // The next fault starts from a bare cluster again.
            uninstall();
        }
        // Through the HTTPS front: 4 GETs answered 429, 2 server-side applies 429 then 503.
        eprintln!("cluster install run {run}: 429/503 with Retry-After");
        let front = ApiFront::start(&own, throttling(4, 2));
        let started = Instant::now();
        let report = succeeded(
            &install_with(&front.kubeconfig, &[])
                .wait_with_output()
                .unwrap(),
        );
        let requests = honoured(&front, 6);
        eprintln!(
            "cluster install run {run}: 429/503 finished on its own in {:.1?}, {requests} requests",
            started.elapsed()
        );
        let (members, secrets) = (applyset_members(&own, kinds), secrets_of(&own, "spin-aks"));
        assert!(!members.is_empty(), "{report}");
        let again = succeeded(
            &install_with(&own.kubeconfig, &[])
                .wait_with_output()
                .unwrap(),
        );
        assert_eq!(changed(&again), Vec::<Value>::new(), "{again}");
        assert_eq!(applyset_members(&own, kinds), members);
        assert_eq!(secrets_of(&own, "spin-aks"), secrets);
        uninstall();

        // The waits' reads refused beyond a request's tries (4 without Retry-After): for 6 s
        // from its first, each list of the HelmReleases and of a release's Deployments, and
        // each HelmRelease read by name, answered 503. Each wait takes it as the API server
        // still starting, says so and lists again; the install finishes.
        eprintln!("cluster install run {run}: the waits' reads refused for 6 s each");
        let front = ApiFront::start(&own, refused_lists(Duration::from_secs(6)));
        let started = Instant::now();
        let output = install_with(&front.kubeconfig, &[])
            .wait_with_output()
            .unwrap();
        let report = succeeded(&output);
        let seen = front.seen();
        for kind in ["/helmreleases?", "/deployments?"] {
            let refused = (seen.iter().filter(|s| s.status == 503))
                .filter(|s| waits_read(&s.path).is_some_and(|read| read.contains(kind)))
                .count();
            // More than one request's tries: a watch failed to start at least once.
            assert!(refused > 4, "{kind}: {refused} refused");
        }
        assert!(
            stderr(&output).contains("the API server answered 503"),
            "{}",
            stderr(&output)
        );
        eprintln!(
            "cluster install run {run}: reads refused, finished on its own in {:.1?}",
            started.elapsed()
        );
        assert!(!applyset_members(&own, kinds).is_empty(), "{report}");
        uninstall();

        // Watches that stay open and quiet for good, as a restarted API server's lagging watch
        // cache serves them (it held a run here for 5 min): each wait reads what it waits for
        // after 5 s without an event, and the install finishes.
        eprintln!("cluster install run {run}: watches muted");
        let front = ApiFront::muting_watches(&own);
        let started = Instant::now();
        let output = install_with(&front.kubeconfig, &[])
            .wait_with_output()
            .unwrap();
        let took = started.elapsed();
        let report = succeeded(&output);
        let muted = front.watches();
        eprintln!(
            "cluster install run {run}: watches muted, finished on its own in {took:.1?}, {muted} watches"
        );
        assert!(!applyset_members(&own, kinds).is_empty(), "{report}");
        uninstall();

        // The connections open while the install waits forgotten, as by a load balancer that
        // lost its state: pinged after 2 s of silence, each dead one is closed and its watch
        // resumed on a new one. Without the pings the waits would sit out `--timeout` (5 min).
        eprintln!("cluster install run {run}: connections forgotten");
        let relay = WatchCutter::passing(own.server_port());
        let relayed = own.kubeconfig_via(relay.port, home.path());
        let first = install_with(&relayed, &[("SPIN_AKS_API_PING_SECONDS", "2")]);
        until("the cert-manager HelmRelease is applied", || {
            own.kubectl()
                .args(["get", "helmrelease", "cert-manager", "-n", "spin-aks"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        let forgotten = Instant::now();
        relay.forget();
        let output = first.wait_with_output().unwrap();
        let took = forgotten.elapsed();
        let report = succeeded(&output);
        eprintln!(
            "cluster install run {run}: connections forgotten, finished on its own {took:.1?} after"
        );
        noticed(&relay, took, Duration::from_secs(200), &output);
        assert!(!applyset_members(&own, kinds).is_empty(), "{report}");
        uninstall();

        // Down 12 s against a 2 s outage budget: exit 1 naming the step, and a re-run finishes
        // with the same ApplySet members as an install without faults.
        eprintln!("cluster install run {run}: down 12 s, 2 s budget");
        let first = install_with(&own.kubeconfig, &[("SPIN_AKS_API_OUTAGE_SECONDS", "2")]);
        until("the cert-manager HelmRelease is applied", || {
            own.kubectl()
                .args(["get", "helmrelease", "cert-manager", "-n", "spin-aks"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        own.kill_and_restart("kube_apiserver", Duration::from_secs(12));
        let failed = first.wait_with_output().unwrap();
        let err = stderr(&failed);
        assert_eq!(failed.status.code(), Some(1), "{err}");
        assert!(err.contains("cannot reach the cluster of context"), "{err}");
        assert!(err.contains("run the same command again"), "{err}");
        answering(&own);
        succeeded(
            &install_with(&own.kubeconfig, &[])
                .wait_with_output()
                .unwrap(),
        );
        eprintln!("cluster install run {run}: down 12 s finished after one re-run");
        assert_eq!(applyset_members(&own, kinds), members);
        // Helm's release Secrets hold this install's time: the same Secrets, by name.
        let names = |secrets: Vec<String>| -> Vec<String> {
            (secrets.iter())
                .map(|s| s.split('=').next().unwrap().to_string())
                .collect()
        };
        assert_eq!(names(secrets_of(&own, "spin-aks")), names(secrets));
        uninstall();
    }
}

#[test]
fn fleet_add_and_up_ride_out_api_server_faults_and_a_registry_outage_and_converge_after_a_kill() {
    let Some(registry) = crate::support::registry::Registry::open() else {
        return;
    };
    let Some(toxiproxy) = Toxiproxy::start() else {
        return;
    };
    let Some(own) = crate::support::rig::private_rig_with(&["--kustomize"]) else {
        return;
    };
    let proxy = toxiproxy.proxy("kube-apiserver", own.server_port());
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let kubeconfig = own.kubeconfig_via(proxy.port, home.path());
    let env = [("KUBECONFIG", kubeconfig.to_str().unwrap())];
    let spin_aks = |args: &[&str]| spawn_on(&own, home.path(), &app, &env, args);
    let reference = format!("{}/hello-aks", registry.host());
    let push = ["push", &reference, "--publish", "--env", "staging"];
    succeeded(
        &spin_aks(&[&push[..], &["--output", "json"]].concat())
            .wait_with_output()
            .unwrap(),
    );
    for run in 1..=support::reliability_runs() {
        for fault in MidFault::ALL {
            eprintln!("fleet add run {run}: {fault:?}");
            let ns = own.bare_namespace(
                &format!("fleet-{fault:?}")
                    .to_lowercase()
                    .replace(['(', ')'], ""),
            );
            let add = fleet_add_args(&ns);
            let add: Vec<&str> = add.iter().map(String::as_str).collect();
            // `fleet add` is a handful of requests: 250 ms each way make room for a fault inside.
            let slow = [Stream::Downstream, Stream::Upstream]
                .map(|s| proxy.add("latency", s, json!({ "latency": 250 })));
            let started = Instant::now();
            let first = spin_aks(&add);
            until("fleet add has written to the namespace", || {
                own.kubectl()
                    .args([
                        "get",
                        "secrets,ocirepositories,kustomizations",
                        "-n",
                        &ns,
                        "-o",
                        "name",
                    ])
                    .output()
                    .is_ok_and(|o| !o.stdout.is_empty())
            });
            fault.inject(&own, &proxy);
            let output = first.wait_with_output().unwrap();
            let took = started.elapsed();
            slow.iter().for_each(|t| proxy.remove(t));
            let report = succeeded(&output);
            eprintln!("fleet add run {run}: {fault:?} finished on its own in {took:.1?}");
            answering(&own);
            fleet_add_converges(&own, &ns, &report, &|| {
                spin_aks(&add).wait_with_output().unwrap()
            });
        }
        throttled_fleet_add_and_up(&own, &registry, home.path(), &app, run);
        fleet_up_through_a_registry_outage(&own, &toxiproxy, &registry, home.path(), run);
    }
    fleet_add_killed_at_its_writes(&own, home.path(), &app);
}

/// `up --fleet` while the cluster cannot reach the registry: the member's OCIRepository fetches
/// through a Toxiproxy proxy, disabled from before `up` until source-controller reported the
/// failed fetch (Ready=False, which it tries again), then 3 s more. The wait takes the failure
/// as progress while Flux tries again, and the cluster converges on the new version; before,
/// the first read of the failure ended `up` with exit 1.
fn fleet_up_through_a_registry_outage(
    rig: &Rig,
    toxiproxy: &Toxiproxy,
    registry: &crate::support::registry::Registry,
    home: &Path,
    run: usize,
) {
    eprintln!("up --fleet run {run}: the registry unreachable from the cluster");
    // Its own app, state and repository: what it publishes as `staging` reaches no other member.
    let home = home.join(format!("outage-{run}"));
    let app = example_copy(&home);
    let ns = rig.bare_namespace("fleet-outage");
    let reference = format!("{}/outage-{run}/hello-aks", registry.host());
    let spin_aks = |args: &[&str]| {
        let output = spawn_on(rig, &home, &app, &[], args);
        succeeded(&output.wait_with_output().unwrap())
    };
    spin_aks(&[
        "push",
        &reference,
        "--publish",
        "--env",
        "staging",
        "--output",
        "json",
    ]);
    spin_aks(
        &fleet_add_args(&ns)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let source = |path: &str| {
        let path = format!("jsonpath={{{path}}}");
        let args = ["get", "ocirepository", "hello-aks", "-n", &ns, "-o", &path];
        rig.kubectl_ok(&args)
    };
    let proxy = toxiproxy.proxy(&format!("registry-{run}"), registry.port());
    proxy.set_enabled(false);
    let url = source(".spec.url").replace(&registry.host(), &format!("127.0.0.1:{}", proxy.port));
    let patch = format!(r#"{{"spec":{{"url":"{url}"}}}}"#);
    rig.kubectl_ok(&[
        "patch",
        "ocirepository",
        "hello-aks",
        "-n",
        &ns,
        "--type",
        "merge",
        "-p",
        &patch,
    ]);
    std::fs::write(app.join("static/outage.txt"), format!("run {run}\n")).unwrap();
    let started = Instant::now();
    let up = [
        "up",
        "--fleet",
        "--env",
        "staging",
        "--timeout",
        "2m",
        "--output",
        "json",
    ];
    let running = spawn_on(rig, &home, &app, &[], &up);
    let ready = ".status.conditions[?(@.type==\"Ready\")].status";
    until("source-controller reported the failed fetch", || {
        source(ready) == "False"
    });
    std::thread::sleep(Duration::from_secs(3));
    proxy.set_enabled(true);
    let output = running.wait_with_output().unwrap();
    let report = succeeded(&output);
    eprintln!(
        "up --fleet run {run}: the registry unreachable finished on its own in {:.1?}",
        started.elapsed()
    );
    let cluster = &report["clusters"][0];
    assert_eq!(cluster["state"], "converged", "{report}");
    let pinned = report["push"]["pinned"].as_str().unwrap();
    assert_eq!(rig.running_image(&ns, "hello-aks"), pinned, "{report}");
    assert!(
        stderr(&output).contains("(Flux tries again)"),
        "{}",
        stderr(&output)
    );
    rig.drop_namespace(&ns);
}

/// The front's hold for the kills: the `hold`-th write (any request but a GET) since `writes`
/// was reset is held while `hold` names it, before the API server has it (then refused with
/// 503, so it is never carried out) or, when `after`, once it has answered (the answer lost).
#[derive(Default)]
struct HeldWrite {
    writes: AtomicUsize,
    hold: AtomicUsize,
    after: std::sync::atomic::AtomicBool,
    holding: std::sync::atomic::AtomicBool,
    /// The method and path of the write held once answered (writes may go out together).
    answered: std::sync::Mutex<Option<(String, String)>>,
}

impl HeldWrite {
    /// Holds until the test lets go (sets `hold` to another write).
    fn held(&self, k: usize) {
        self.holding.store(true, Ordering::SeqCst);
        while self.hold.load(Ordering::SeqCst) == k {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn policy(held: &std::sync::Arc<HeldWrite>) -> Box<Policy> {
        let held = held.clone();
        Box::new(move |_, method, path| {
            if method == "GET" {
                return None;
            }
            let k = held.writes.fetch_add(1, Ordering::SeqCst) + 1;
            if k != held.hold.load(Ordering::SeqCst) {
                return None;
            }
            if held.after.load(Ordering::SeqCst) {
                *held.answered.lock().unwrap() = Some((method.to_string(), path.to_string()));
                return None;
            }
            held.held(k);
            Some((503, 1))
        })
    }

    fn answered(held: &std::sync::Arc<HeldWrite>) -> Box<Answered> {
        let held = held.clone();
        Box::new(move |method, path| {
            let mut answered = held.answered.lock().unwrap();
            if answered.as_ref() == Some(&(method.to_string(), path.to_string())) {
                *answered = None;
                drop(answered);
                held.held(held.hold.load(Ordering::SeqCst));
            }
        })
    }
}

/// `fleet add` to a kubeconfig context (Flux's objects applied by spin-aks, through the HTTPS
/// front) killed (SIGKILL) while the front holds its `k`-th write to the API server, before the
/// API server has it or after it answered (the answer lost); the same command again converges:
/// the ApplySet's members, their generations and every object as after an uninterrupted run,
/// one Secret holding the variable, the state file whole and remembering the member. Every
/// point under `RELIABILITY_RUNS` > 1, 3 seeded ones otherwise.
fn fleet_add_killed_at_its_writes(own: &Rig, home: &Path, app: &Path) {
    let held = std::sync::Arc::new(HeldWrite::default());
    let hooks = (HeldWrite::policy(&held), HeldWrite::answered(&held));
    let front = ApiFront::start_telling(own, hooks.0, hooks.1);
    let env = [("KUBECONFIG", front.kubeconfig.to_str().unwrap())];
    let add = |ns: &str| -> Vec<String> {
        let a = ["fleet", "add", "rig", "-n", ns, "--env", "staging"];
        let b = ["--secret", "api_token=x", "--output", "json"];
        a.iter().chain(b.iter()).map(|s| s.to_string()).collect()
    };
    let state = || -> Value {
        let text = std::fs::read_to_string(home.join("state")).unwrap();
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("the state file is torn: {e}\n{text}"))
    };
    // Every Flux object in `ns`, labelled or not, and the ApplySet's parent (the app's own
    // objects come from Flux, and the operator's with them, in their own time).
    let objects = |ns: &str| {
        let flux = "ocirepositories.source.toolkit.fluxcd.io,\
                    kustomizations.kustomize.toolkit.fluxcd.io";
        let parent = [
            "get",
            "secrets",
            "-n",
            ns,
            "-l",
            "applyset.kubernetes.io/id",
        ];
        let listed = own.kubectl_ok(&["get", flux, "-n", ns, "-o", "name"])
            + &own.kubectl_ok(&[&parent[..], &["-o", "name"]].concat());
        let mut names: Vec<String> = listed.lines().map(str::to_string).collect();
        names.sort();
        let kinds =
            "jsonpath={.metadata.annotations.applyset\\.kubernetes\\.io/contains-group-kinds}";
        let parent = [
            "get",
            "secret",
            "hello-aks-fleet-applyset",
            "-n",
            ns,
            "-o",
            kinds,
        ];
        (names, own.kubectl_ok(&parent))
    };
    // An uninterrupted run: its writes numbered, what it leaves the measure.
    let reference = own.bare_namespace("fleet-whole");
    held.writes.store(0, Ordering::SeqCst);
    let args = add(&reference);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    succeeded(
        &spawn_on(own, home, app, &env, &args)
            .wait_with_output()
            .unwrap(),
    );
    let writes = held.writes.load(Ordering::SeqCst);
    let whole = (
        members_of(own, &reference),
        generations_of(own, &reference),
        objects(&reference),
        secret_token(own, &reference),
    );
    eprintln!("fleet add makes {writes} writes: {:?}", whole.2);
    let points: Vec<(usize, bool)> = (1..=writes).flat_map(|k| [(k, false), (k, true)]).collect();
    let chosen = match support::reliability_runs() {
        1 => support::spread(&points, 3, 32),
        _ => points,
    };
    for run in 1..=support::reliability_runs() {
        for &(k, after) in &chosen {
            let started = Instant::now();
            let ns = own.bare_namespace(&format!("fleet-kill-{k}"));
            let args = add(&ns);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            held.writes.store(0, Ordering::SeqCst);
            held.holding.store(false, Ordering::SeqCst);
            held.after.store(after, Ordering::SeqCst);
            held.hold.store(k, Ordering::SeqCst);
            let mut child = spawn_on(own, home, app, &env, &args);
            let deadline = Instant::now() + Duration::from_secs(60);
            while !held.holding.load(Ordering::SeqCst) {
                if child.try_wait().unwrap().is_some() {
                    let output = child.wait_with_output().unwrap();
                    panic!("fleet add ended before write {k}: {}", stderr(&output));
                }
                assert!(Instant::now() < deadline, "write {k} never came");
                std::thread::sleep(Duration::from_millis(5));
            }
            child.kill().unwrap();
            child.wait().unwrap();
            held.hold.store(0, Ordering::SeqCst);
            let remembered = state()["apps"].to_string();
            assert!(remembered.contains("hello-aks-deploy"), "{remembered}");
            let again = succeeded(
                &spawn_on(own, home, app, &env, &args)
                    .wait_with_output()
                    .unwrap(),
            );
            let state_of_ns = (
                members_of(own, &ns),
                generations_of(own, &ns),
                objects(&ns),
                secret_token(own, &ns),
            );
            let when = if after { "after" } else { "before" };
            assert_eq!(state_of_ns, whole, "after a kill {when} write {k}: {again}");
            let remembered = state()["apps"].to_string();
            let member = format!("\"namespace\":\"{ns}\"");
            assert!(remembered.contains(&member), "remembered: {remembered}");
            eprintln!(
                "fleet add run {run}: killed {when} write {k} of {writes}, converged in {:.1?}",
                started.elapsed()
            );
        }
    }
}

/// `fleet add` of the pushed app to the rig's cluster in `ns`.
fn fleet_add_args(ns: &str) -> Vec<String> {
    ["fleet", "add", "rig", "-n", ns, "--env", "staging"]
        .into_iter()
        .chain(["--secret", "api_token=x", "--output", "json"])
        .map(str::to_string)
        .collect()
}

/// After a `fleet add` into `ns` that reported `report`: the re-run (`again`) creates nothing
/// and changes no spec, and the ApplySet's members and the Secret stay as they were.
fn fleet_add_converges(rig: &Rig, ns: &str, report: &Value, again: &dyn Fn() -> Output) {
    let (members, token) = (members_of(rig, ns), secret_token(rig, ns));
    assert!(
        members.iter().any(|m| m.starts_with("kustomization")),
        "{members:?} {report}"
    );
    // Flux's controllers write to their objects as they reconcile (after a restart too), so the
    // re-run may find a new resourceVersion: it must create nothing and change no spec (the
    // generations stay).
    let generations = generations_of(rig, ns);
    let again = succeeded(&again());
    let objects = again["clusters"][0]["objects"].as_array().unwrap();
    assert!(
        objects
            .iter()
            .all(|o| !o.as_str().unwrap().ends_with(" created")),
        "{again}"
    );
    assert_eq!(generations_of(rig, ns), generations, "{again}");
    assert_eq!(members_of(rig, ns), members);
    assert_eq!(secret_token(rig, ns), token);
}

/// `fleet add`, then `up`, through the HTTPS front: 3 GETs answered 429, 2 server-side applies
/// 429 then 503, all with `Retry-After: 1`. Each finishes, each refused request is sent again
/// after the pause, and the re-run (straight to the API server) converges.
fn throttled_fleet_add_and_up(
    rig: &Rig,
    registry: &crate::support::registry::Registry,
    home: &Path,
    app: &Path,
    run: usize,
) {
    let ns = rig.bare_namespace("fleet-throttled");
    let add = fleet_add_args(&ns);
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    let report = throttled(rig, home, app, run, "fleet add", &add);
    fleet_add_converges(rig, &ns, &report, &|| {
        spawn_on(rig, home, app, &[], &add)
            .wait_with_output()
            .unwrap()
    });

    let ns = rig.namespace("up-throttled");
    let reference = format!("{}/hello-aks", registry.host());
    let up = up_args(&ns, &reference);
    let report = throttled(rig, home, app, run, "up", &up);
    let image = report["apply"]["image"].as_str().unwrap();
    assert_eq!(rig.running_image(&ns, "hello-aks"), image, "{report}");
    let (before, token) = (members(rig, &ns), secret_token(rig, &ns));
    apply_converges(rig, home, app, &rig.kubeconfig, &up);
    assert_eq!(members(rig, &ns), before);
    assert_eq!(secret_token(rig, &ns), token);
}

/// Runs `spin-aks ARGS` through a front answering 3 GETs 429 and 2 server-side applies 429 then
/// 503, with `Retry-After: 1`; asserts it finished and honoured each pause; its report.
fn throttled(rig: &Rig, home: &Path, app: &Path, run: usize, what: &str, args: &[&str]) -> Value {
    eprintln!("{what} run {run}: 429/503 with Retry-After");
    let front = ApiFront::start(rig, throttling(3, 2));
    let through = [("KUBECONFIG", front.kubeconfig.to_str().unwrap())];
    let started = Instant::now();
    let output = spawn_on(rig, home, app, &through, args);
    let report = succeeded(&output.wait_with_output().unwrap());
    let requests = honoured(&front, 5);
    eprintln!(
        "{what} run {run}: 429/503 finished on its own in {:.1?}, {requests} requests",
        started.elapsed()
    );
    report
}

/// The generation of each of Flux's objects in `ns`: a spec change raises it.
fn generations_of(rig: &Rig, ns: &str) -> String {
    rig.kubectl_ok(&[
        "get",
        "ocirepositories.source.toolkit.fluxcd.io,kustomizations.kustomize.toolkit.fluxcd.io",
        "-n",
        ns,
        "-o",
        "jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.generation} {end}",
    ])
}

/// What the fleet's ApplySet holds in `ns`: its members by kind and name.
fn members_of(rig: &Rig, ns: &str) -> Vec<String> {
    let kinds = "secrets,ocirepositories.source.toolkit.fluxcd.io,\
                 kustomizations.kustomize.toolkit.fluxcd.io";
    members_of_kinds(rig, ns, kinds)
}

/// The front's policy: the first `gets` GETs answered 429, the first `patches` PATCHes 429 and
/// 503 in turn, each with `Retry-After: 1`.
fn throttling(gets: usize, patches: usize) -> Box<Policy> {
    let (g, p) = (AtomicUsize::new(0), AtomicUsize::new(0));
    Box::new(move |_, method, _| match method {
        "GET" => (g.fetch_add(1, Ordering::SeqCst) < gets).then_some((429, 1)),
        "PATCH" => {
            let k = p.fetch_add(1, Ordering::SeqCst);
            (k < patches).then_some((if k % 2 == 0 { 429 } else { 503 }, 1))
        }
        _ => None,
    })
}

/// The front's policy: each read the install's waits make — a list (not a watch) of the
/// HelmReleases or of a namespace's Deployments, a HelmRelease read by name once it is applied
/// (the apply's own reads pass) — answered 503 without `Retry-After`, as a starting API server
/// answers, for `window` from its first time: longer than one request's 4 tries, so the wait's
/// list fails, and its read too.
fn refused_lists(window: Duration) -> Box<Policy> {
    let first = std::sync::Mutex::new(std::collections::HashMap::<String, Instant>::new());
    let applied = std::sync::Mutex::new(std::collections::HashSet::<String>::new());
    Box::new(move |_, method, path| {
        let resource = path.split('?').next().unwrap_or_default().to_string();
        if method == "PATCH" {
            applied.lock().unwrap().insert(resource);
            return None;
        }
        let read = (method == "GET").then(|| waits_read(path)).flatten()?;
        let by_name =
            (resource.rsplit_once('/')).is_some_and(|(c, _)| c.ends_with("/helmreleases"));
        if by_name && !applied.lock().unwrap().contains(&resource) {
            return None;
        }
        let mut first = first.lock().unwrap();
        let since = first.entry(read).or_insert_with(Instant::now).elapsed();
        (since < window).then_some((503, 0))
    })
}

/// The read of one of the install's waits that `path` makes — HelmReleases listed by name, one
/// read by name, a namespace's Deployments listed all at once: its path and selector, `None` for
/// a watch or another request.
fn waits_read(path: &str) -> Option<String> {
    let (resource, query) = path.split_once('?').unwrap_or((path, ""));
    if query.contains("watch=") {
        return None;
    }
    let selector = query.split('&').find(|p| p.starts_with("fieldSelector="));
    let (collection, last) = resource.rsplit_once('/')?;
    let ours = match last {
        "deployments" => !query.contains("Selector"),
        "helmreleases" => selector.is_some_and(|s| s.contains("metadata.name")),
        _ => collection.ends_with("/helmreleases"),
    };
    ours.then(|| format!("{resource}?{}", selector.unwrap_or_default()))
}

/// Asserts the front refused `refused` requests and each was sent again no sooner than its
/// `Retry-After` (1 s); how many requests the front saw in all.
fn honoured(front: &ApiFront, refused: usize) -> usize {
    let seen = front.seen();
    let pauses: Vec<_> = [429, 503]
        .iter()
        .flat_map(|status| pauses_after(&seen, *status))
        .collect();
    assert_eq!(pauses.len(), refused, "{pauses:?}");
    for (request, pause) in &pauses {
        let pause = pause.unwrap_or_else(|| panic!("{request} was not sent again"));
        assert!(
            pause >= Duration::from_secs(1),
            "{request} sent again after {pause:?}"
        );
    }
    seen.len()
}

/// A TCP fault on the API server's connections to etcd (Toxiproxy between them: a rig started
/// `--etcd-toxiproxy`), during `apply`'s rollout wait.
#[derive(Clone, Copy, Debug)]
enum EtcdFault {
    /// 100 ms (± 50 ms) each way on every connection, for the whole `apply`.
    Latency,
    /// The proxy disabled 3 s: every connection to etcd closed, new ones refused.
    Cut,
    /// What etcd sends held 3 s (`bandwidth` 0), then delivered.
    Stall,
}

impl EtcdFault {
    const ALL: [EtcdFault; 3] = [EtcdFault::Latency, EtcdFault::Cut, EtcdFault::Stall];

    /// Toxics on for the whole command.
    fn throughout(self, proxy: &Proxy) -> Vec<String> {
        match self {
            EtcdFault::Latency => [Stream::Downstream, Stream::Upstream]
                .map(|s| proxy.add("latency", s, json!({ "latency": 100, "jitter": 50 })))
                .to_vec(),
            EtcdFault::Cut | EtcdFault::Stall => Vec::new(),
        }
    }

    /// Starts the fault, `resume`s the rollout inside it and ends it 3 s after its start, once
    /// the API server has found etcd unreachable.
    fn inject(self, rig: &Rig, proxy: &Proxy, resume: &dyn Fn()) {
        let toxic = match self {
            EtcdFault::Latency => return resume(),
            EtcdFault::Cut => {
                proxy.set_enabled(false);
                None
            }
            EtcdFault::Stall => {
                Some(proxy.add("bandwidth", Stream::Downstream, json!({ "rate": 0 })))
            }
        };
        let (started, hold) = (Instant::now(), Duration::from_secs(3));
        resume();
        // The API server's etcd check may answer from its last result for a moment.
        let reaches_etcd = || {
            let check = rig
                .kubectl()
                .args(["get", "--raw", "/readyz/etcd"])
                .output();
            check.unwrap().status.success()
        };
        while reaches_etcd() {
            assert!(
                started.elapsed() < hold,
                "{self:?}: the API server still reaches etcd"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(hold.saturating_sub(started.elapsed()));
        match toxic {
            Some(toxic) => proxy.remove(&toxic),
            None => proxy.set_enabled(true),
        }
    }
}

#[test]
fn apply_rides_out_slow_cut_and_stalled_etcd_streams() {
    let Some(toxiproxy) = Toxiproxy::start() else {
        return;
    };
    let mode = format!("--etcd-toxiproxy={}", toxiproxy.api_port());
    let Some(own) = private_rig_with(&[&mode]) else {
        return;
    };
    let proxy = toxiproxy.existing("etcd");
    assert_eq!(own.env("etcd_proxy_port"), Some(proxy.port.to_string()));
    let home = tempfile::tempdir().unwrap();
    for run in 1..=support::reliability_runs() {
        for (n, fault) in EtcdFault::ALL.into_iter().enumerate() {
            eprintln!("apply run {run}: etcd {fault:?}");
            let app = example_copy(&home.path().join(format!("etcd-{run}-{n}")));
            let ns = own.namespace(&format!("etcd-{fault:?}").to_lowercase());
            let image = fake_image(60 + n as u8);
            // The rollout starts inside the fault: the controller manager waits until then.
            own.signal("kube_controller_manager", "STOP");
            let toxics = fault.throughout(&proxy);
            let started = Instant::now();
            let apply = spawn_on(&own, home.path(), &app, &[], &apply_args(&ns, &image));
            until("the SpinApp is applied", || {
                own.kubectl()
                    .args(["get", "spinapp", "hello-aks", "-n", &ns])
                    .output()
                    .is_ok_and(|o| o.status.success())
            });
            fault.inject(&own, &proxy, &|| {
                own.signal("kube_controller_manager", "CONT")
            });
            let output = apply.wait_with_output().unwrap();
            let took = started.elapsed();
            toxics.iter().for_each(|t| proxy.remove(t));
            let report = succeeded(&output);
            eprintln!("apply run {run}: etcd {fault:?} finished on its own in {took:.1?}");
            assert_eq!(report["rollout"]["ready"], 2, "{report}");
            assert_eq!(own.running_image(&ns, "hello-aks"), image);
            let (before, token) = (members(&own, &ns), secret_token(&own, &ns));
            apply_converges(
                &own,
                home.path(),
                &app,
                &own.kubeconfig,
                &apply_args(&ns, &image),
            );
            assert_eq!(members(&own, &ns), before, "{}", stderr(&output));
            assert_eq!(secret_token(&own, &ns), token);
            own.drop_namespace(&ns);
        }
    }
}
