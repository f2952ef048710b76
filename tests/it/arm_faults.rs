//! The commands that write through ARM (`fleet add` on AKS among them) under ARM's faults, and
//! `cluster create` killed at each request and in its install: each finishes or a re-run converges.

use crate::support;

use std::time::Instant;

use crate::support::arm::{rotate_tokens, FakeArm, Fault, Injection};
use crate::support::arm_cli::Rig;
use serde_json::json;

const SUB: &str = "55555555-0000-0000-0000-000000000005";
const CLUSTER: &str = "/providers/Microsoft.ContainerService/managedClusters/c1";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Command {
    Create,
    Delete,
    AttachAcr,
    IdentitySetup,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// 429 four times in a row, `Retry-After: 10`: 40 s of the 300 s a busy service is waited for.
    Storm,
    /// 429 five times in a row: every one of the 5 tries a busy service gets.
    LongStorm,
    /// 503 then 500 twice: within the 25 s a failing request is retried.
    Burst,
    /// The operation the write starts ends `Failed`; the second try succeeds.
    FailedOperation,
    /// Every token is refused as expired after 3 requests.
    ExpiringToken,
}

impl Command {
    /// A fake ARM holding what the command works on, and the command's arguments.
    async fn rig(self) -> (Rig, Vec<String>) {
        let args = |a: &[&str]| -> Vec<String> {
            let common = ["--subscription", SUB, "--output", "json"];
            a.iter()
                .chain(common.iter())
                .map(|s| s.to_string())
                .collect()
        };
        if self == Command::IdentitySetup {
            let (rig, manifest) = crate::identity::rig().await;
            rig.arm
                .add_cosmos_account(crate::identity::SUB, "rg-data", "shop-db");
            let app = manifest.to_str().unwrap();
            let a = ["identity", "setup", "-y", "-f", app, "--cosmos", "shop-db"];
            let mut a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            a.extend(["--output", "json"].map(String::from));
            return (rig, a);
        }
        let rig = Rig::start(SUB).await;
        let a = match self {
            Command::Create => {
                provision_instantly(&rig);
                args(&[
                    "cluster",
                    "create",
                    "-y",
                    "--cluster",
                    "c1",
                    "--resource-group",
                    "rg",
                    "--location",
                    "westeurope",
                    "--no-install",
                ])
            }
            Command::Delete => {
                rig.arm.add_cluster(SUB, "rg", "c1", false, "");
                rig.arm
                    .cluster("c1", |c| c["tags"] = json!({"created-by": "spin-aks"}));
                args(&[
                    "cluster",
                    "delete",
                    "-y",
                    "--cluster",
                    "c1",
                    "--resource-group",
                    "rg",
                ])
            }
            _ => {
                rig.arm.add_cluster(SUB, "rg", "c1", false, "");
                rig.arm.add_registry(SUB, "rg", "reg1", false);
                args(&[
                    "cluster",
                    "attach-acr",
                    "-y",
                    "--cluster",
                    "c1",
                    "--resource-group",
                    "rg",
                    "--registry",
                    "reg1.azurecr.io",
                ])
            }
        };
        (rig, a)
    }

    /// The request the fault hits (method, a fragment of its path); `None` when the command
    /// starts no long-running operation there.
    fn target(self, kind: Kind) -> Option<(&'static str, &'static str)> {
        Some(match (self, kind) {
            (Command::Create, _) => ("PUT", "/managedclusters/c1"),
            (Command::Delete, _) => ("DELETE", "/managedclusters/c1"),
            (Command::AttachAcr, Kind::FailedOperation) => return None,
            (Command::AttachAcr, _) => ("PUT", "/roleassignments/"),
            (Command::IdentitySetup, Kind::FailedOperation) => ("PUT", "/sqlroleassignments/"),
            (Command::IdentitySetup, _) => ("PUT", "/userassignedidentities/"),
        })
    }

    /// The error a failed operation of this command reports (code, message), as ARM words it.
    fn failure(self) -> (&'static str, &'static str) {
        match self {
            Command::IdentitySetup => ("InternalServerError", "An internal server error occurred while processing the SQL role assignment. ActivityId: 5d0b7c3e-0000-0000-0000-000000000000, Microsoft.Azure.Documents.Common/2.14.0"),
            Command::Delete => ("DeleteVMSSAgentPoolFailed", "Delete virtual machine scale set of agent pool nodepool1 failed. Message: the node resource group is locked (ScopeLocked). Retry the delete once the lock is removed."),
            _ => ("VMExtensionProvisioningError", "Provisioning of resource(s) for container service c1 in resource group rg failed. Message: Operation could not be completed as VM extension provisioning failed on 1 VM (exit code 50)."),
        }
    }

    /// What the command must leave, once: no duplicate and nothing half-made.
    fn converged(self, rig: &Rig) {
        let count = |what: &str| {
            rig.arm.world(|w| match what {
                "clusters" => w.clusters.len(),
                "registries" => w.registries.len(),
                "groups" => w.provisioning.resource_groups.len(),
                "identities" => w.identities.len(),
                "sql" => w.sql_role_assignments.len(),
                _ => unreachable!(),
            })
        };
        match self {
            Command::Create => {
                assert_eq!(count("clusters"), 1);
                assert_eq!(count("registries"), 1);
                assert_eq!(count("groups"), 1);
                let state = rig
                    .arm
                    .world(|w| w.clusters[0].resource["properties"]["provisioningState"].clone());
                assert_eq!(state, "Succeeded");
                assert_eq!(rig.arm.assignments_of("kubelet-c1").len(), 1);
                assert_eq!(rig.state()["last_cluster"]["name"], "c1");
            }
            Command::Delete => assert_eq!(count("clusters"), 0),
            Command::AttachAcr => assert_eq!(rig.arm.assignments_of("kubelet-c1").len(), 1),
            Command::IdentitySetup => {
                rig.arm.finish_operations();
                assert_eq!(count("identities"), 1);
                let identity = rig.arm.identity("shop-identity").unwrap();
                let id = identity["id"].as_str().unwrap();
                assert_eq!(rig.arm.credentials_of(id).len(), 1);
                assert_eq!(count("sql"), 1, "one Cosmos DB role assignment");
            }
        }
    }
}

/// Cluster creations stand up nothing: the new cluster answers at once (no install follows),
/// and its creation is over before its PUT is answered.
fn provision_instantly(rig: &Rig) {
    let provisioner: support::arm::Provisioner =
        std::sync::Arc::new(|_| Ok(std::path::PathBuf::from("/nonexistent/kubeconfig")));
    rig.arm.world(|w| {
        w.provisioning.provisioner = Some(provisioner);
        w.provisioning.synchronous = true;
    });
}

/// Cluster creations take 1.5 s, during which the cluster is `Creating`.
fn provision_slowly(rig: &Rig) {
    let provisioner: support::arm::Provisioner = std::sync::Arc::new(|_| {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        Ok(std::path::PathBuf::from("/nonexistent/kubeconfig"))
    });
    rig.arm.world(|w| {
        w.provisioning.provisioner = Some(provisioner);
        w.provisioning.synchronous = false;
    });
}

/// How one row ended.
#[derive(Debug, PartialEq)]
enum Outcome {
    OnItsOwn,
    AfterOneRerun,
}

async fn run_row(command: Command, kind: Kind) -> Option<Outcome> {
    let target = command.target(kind)?;
    let (rig, args) = command.rig().await;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let what = format!("{command:?}");
    let run = || rig.run(&args);
    let failure = command.failure();
    let ridden = ride_out(&what, &rig.arm, rig.bin.path(), kind, target, failure, run);
    let (outcome, stdout) = ridden.await;
    command.converged(&rig);
    if (command, kind) == (Command::Create, Kind::FailedOperation) {
        let report = support::arm_cli::json(&stdout);
        let action = &report["created"]["plan"]["cluster"]["action"];
        assert_eq!(
            action, "repair",
            "the failed cluster is written again: {report}"
        );
    }
    Some(outcome)
}

/// Injects `kind` into the requests `target` names (`bin` holds the fake `az`), runs the command
/// through `run` (exit code, stdout, stderr) and judges it: a fault shorter than the command's
/// budget is ridden out; a `Failed` operation (its error `failure`) stops it with ARM's words, the
/// step and that a re-run continues, and one re-run finishes. Returns the last run's stdout too.
async fn ride_out<F, R>(
    what: &str,
    arm: &FakeArm,
    bin: &std::path::Path,
    kind: Kind,
    (method, path): (&str, &str),
    failure: (&str, &str),
    run: F,
) -> (Outcome, String)
where
    F: Fn() -> R,
    R: std::future::Future<Output = (i32, String, String)>,
{
    let faults = match kind {
        Kind::Storm => vec![Injection::new(
            method,
            path,
            Fault::Throttle { retry_after: 10 },
            4,
        )],
        Kind::LongStorm => vec![Injection::new(
            method,
            path,
            Fault::Throttle { retry_after: 10 },
            5,
        )],
        Kind::Burst => vec![
            Injection::new(method, path, Fault::ServerError(503), 1),
            Injection::new(method, path, Fault::ServerError(500), 2),
        ],
        Kind::FailedOperation => {
            let fault = Fault::FailedOperation {
                code: failure.0.into(),
                message: failure.1.into(),
            };
            vec![Injection::new(method, path, fault, 1)]
        }
        Kind::ExpiringToken => vec![],
    };
    let tokens_before = (kind == Kind::ExpiringToken).then(|| rotate_tokens(bin));
    let lifetime = (kind == Kind::ExpiringToken).then_some(3);
    let before = arm.world(|w| {
        w.faults = faults;
        w.token_lifetime = lifetime;
        w.log.len()
    });
    let (code, mut stdout, stderr) = run().await;
    let injected = arm.world(|w| w.faults.iter().all(|f| f.times == 0));
    assert!(injected, "{what} {kind:?}: the fault was not met");
    let outcome = if matches!(kind, Kind::FailedOperation | Kind::LongStorm) {
        assert_eq!(code, 1, "{what} {kind:?}: {stderr}");
        let (said, rerun) = match kind {
            Kind::FailedOperation => (
                stderr.contains(failure.0) && stderr.contains(failure.1),
                "run the same command again: it continues from what exists",
            ),
            _ => (
                stderr.contains("ARM stayed busy: HTTP 429 (5 attempts")
                    && stderr.contains("TooManyRequests: The request is being throttled"),
                "a re-run continues where this one stopped",
            ),
        };
        assert!(said, "{what} {kind:?}: ARM's words: {stderr}");
        assert!(stderr.contains(rerun), "{what} {kind:?}: {stderr}");
        let (code, again, stderr) = run().await;
        assert_eq!(code, 0, "{what} re-run: {stderr}");
        stdout = again;
        Outcome::AfterOneRerun
    } else {
        assert_eq!(code, 0, "{what} {kind:?}: {stderr}");
        Outcome::OnItsOwn
    };
    if let Some(tokens_before) = tokens_before {
        let tokens = rotate_tokens(bin) - tokens_before;
        // Each token serves 3 requests and is refused on the 4th, which the next one repeats.
        let needed = arm.world(|w| w.log.len() - before).div_ceil(4);
        assert!(
            tokens > 1 && tokens as usize >= needed,
            "{what}: {tokens} tokens where {needed} were needed"
        );
    }
    arm.world(|w| w.token_lifetime = None);
    (outcome, stdout)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_command_finishes_through_arm_faults_or_fails_with_arms_words_and_a_rerun_converges() {
    let commands = [
        Command::Create,
        Command::Delete,
        Command::AttachAcr,
        Command::IdentitySetup,
    ];
    let kinds = [
        Kind::Storm,
        Kind::LongStorm,
        Kind::Burst,
        Kind::FailedOperation,
        Kind::ExpiringToken,
    ];
    for run in 1..=support::reliability_runs() {
        eprintln!("run {run}");
        for command in commands {
            for kind in kinds {
                let started = Instant::now();
                let outcome = run_row(command, kind).await;
                eprintln!(
                    "row {command:?} {kind:?}: {outcome:?} in {:.2} s",
                    started.elapsed().as_secs_f64()
                );
                let expected = match kind {
                    Kind::FailedOperation | Kind::LongStorm => Outcome::AfterOneRerun,
                    _ => Outcome::OnItsOwn,
                };
                if let Some(outcome) = outcome {
                    assert_eq!(outcome, expected);
                }
            }
        }
    }
}

/// A user kubeconfig with a context of its own, which `cluster create` must leave whole.
const USER_KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster:\n    server: https://other.example:6443\ncontexts:\n- name: other\n  context:\n    cluster: other\n    user: other\nusers:\n- name: other\n  user:\n    token: other-users-token\ncurrent-context: other\n";

/// `cluster create` is killed (SIGKILL) while the fake ARM holds its request `n`, before ARM
/// carries it out or after (the answer lost); the same command again must converge with every
/// write carried out once. Every point under `RELIABILITY_RUNS` > 1, 6 seeded ones otherwise.
#[tokio::test(flavor = "multi_thread")]
async fn cluster_create_killed_at_any_arm_request_converges_on_a_rerun() {
    let (rig, args) = Command::Create.rig().await;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, stderr) = rig.run(&args).await;
    assert_eq!(code, 0, "{stderr}");
    let log = rig.arm.world(|w| w.log.clone());
    let requests = log.len();
    let points: Vec<(usize, bool)> = (1..=requests)
        .flat_map(|n| [(n, false), (n, true)])
        .collect();
    let runs = support::reliability_runs();
    let chosen = match runs {
        1 => support::spread(&points, 6, 32),
        _ => points,
    };
    // And once right after the cluster's PUT while the creation still runs: the re-run waits
    // for it to end rather than going on with a cluster that is not there yet.
    let put = log
        .iter()
        .position(|r| r.starts_with("PUT ") && r.ends_with(CLUSTER));
    let slow = (put.unwrap() + 1, true, true);
    let chosen = (chosen.into_iter().map(|(n, after)| (n, after, false))).chain([slow]);
    let chosen: Vec<(usize, bool, bool)> = chosen.collect();
    for run in 1..=runs {
        eprintln!("run {run}");
        for &(n, after, slow) in &chosen {
            let started = Instant::now();
            let killed = kill_create_at(n, after, slow).await;
            let when = match (after, slow) {
                (false, _) => "before",
                (true, false) => "after",
                (true, true) => "after (the creation still running)",
            };
            eprintln!(
                "killed {when} request {n} ({killed}), converged in {:.2} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
}

/// One kill and its re-run (with a creation that takes its time when `slow`); returns the
/// request the kill came at.
async fn kill_create_at(n: usize, after: bool, slow: bool) -> String {
    let (rig, args) = Command::Create.rig().await;
    if slow {
        provision_slowly(&rig);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let kubeconfig = rig.home.path().join(".kube/config");
    std::fs::create_dir_all(kubeconfig.parent().unwrap()).unwrap();
    std::fs::write(&kubeconfig, USER_KUBECONFIG).unwrap();
    let (killed, stdout, stderr) = kill_and_rerun(&rig, &args, n, after).await;
    if slow {
        let waited =
            stderr.contains("AKS cluster c1 is Creating: waiting for that operation to end");
        assert!(waited, "{stderr}");
    }
    Command::Create.converged(&rig);
    // Each write carried out once: a write the killed run made is found, not made again.
    let carried_out = |kind: &str| {
        rig.arm.world(|w| {
            (w.requests.iter())
                .filter(|(key, _)| {
                    key.starts_with("PUT ") && key.to_ascii_lowercase().ends_with(kind)
                })
                .map(|(_, n)| n)
                .sum::<usize>()
        })
    };
    for kind in ["/managedclusters/c1", "/registries/c1acr", "/rg"] {
        assert_eq!(
            carried_out(kind),
            1,
            "{kind} after a kill at {killed}: {stdout}"
        );
    }
    let assignments = rig.arm.world(|w| {
        (w.requests.iter())
            .filter(|(key, _)| key.starts_with("PUT ") && key.contains("/roleAssignments/"))
            .map(|(_, n)| n)
            .sum::<usize>()
    });
    assert_eq!(assignments, 1, "AcrPull after a kill at {killed}");
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    let config: serde_json::Value = serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("the kubeconfig is torn: {e}\n{text}"));
    assert_eq!(config["contexts"][0]["name"], "other", "{text}");
    assert_eq!(config["current-context"], "other");
    killed
}

/// Runs `args`, kills it (SIGKILL) while the fake holds its request `n` (before carrying it out
/// or `after`), then runs it again, which must succeed. Returns the request, the re-run's stdout
/// and stderr.
async fn kill_and_rerun(
    rig: &Rig,
    args: &[&str],
    n: usize,
    after: bool,
) -> (String, String, String) {
    let killed = kill_at(&rig.arm, rig.command(args), n, after).await;
    let (code, stdout, stderr) = rig.run(args).await;
    assert_eq!(code, 0, "re-run after a kill at {killed}: {stderr}");
    (killed, stdout, stderr)
}

/// Starts `cmd` and kills it (SIGKILL) while `arm` holds its request number `n` of the fake's log
/// (before carrying it out or `after`); returns that request.
async fn kill_at(arm: &FakeArm, mut cmd: std::process::Command, n: usize, after: bool) -> String {
    arm.world(|w| {
        w.hold = Some((n, after));
        w.holding = false;
    });
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    let killed = loop {
        if arm.world(|w| w.holding) {
            child.kill().unwrap();
            child.wait().unwrap();
            break arm.world(|w| w.log[n - 1].clone());
        }
        if let Some(status) = child.try_wait().unwrap() {
            let seen = arm.world(|w| w.log.clone());
            panic!("exit {status} before request {n}: {seen:#?}");
        }
        assert!(Instant::now() < deadline, "request {n} never came");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    arm.world(|w| w.hold = None);
    killed
}

/// Every point of a run of `command`: each request it makes, held before or after.
async fn kill_points(command: Command) -> Vec<(usize, bool)> {
    let (rig, args) = command.rig().await;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, stderr) = rig.run(&args).await;
    assert_eq!(code, 0, "{command:?}: {stderr}");
    let requests = rig.arm.world(|w| w.log.len());
    (1..=requests)
        .flat_map(|n| [(n, false), (n, true)])
        .collect()
}

/// `cluster delete`, `cluster attach-acr` and `identity setup` killed (SIGKILL) at their ARM
/// requests, held before or after ARM carries them out; the same command again converges with
/// nothing made twice. Every point under `RELIABILITY_RUNS` > 1, 2 seeded ones each otherwise.
#[tokio::test(flavor = "multi_thread")]
async fn the_other_writing_commands_killed_at_any_arm_request_converge_on_a_rerun() {
    let runs = support::reliability_runs();
    for command in [Command::Delete, Command::AttachAcr, Command::IdentitySetup] {
        let points = kill_points(command).await;
        let chosen = match runs {
            1 => support::spread(&points, 2, 32),
            _ => points,
        };
        for run in 1..=runs {
            eprintln!("run {run}");
            for &(n, after) in &chosen {
                let started = Instant::now();
                let (rig, args) = command.rig().await;
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let (killed, _, _) = kill_and_rerun(&rig, &args, n, after).await;
                command.converged(&rig);
                let when = if after { "after" } else { "before" };
                eprintln!(
                    "{command:?} killed {when} request {n} ({killed}), converged in {:.2} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
}

/// `fleet add` on AKS (the Flux extension, then a Flux configuration, each a long-running
/// operation) under the same faults, then killed at its ARM requests, on one rig with the real
/// Flux controllers shared by the rows and the kills.
#[tokio::test(flavor = "multi_thread")]
async fn fleet_add_on_aks_finishes_through_arm_faults_or_a_rerun_converges_even_after_a_kill() {
    use crate::fleet::AksFleet;
    let Some(registry) = support::registry::Registry::open() else {
        return;
    };
    let rig = tokio::task::spawn_blocking(|| support::rig::private_rig_with(&["--kustomize"]));
    let Some(rig) = rig.await.unwrap() else {
        return;
    };
    let fleet = AksFleet::start(&rig).await;
    let image = format!("{}/hello-aks@sha256:{}", registry.host(), "ef".repeat(32));
    let published = fleet
        .run(&["publish", "--image", &image, "--env", "prod"])
        .await;
    assert!(published.status.success(), "{published:?}");
    let configuration = "/fluxconfigurations/hello-aks";
    let extension = "/extensions/flux";
    // (fault, the write it hits, the error a failed operation reports)
    let config_failed = (
        "FluxConfigurationProvisioningFailed",
        "The fluxconfig-agent could not reconcile the configuration: the extension's agent is not ready. Retry the operation once the microsoft.flux extension reports Succeeded.",
    );
    let extension_failed = (
        "ExtensionOperationFailed",
        "The extension operation failed with the following error: Error: [ InnerError: [Helm installation failed : Timed out waiting for the resource to come to a ready/completed state]].",
    );
    let rows = [
        (Kind::Storm, configuration, config_failed),
        (Kind::LongStorm, configuration, config_failed),
        (Kind::Burst, configuration, config_failed),
        (Kind::FailedOperation, configuration, config_failed),
        (Kind::FailedOperation, extension, extension_failed),
        (Kind::ExpiringToken, configuration, config_failed),
    ];
    for run in 1..=support::reliability_runs() {
        eprintln!("run {run}");
        for (row, &(kind, path, failure)) in rows.iter().enumerate() {
            let started = Instant::now();
            // Each row starts on a cluster without the extension, in a namespace of its own.
            fleet.arm.world(|w| {
                w.extensions.clear();
                w.flux.configurations.clear();
            });
            let ns = format!("faults-{run}-{row}");
            let args = [
                "fleet",
                "add",
                "aks:rg/aks1",
                "-n",
                &ns,
                "--env",
                "prod",
                "--secret",
                "api_token=x",
                "--interval",
                "5s",
            ];
            let add = || async {
                let output = fleet.run(&args).await;
                let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
                let code = output.status.code().unwrap_or(-1);
                (code, text(&output.stdout), text(&output.stderr))
            };
            let target = ("PUT", path);
            let (outcome, _) = ride_out(
                "fleet add",
                &fleet.arm,
                fleet.bin.path(),
                kind,
                target,
                failure,
                add,
            )
            .await;
            let expected = match kind {
                Kind::FailedOperation | Kind::LongStorm => Outcome::AfterOneRerun,
                _ => Outcome::OnItsOwn,
            };
            assert_eq!(outcome, expected);
            followed_through_arm(&fleet.arm, &rig, &ns);
            eprintln!(
                "row fleet add {kind:?} on {path}: {outcome:?} in {:.2} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    fleet_add_killed_at_any_arm_request(&fleet, &rig).await;
}

/// One Flux extension and one Flux configuration in the fake ARM, both `Succeeded`, and the
/// configuration's Kustomization in namespace `ns` of the rig.
fn followed_through_arm(arm: &FakeArm, rig: &support::rig::Rig, ns: &str) {
    let (extensions, configurations) = arm.world(|w| {
        let states = |values: Vec<&serde_json::Value>| -> Vec<String> {
            (values.iter())
                .map(|v| v["properties"]["provisioningState"].to_string())
                .collect()
        };
        (
            states(w.extensions.values().collect()),
            states(w.flux.configurations.values().collect()),
        )
    });
    assert_eq!(extensions, ["\"Succeeded\""], "one extension");
    assert_eq!(configurations, ["\"Succeeded\""], "one configuration");
    let kustomization = rig.kubectl_ok(&["get", "kustomization", "-n", ns, "-o", "name"]);
    assert_eq!(
        kustomization.trim(),
        "kustomization.kustomize.toolkit.fluxcd.io/hello-aks-objects"
    );
}

/// `fleet add aks:…` killed (SIGKILL) while the fake ARM holds one of its requests, before ARM
/// carries it out or after (the answer lost), on a cluster without the Flux extension; the same
/// command again converges: the extension written once, the configuration once by the re-run
/// (and at most once by the killed run: the same properties again), both `Succeeded`, the
/// Kustomization on the rig, and the state file whole, remembering the member. Every point under
/// `RELIABILITY_RUNS` > 1, 3 seeded ones otherwise.
async fn fleet_add_killed_at_any_arm_request(
    fleet: &crate::fleet::AksFleet,
    rig: &support::rig::Rig,
) {
    let args = |ns: &str| -> Vec<String> {
        let a = ["fleet", "add", "aks:rg/aks1", "-n", ns, "--env", "prod"];
        let b = ["--secret", "api_token=x", "--interval", "5s"];
        a.iter().chain(b.iter()).map(|s| s.to_string()).collect()
    };
    // Each run starts on a cluster without the extension; the number of the fake's next request.
    let fresh = || {
        fleet.arm.world(|w| {
            w.extensions.clear();
            w.flux.configurations.clear();
            w.log.len()
        })
    };
    let puts = |kind: &str| {
        fleet.arm.world(|w| {
            (w.requests.iter())
                .filter(|(key, _)| {
                    key.starts_with("PUT ") && key.to_ascii_lowercase().contains(kind)
                })
                .map(|(_, n)| n)
                .sum::<usize>()
        })
    };
    let (extension, configuration) = ("/extensions/flux", "/fluxconfigurations/hello-aks");
    let state = || -> serde_json::Value {
        let text = std::fs::read_to_string(fleet.home.path().join("state")).unwrap();
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("the state file is torn: {e}\n{text}"))
    };
    // An uninterrupted run numbers the requests.
    let base = fresh();
    let first = args("kills");
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let output = fleet.run(&first).await;
    assert!(output.status.success(), "{output:?}");
    let log = fleet.arm.world(|w| w.log[base..].to_vec());
    let points: Vec<(usize, bool)> = (1..=log.len())
        .flat_map(|n| [(n, false), (n, true)])
        .collect();
    let runs = support::reliability_runs();
    let chosen = match runs {
        1 => support::spread(&points, 3, 32),
        _ => points,
    };
    // And once right after the extension's PUT while its creation still runs (1.5 s): the re-run
    // waits for it to end rather than writing the extension again.
    let put = (log.iter()).position(|r| r.starts_with("PUT ") && r.ends_with(extension));
    let slow = (put.expect("the extension is written") + 1, true, true);
    let chosen = (chosen.into_iter().map(|(n, after)| (n, after, false))).chain([slow]);
    let chosen: Vec<(usize, bool, bool)> = chosen.collect();
    for run in 1..=runs {
        eprintln!("run {run}");
        for (i, &(n, after, slow)) in chosen.iter().enumerate() {
            let started = Instant::now();
            let ns = format!("kills-{run}-{i}");
            let args = args(&ns);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let base = fresh();
            let before = (puts(extension), puts(configuration));
            let creation = slow.then_some(std::time::Duration::from_millis(1500));
            fleet.arm.world(|w| w.extension_creation = creation);
            let killed = kill_at(&fleet.arm, fleet.command(&args), base + n, after).await;
            let published = state()["apps"].to_string();
            assert!(published.contains("hello-aks-deploy"), "{published}");
            let by_the_killed = puts(configuration) - before.1;
            let output = fleet.run(&args).await;
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                output.status.success(),
                "re-run after a kill at {killed}: {stderr}"
            );
            fleet.arm.world(|w| w.extension_creation = None);
            if slow {
                let waited = "the Flux cluster extension on aks1 is Creating: waiting for that operation to end";
                assert!(stderr.contains(waited), "{stderr}");
            }
            followed_through_arm(&fleet.arm, rig, &ns);
            assert_eq!(
                puts(extension) - before.0,
                1,
                "the extension after a kill at {killed}"
            );
            assert!(by_the_killed <= 1, "{killed}");
            let by_the_rerun = puts(configuration) - before.1 - by_the_killed;
            assert_eq!(
                by_the_rerun, 1,
                "the configuration after a kill at {killed}"
            );
            let fleet_members = state()["apps"].to_string();
            let member = format!("\"namespace\":\"{ns}\"");
            assert!(
                fleet_members.contains(&member),
                "remembered: {fleet_members}"
            );
            let when = match (after, slow) {
                (false, _) => "before",
                (true, false) => "after",
                (true, true) => "after (the extension's creation still running)",
            };
            eprintln!(
                "fleet add killed {when} request {n} ({killed}), converged in {:.2} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
}

/// `cluster create` with its install, killed while it installs: right after the Flux extension's
/// PUT (answer lost), before it asks ARM for the cluster's credentials, and while it writes to
/// the API server. The same command again finishes the install on the same cluster, with the
/// cluster and the extension written once. Every point under `RELIABILITY_RUNS` > 1, the last
/// one otherwise (each costs an install).
#[tokio::test(flavor = "multi_thread")]
async fn cluster_create_killed_during_its_install_converges_on_a_rerun() {
    use crate::cluster_aks::{run_blocking, Aks};
    let aks = Aks::empty().await;
    let rig = aks.rigs_on_create(&["--bare", "--flux"]);
    let create = |extra: &[&str]| {
        let mut cmd = aks.azure(&["cluster", "create", "-y", "--cluster", "spin1"]);
        cmd.args(["--resource-group", "rg-new", "--location", "westeurope"])
            .args(extra)
            .env("SPIN_AKS_ARM_DELAY_SCALE", "0.05");
        cmd
    };
    let first = run_blocking(create(&["--no-install"])).await;
    let why = String::from_utf8_lossy(&first.stderr).into_owned();
    if why.contains("the kube rig did not start") {
        support::skip(&why);
        return;
    }
    assert!(first.status.success(), "{why}");
    let kubeconfig = aks.home().join(".kube/config");
    std::fs::create_dir_all(kubeconfig.parent().unwrap()).unwrap();
    std::fs::write(&kubeconfig, USER_KUBECONFIG).unwrap();
    let (charts, proxy) = {
        let new = rig.lock().unwrap();
        let new = new.as_ref().expect("the creation stood up a rig");
        (
            new.env("CHART_REGISTRY").unwrap(),
            new.env("MODULE_PROXY").unwrap(),
        )
    };
    let install = [
        "--chart-registry",
        &charts,
        "--module-proxy",
        &proxy,
        "--timeout",
        "5m",
    ];
    let extension = "/providers/Microsoft.KubernetesConfiguration/extensions/flux";
    let credentials = "/listClusterUserCredential";
    // (method and path end of the request, held after carrying it out or before; or, with
    // seconds, not held: the run goes on that long after it, writing to the API server)
    let points = [
        ("PUT", extension, true, 0),
        ("POST", credentials, false, 0),
        ("POST", credentials, true, 4),
    ];
    let chosen = match support::reliability_runs() {
        1 => &points[2..],
        _ => &points[..],
    };
    let puts = |path: &str| {
        aks.arm.world(|w| {
            (w.requests.iter())
                .filter(|(key, _)| key.starts_with("PUT ") && key.ends_with(path))
                .map(|(_, n)| n)
                .sum::<usize>()
        })
    };
    for run in 1..=support::reliability_runs() {
        eprintln!("run {run}");
        for &(method, path, after, seconds) in chosen {
            let started = Instant::now();
            // The extension is gone again, so each install writes it.
            let seen = |w: &support::arm::World| {
                let asked = format!("{method} ");
                (w.log.iter())
                    .filter(|r| r.starts_with(&asked) && r.ends_with(path))
                    .count()
            };
            let seen_before = aks.arm.world(|w| {
                w.extensions.clear();
                w.holding = false;
                if seconds == 0 {
                    w.hold_matching = Some((method.into(), path.into(), after));
                }
                seen(w)
            });
            let extensions_before = puts(extension);
            let mut child = create(&install);
            child
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            let mut child = child.spawn().unwrap();
            let deadline = Instant::now() + std::time::Duration::from_secs(120);
            while !aks
                .arm
                .world(|w| w.holding || (seconds > 0 && seen(w) > seen_before))
            {
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "the run ended before {path}"
                );
                assert!(Instant::now() < deadline, "{path} never came");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
            child.kill().unwrap();
            child.wait().unwrap();
            aks.arm.world(|w| w.hold_matching = None);
            let again = run_blocking(create(&install)).await;
            let stderr = String::from_utf8_lossy(&again.stderr);
            assert!(
                again.status.success(),
                "re-run after a kill at {path}: {stderr}"
            );
            let report = support::json_stdout(&again);
            let stages = report["install"]["stages"].as_array().unwrap().len();
            assert_eq!(stages, 4, "{report}");
            assert_eq!(report["created"]["plan"]["cluster"]["action"], "unchanged");
            assert_eq!(
                puts("/managedClusters/spin1"),
                1,
                "the cluster is written once"
            );
            let extensions = puts(extension) - extensions_before;
            assert_eq!(extensions, 1, "the extension is written once: {report}");
            let text = std::fs::read_to_string(&kubeconfig).unwrap();
            let config: serde_json::Value = serde_saphyr::from_str(&text)
                .unwrap_or_else(|e| panic!("the kubeconfig is torn: {e}\n{text}"));
            assert_eq!(config["contexts"][0]["name"], "other", "{text}");
            eprintln!(
                "killed {} {method} …{path}, converged in {:.1} s",
                match (after, seconds) {
                    (_, 1..) => format!("{seconds} s after"),
                    (true, _) => "right after".to_string(),
                    (false, _) => "right before".to_string(),
                },
                started.elapsed().as_secs_f64()
            );
        }
    }
}
