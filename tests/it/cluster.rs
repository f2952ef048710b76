//! `apply`, `up`, `status`, `logs`, `port-forward` and `delete` through the real binary against
//! the real control plane of scripts/kube-rig (one per test process; each test in its own namespace).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::support::apps::example_copy;
use crate::support::rig::{apply_example, fake_image, rig, spin_aks_on, Rig};
use crate::support::scaffold::KEY_VAULT;
use crate::support::{json_stdout, run_ok};
use serde_json::Value;

const SECRET: &str = "tok-3f9a2c-never-printed";

struct Case {
    rig: &'static Rig,
    home: tempfile::TempDir,
    app: PathBuf,
    ns: String,
}

/// A copy of the example app, a private home and a fresh namespace with the executor.
fn case(hint: &str) -> Option<Case> {
    let rig = rig()?;
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let ns = rig.namespace(hint);
    Some(Case { rig, home, app, ns })
}

impl Case {
    fn run(&self, args: &[&str]) -> Output {
        self.run_with(&[], args)
    }

    /// [`Case::run`] with environment variables set.
    fn run_with(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        spin_aks_on(self.rig, self.home.path())
            .envs(env.iter().copied())
            .arg("-f")
            .arg(&self.app)
            .args(args)
            .output()
            .unwrap()
    }

    /// `apply --output json -n <ns>` with the given flags; asserts success.
    fn apply(&self, args: &[&str]) -> Value {
        let mut all = vec!["apply", "--output", "json", "-n", &self.ns];
        all.extend_from_slice(args);
        let output = self.run(&all);
        assert_success(&output);
        json_stdout(&output)
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.ns.as_str()];
        all.extend_from_slice(args);
        self.rig.kubectl_ok(&all)
    }

    fn write_yaml(&self, name: &str, text: &str) -> PathBuf {
        let dir = self.home.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("app.yaml"), text).unwrap();
        dir
    }
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn actions(report: &Value) -> Vec<(String, String, String)> {
    report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap().to_string(),
                o["name"].as_str().unwrap().to_string(),
                o["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn secret_flag() -> String {
    format!("api_token={SECRET}")
}

// ---------- apply: create, unchanged, conflicts, dry run, diff, prune ----------

#[test]
fn apply_creates_waits_for_the_pinned_image_and_reapplying_changes_nothing() {
    let Some(c) = case("create") else { return };
    let image = fake_image(1);
    let report = c.apply(&["--image", &image, "--secret", &secret_flag()]);
    assert_eq!(
        actions(&report),
        vec![
            (
                "Secret".into(),
                "hello-aks-variables".into(),
                "created".into()
            ),
            ("SpinApp".into(), "hello-aks".into(), "created".into()),
        ]
    );
    assert_eq!(report["image"], image);
    assert_eq!(report["namespace"], c.ns);
    assert_eq!(report["rollout"]["ready"], 2);
    assert_eq!(report["rollout"]["desired"], 2);
    assert_eq!(report["endpoint"], Value::Null);
    // The operator's Deployment runs exactly the pinned image.
    assert_eq!(c.rig.running_image(&c.ns, "hello-aks"), image);

    let versions = || {
        c.kubectl(&[
            "get",
            "spinapp,secret,deployment",
            "-o",
            "jsonpath={.items[*].metadata.resourceVersion}",
        ])
    };
    let before = versions();
    let again = c.apply(&["--image", &image]);
    assert!(
        actions(&again).iter().all(|(_, _, a)| a == "unchanged"),
        "{again}"
    );
    assert_eq!(versions(), before, "an unchanged apply writes nothing");
}

#[test]
fn another_field_manager_conflicts_until_force_conflicts() {
    let Some(c) = case("conflict") else { return };
    let image = fake_image(2);
    c.apply(&["--image", &image, "--secret", &secret_flag(), "--no-wait"]);
    let edit = c.write_yaml(
        "edit",
        "apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinApp\nmetadata:\n  name: hello-aks\nspec:\n  image: x\n  executor: containerd-shim-spin\n  replicas: 3\n",
    );
    c.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        &edit.join("app.yaml").to_string_lossy(),
    ]);

    let output = c.run(&["apply", "-n", &c.ns, "--image", &image, "--no-wait"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("SpinApp/hello-aks .spec.replicas") && err.contains("\"other\""),
        "{err}"
    );
    assert!(err.contains("--force-conflicts"), "{err}");

    let forced = c.apply(&["--image", &image, "--no-wait", "--force-conflicts"]);
    assert_eq!(forced["objects"][1]["action"], "configured");
    assert_eq!(
        c.kubectl(&[
            "get",
            "spinapp",
            "hello-aks",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "2"
    );
}

#[test]
fn dry_run_and_diff_write_nothing() {
    let Some(c) = case("dryrun") else { return };
    let image = fake_image(3);
    let report = c.apply(&[
        "--image",
        &image,
        "--secret",
        &secret_flag(),
        "--dry-run",
        "server",
    ]);
    assert_eq!(report["dry_run"], true);
    assert!(
        actions(&report).iter().all(|(_, _, a)| a == "created"),
        "{report}"
    );
    assert_eq!(
        c.kubectl(&["get", "spinapp,secret", "-o", "name"]).trim(),
        "",
        "a dry run persists nothing"
    );

    c.apply(&["--image", &image, "--secret", &secret_flag(), "--no-wait"]);
    // The operator keeps writing status; the spec, its generation and the data are what a dry
    // run must not touch.
    let spec = || {
        c.kubectl(&[
            "get",
            "spinapp,secret",
            "-o",
            "jsonpath={range .items[*]}{.metadata.generation} {.spec} {.data}{end}",
        ])
    };
    let before = spec();
    let diffed = c.apply(&[
        "--image",
        &fake_image(4),
        "--replicas",
        "3",
        "--secret",
        "api_token=changed-value",
        "--diff",
        "--dry-run",
        "server",
    ]);
    let diff = diffed["diff"].as_str().unwrap();
    assert!(
        diff.contains("-  replicas: 2") && diff.contains("+  replicas: 3"),
        "{diff}"
    );
    assert!(diff.contains(&fake_image(4)), "{diff}");
    assert!(
        diff.contains("*** (after)") && !diff.contains("changed-value") && !diff.contains(SECRET),
        "{diff}"
    );
    assert!(!diff.contains("managedFields"), "{diff}");
    assert_eq!(spec(), before);
}

#[test]
fn prune_deletes_what_is_no_longer_generated_and_kubectl_sees_the_applyset() {
    let Some(c) = case("prune") else { return };
    let image = fake_image(5);
    let report = c.apply(&[
        "--image",
        &image,
        "--secret",
        &secret_flag(),
        "--expose",
        "loadbalancer",
        "--no-wait",
    ]);
    assert!(actions(&report).contains(&(
        "Service".into(),
        "hello-aks-public".into(),
        "created".into()
    )));

    let id = c.kubectl(&[
        "get",
        "secret",
        "hello-aks-applyset",
        "-o",
        "jsonpath={.metadata.labels.applyset\\.kubernetes\\.io/id}",
    ]);
    assert!(id.starts_with("applyset-") && id.ends_with("-v1"), "{id}");
    let kinds = c.kubectl(&[
        "get",
        "secret",
        "hello-aks-applyset",
        "-o",
        "jsonpath={.metadata.annotations.applyset\\.kubernetes\\.io/contains-group-kinds}",
    ]);
    assert_eq!(kinds, "Secret,Service,SpinApp.core.spinkube.dev");
    let members = c.kubectl(&[
        "get",
        "secrets,services,spinapps",
        "-l",
        &format!("applyset.kubernetes.io/part-of={id}"),
        "-o",
        "name",
    ]);
    assert_eq!(members.lines().count(), 3, "{members}");
    // kubectl's own ApplySet code reads our parent and refuses to take over another tool's set.
    let kubectl = c
        .rig
        .kubectl()
        .env("KUBECTL_APPLYSET", "true")
        .args([
            "apply",
            "-n",
            &c.ns,
            "--server-side",
            "--prune",
            "--applyset=hello-aks-applyset",
            "--dry-run=server",
            "-f",
        ])
        .arg(
            c.write_yaml(
                "kubectl-set",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
            )
            .join("app.yaml"),
        )
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&kubectl.stderr);
    assert!(
        !kubectl.status.success() && said.contains("spin-aks"),
        "kubectl: {said}"
    );

    let pruned = c.apply(&["--image", &image, "--prune", "--no-wait"]);
    assert!(
        actions(&pruned).contains(&("Service".into(), "hello-aks-public".into(), "pruned".into())),
        "{pruned}"
    );
    assert_eq!(
        c.kubectl(&["get", "services", "-o", "name"])
            .lines()
            .filter(|l| l.contains("public"))
            .count(),
        0
    );
    let kinds = c.kubectl(&[
        "get",
        "secret",
        "hello-aks-applyset",
        "-o",
        "jsonpath={.metadata.annotations.applyset\\.kubernetes\\.io/contains-group-kinds}",
    ]);
    assert_eq!(kinds, "Secret,SpinApp.core.spinkube.dev");
}

// ---------- secrets ----------

#[test]
fn a_required_secret_without_a_value_stops_apply_before_anything_is_written() {
    let Some(c) = case("nosecret") else { return };
    let output = c.run(&["apply", "-n", &c.ns, "--image", &fake_image(6)]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("api_token (key `api_token` of Secret hello-aks-variables)"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        c.kubectl(&["get", "spinapp,secret", "-o", "name"]).trim(),
        ""
    );

    let unknown = c.run(&[
        "apply",
        "-n",
        &c.ns,
        "--image",
        &fake_image(6),
        "--secret",
        "greeting=x",
    ]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("reads no variable `greeting`"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn secrets_come_from_flags_files_and_env_and_never_leak() {
    let Some(c) = case("secrets") else { return };
    let file = c.home.path().join("token.txt");
    // Written as `echo` writes it: the one final newline is not part of the value.
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let from_file = format!("api_token=@{}", file.display());
    let first = c.run(&[
        "apply",
        "-n",
        &c.ns,
        "--image",
        &fake_image(7),
        "--secret",
        &from_file,
        "--no-wait",
        "--diff",
        "-v",
    ]);
    assert_success(&first);
    let data = c.kubectl(&[
        "get",
        "secret",
        "hello-aks-variables",
        "-o",
        "jsonpath={.data.api_token}",
    ]);
    use base64::Engine;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap(),
        SECRET.as_bytes()
    );

    // A later apply without --secret keeps the value; from env it replaces it.
    let second = c.run(&["apply", "-n", &c.ns, "--image", &fake_image(7), "--no-wait"]);
    assert_success(&second);
    let third = spin_aks_on(c.rig, c.home.path())
        .arg("-f")
        .arg(&c.app)
        .args([
            "apply",
            "-n",
            &c.ns,
            "--image",
            &fake_image(7),
            "--secret",
            "API_TOKEN",
            "--no-wait",
            "--output",
            "json",
            "--diff",
        ])
        .env("SPIN_VARIABLE_API_TOKEN", "from-env-value")
        .output()
        .unwrap();
    assert_success(&third);
    let data = c.kubectl(&[
        "get",
        "secret",
        "hello-aks-variables",
        "-o",
        "jsonpath={.data.api_token}",
    ]);
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap(),
        b"from-env-value"
    );

    let state = std::fs::read_to_string(c.home.path().join("state")).unwrap();
    for output in [&first, &second, &third] {
        for text in [
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        ] {
            assert!(
                !text.contains(SECRET) && !text.contains("from-env-value"),
                "leaked: {text}"
            );
        }
    }
    assert!(!state.contains(SECRET) && !state.contains("from-env-value"));
}

// ---------- objects from a directory ----------

fn scaffold(c: &Case, args: &[&str]) -> PathBuf {
    let out = c.home.path().join("deploy-out");
    let mut all = vec![
        "scaffold",
        "-o",
        out.to_str().unwrap(),
        "--image",
        "registry.example/hello-aks:0.1.0",
    ];
    all.extend_from_slice(args);
    assert_success(&c.run(&all));
    out
}

#[test]
fn dir_with_scaffolded_plain_yaml_and_a_user_edit() {
    let Some(c) = case("dirkube") else { return };
    let out = scaffold(&c, &["--type", "kube"]);
    let file = out.join("hello-aks.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("replicas: 2", "replicas: 1");
    std::fs::write(&file, text).unwrap();
    let report = c.apply(&[
        "--dir",
        out.to_str().unwrap(),
        "--image",
        &fake_image(8),
        "--secret",
        &secret_flag(),
    ]);
    assert_eq!(
        report["rollout"]["desired"], 1,
        "the user's edit is applied: {report}"
    );
    assert_eq!(
        c.kubectl(&[
            "get",
            "spinapp",
            "hello-aks",
            "-o",
            "jsonpath={.spec.image}"
        ]),
        fake_image(8)
    );
}

#[test]
fn dir_with_scaffolded_kustomize_matches_kubectl_kustomize() {
    let Some(c) = case("dirkust") else { return };
    let out = scaffold(&c, &["--type", "kustomize", "--namespace", &c.ns]);
    let overlay = out.join("overlays/production");
    // Our native build, through a server dry run, against kubectl's own rendering.
    let theirs = run_ok(c.rig.kubectl().args(["kustomize"]).arg(&overlay));
    let theirs: Vec<Value> = serde_saphyr::from_multiple(&theirs).unwrap();
    let report = c.apply(&[
        "--dir",
        out.to_str().unwrap(),
        "--image",
        &fake_image(9),
        "--secret",
        &secret_flag(),
    ]);
    assert_eq!(report["namespace"], c.ns);
    let spinapp = theirs.iter().find(|o| o["kind"] == "SpinApp").unwrap();
    let live: Value =
        serde_json::from_str(&c.kubectl(&["get", "spinapp", "hello-aks", "-o", "json"])).unwrap();
    assert_eq!(live["spec"]["variables"], spinapp["spec"]["variables"]);
    assert_eq!(
        live["metadata"]["labels"]["app.kubernetes.io/name"],
        spinapp["metadata"]["labels"]["app.kubernetes.io/name"]
    );
    assert_eq!(
        live["spec"]["image"],
        fake_image(9),
        "the pinned image replaces the overlay's tag"
    );
}

#[test]
fn unsupported_kustomize_fields_are_refused_by_name() {
    let Some(c) = case("kustbad") else { return };
    let dir = c.write_yaml(
        "kust",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    );
    std::fs::write(
        dir.join("kustomization.yaml"),
        "resources: [app.yaml]\nconfigMapGenerator:\n- name: y\n",
    )
    .unwrap();
    let output = c.run(&[
        "apply",
        "-n",
        &c.ns,
        "--dir",
        dir.to_str().unwrap(),
        "--image",
        &fake_image(10),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("`configMapGenerator` is not supported"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn dir_with_a_helm_chart_is_installed_with_helm() {
    let Some(c) = case("helm") else { return };
    if support::tool("helm").is_none() {
        return;
    }
    let out = scaffold(&c, &["--type", "helm"]);
    let report = c.apply(&[
        "--dir",
        out.to_str().unwrap(),
        "--image",
        &fake_image(11),
        "--secret",
        &secret_flag(),
    ]);
    assert_eq!(report["rollout"]["ready"], 2, "{report}");
    let releases = c.rig.kubectl_ok(&[
        "get",
        "secrets",
        "-n",
        &c.ns,
        "-l",
        "owner=helm",
        "-o",
        "name",
    ]);
    assert!(
        releases.contains("sh.helm.release.v1.hello-aks.v1"),
        "{releases}"
    );

    let no_helm = spin_aks_on(c.rig, c.home.path())
        .env("PATH", "/nonexistent")
        .arg("-f")
        .arg(&c.app)
        .args([
            "apply",
            "-n",
            &c.ns,
            "--dir",
            out.to_str().unwrap(),
            "--image",
            &fake_image(11),
        ])
        .output()
        .unwrap();
    assert_eq!(no_helm.status.code(), Some(2));
    assert!(
        stderr(&no_helm).contains("needs `helm` on PATH"),
        "{}",
        stderr(&no_helm)
    );
}

// ---------- rollout failures, each through the real controllers and kwok's stages ----------

fn failing_spinapp(c: &Case, mode: &str, image: &str) -> PathBuf {
    c.write_yaml(
        mode,
        &format!(
            "apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinApp\nmetadata:\n  name: hello-aks\nspec:\n  image: {image}\n  executor: containerd-shim-spin\n  replicas: 1\n  podLabels:\n    spin-aks-test-fail: {mode}\n"
        ),
    )
}

fn apply_failing(c: &Case, mode: &str, timeout: &str) -> String {
    let image = fake_image(12);
    let dir = failing_spinapp(c, mode, &image);
    let output = c.run_with(
        &[("SPIN_AKS_PROGRESS_SECONDS", "1")],
        &[
            "apply",
            "-n",
            &c.ns,
            "--dir",
            dir.to_str().unwrap(),
            "--image",
            &image,
            "--timeout",
            timeout,
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    stderr(&output)
}

#[test]
fn image_pull_failures_name_the_fix() {
    let Some(c) = case("pull") else { return };
    let err = apply_failing(&c, "image-pull", "2m");
    assert!(
        err.contains("cannot pull its image (ImagePullBackOff"),
        "{err}"
    );
    assert!(err.contains("spin-aks cluster attach-acr"), "{err}");
    assert!(
        err.contains("401 Unauthorized"),
        "the event is shown: {err}"
    );
}

#[test]
fn crashing_apps_show_their_last_log_lines() {
    let Some(c) = case("crash") else { return };
    let err = apply_failing(&c, "crash", "2m");
    assert!(err.contains("CrashLoopBackOff, exit code 1"), "{err}");
    assert!(
        err.contains("wasm trap: unreachable"),
        "the previous container's log: {err}"
    );
}

#[test]
fn a_node_without_the_shim_is_reported_as_such() {
    let Some(c) = case("noshim") else { return };
    let err = apply_failing(&c, "no-runtime", "2m");
    assert!(err.contains("no runtime for \"spin\""), "{err}");
    assert!(err.contains("install containerd-shim-spin"), "{err}");
}

#[test]
fn pods_that_never_get_ready_time_out_with_their_events() {
    let Some(c) = case("notready") else { return };
    let err = apply_failing(&c, "never-ready", "4s");
    assert!(err.contains("did not finish within 4s"), "{err}");
    assert!(err.contains("Readiness probe failed"), "{err}");
    // Without a terminal the wait says it goes on at every progress interval (1 s here; the
    // default is 5 s), so a CI log never looks stalled.
    let ticks = err
        .lines()
        .filter(|l| l.starts_with("waiting for hello-aks to roll out: still running after"))
        .count();
    assert!(
        (2..=4).contains(&ticks),
        "{ticks} progress lines in 4 s: {err}"
    );
}

#[test]
fn a_wait_that_another_apply_superseded_ends_at_once_naming_the_newer_image() {
    let Some(c) = case("superseded") else { return };
    let (mine, theirs) = (fake_image(13), fake_image(14));
    // This run's pods never get ready, so only the other run's apply can end its wait early.
    let dir = failing_spinapp(&c, "never-ready", &mine);
    let mut first = spin_aks_on(c.rig, c.home.path());
    first.arg("-f").arg(&c.app).args([
        "apply",
        "-n",
        &c.ns,
        "--dir",
        dir.to_str().unwrap(),
        "--image",
        &mine,
        "--timeout",
        "5m",
    ]);
    let (send, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || send.send(first.output().unwrap()));
    let image = || {
        c.rig
            .kubectl()
            .args(["get", "spinapp", "hello-aks", "-n", &c.ns])
            .args(["-o", "jsonpath={.spec.image}"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let applied = std::time::Instant::now();
    while image() != mine {
        assert!(applied.elapsed() < Duration::from_secs(60), "never applied");
        std::thread::sleep(Duration::from_millis(100));
    }

    let newer = c.write_yaml(
        "newer",
        &format!("apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinApp\nmetadata:\n  name: hello-aks\nspec:\n  image: {theirs}\n  executor: containerd-shim-spin\n  replicas: 1\n"),
    );
    let second = c.run(&[
        "apply",
        "-n",
        &c.ns,
        "--dir",
        newer.to_str().unwrap(),
        "--image",
        &theirs,
        "--no-wait",
    ]);
    assert_success(&second);
    // Well before its 5-minute timeout: the watch on its SpinApp shows the newer image.
    let output = done
        .recv_timeout(Duration::from_secs(60))
        .expect("the superseded run still waits 60 s after the newer apply");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains(&format!("it now runs {theirs} instead of {mine}")),
        "{err}"
    );
    assert!(
        err.contains("This run's image is pushed and intact"),
        "{err}"
    );
    assert_eq!(image(), theirs, "the newer apply stands");
}

#[test]
fn a_missing_runtime_class_fails_the_rollout_with_the_fix() {
    let Some(c) = case("rtclass") else { return };
    let output = c.run(&[
        "apply",
        "-n",
        &c.ns,
        "--image",
        &fake_image(13),
        "--secret",
        &secret_flag(),
        "--workload",
        "deployment",
        "--runtime-class",
        "no-such-class",
        "--timeout",
        "2m",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("RuntimeClass") && err.contains("no-such-class"),
        "{err}"
    );
    assert!(err.contains("spin-aks cluster check"), "{err}");
}

// ---------- endpoint ----------

/// No cloud here: plays the load balancer (or app routing) controller, giving `object` an address
/// once it exists.
fn play_cloud_controller(c: &Case, object: &str) -> std::thread::JoinHandle<()> {
    let (rig, ns, object) = (c.rig, c.ns.clone(), object.to_string());
    std::thread::spawn(move || {
        for _ in 0..300 {
            let patched = rig
                .kubectl()
                .args([
                    "patch",
                    &object,
                    "-n",
                    &ns,
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                ])
                .arg(r#"{"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.7"}]}}}"#)
                .output()
                .unwrap();
            if patched.status.success() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    })
}

#[test]
fn ingress_for_app_routing_is_waited_for_and_reported_by_host() {
    let Some(c) = case("ingress") else { return };
    let controller = play_cloud_controller(&c, "ingress/hello-aks");
    let report = c.apply(&[
        "--image",
        &fake_image(19),
        "--secret",
        &secret_flag(),
        "--expose",
        "ingress",
        "--host",
        "hello.example.com",
    ]);
    controller.join().unwrap();
    assert_eq!(report["endpoint"], "http://hello.example.com");
    let class = c.kubectl(&[
        "get",
        "ingress",
        "hello-aks",
        "-o",
        "jsonpath={.spec.ingressClassName} {.spec.rules[0].http.paths[0].backend.service.name}",
    ]);
    assert_eq!(class, "webapprouting.kubernetes.azure.com hello-aks");
}

#[test]
fn loadbalancer_address_is_waited_for_and_reported() {
    let Some(c) = case("lb") else { return };
    let controller = play_cloud_controller(&c, "service/hello-aks-public");
    let report = c.apply(&[
        "--image",
        &fake_image(14),
        "--secret",
        &secret_flag(),
        "--expose",
        "loadbalancer",
    ]);
    controller.join().unwrap();
    assert_eq!(report["endpoint"], "http://203.0.113.7");
    let status = c.run(&["status", "-n", &c.ns, "--output", "json"]);
    assert_success(&status);
    let status = json_stdout(&status);
    assert_eq!(status["endpoint"], "http://203.0.113.7");
    assert_eq!(status["kind"], "SpinApp");
    assert_eq!(
        status["digest"],
        format!("sha256:{}", hex::encode([14u8; 32]))
    );
    assert_eq!(status["ready"], 2);
}

// ---------- status, logs, port-forward, delete ----------

#[test]
fn status_logs_port_forward_and_delete() {
    let Some(c) = case("ops") else { return };
    c.apply(&["--image", &fake_image(15), "--secret", &secret_flag()]);

    // The state remembers the namespace: no -n from here on.
    let status = c.run(&["status"]);
    assert_success(&status);
    assert!(String::from_utf8_lossy(&status.stdout).contains("ready: 2/2"));

    let logs = c.run(&["logs", "--output", "json"]);
    assert_success(&logs);
    let logs = json_stdout(&logs);
    let lines: Vec<&str> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_str().unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .filter(|l| l.contains("Serving HTTP on 0.0.0.0:80"))
            .count()
            == 2,
        "{logs}"
    );

    let port = support::registry::free_port();
    let mut forward = std::process::Command::new(assert_cmd::cargo::cargo_bin("spin-aks"))
        .env("SPIN_AKS_STATE_FILE", c.home.path().join("state"))
        .env("KUBECONFIG", &c.rig.kubeconfig)
        .env("HOME", c.home.path())
        .arg("-f")
        .arg(&c.app)
        .args([
            "port-forward",
            "--port",
            &port.to_string(),
            "--output",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let body = support::http_get_retrying(port)
        .unwrap_or_else(|| panic!("nothing answered on 127.0.0.1:{port}"));
    forward.kill().unwrap();
    let forwarded = forward.wait_with_output().unwrap();
    assert!(body.contains("Hello from the stand-in Spin app"), "{body}");
    let report = support::json_report(&forwarded.stdout);
    assert_eq!(report["url"], format!("http://127.0.0.1:{port}"));

    let deleted = c.run(&["delete", "--output", "json"]);
    assert_success(&deleted);
    let deleted = json_stdout(&deleted);
    assert_eq!(deleted["deleted"].as_array().unwrap().len(), 2, "{deleted}");
    c.kubectl(&[
        "wait",
        "--for=delete",
        "spinapp/hello-aks",
        "secret/hello-aks-variables",
        "secret/hello-aks-applyset",
        "--timeout=60s",
    ]);
    assert!(
        c.rig
            .kubectl_ok(&["get", "namespace", &c.ns])
            .contains(&c.ns),
        "delete leaves the namespace"
    );
}

#[test]
fn logs_follow_streams_lines_written_after_it_started() {
    let Some(c) = case("follow") else { return };
    c.apply(&["--image", &fake_image(22), "--secret", &secret_flag()]);
    let mut follow = std::process::Command::new(assert_cmd::cargo::cargo_bin("spin-aks"))
        .env("SPIN_AKS_STATE_FILE", c.home.path().join("state"))
        .env("KUBECONFIG", &c.rig.kubeconfig)
        .env("HOME", c.home.path())
        .arg("-f")
        .arg(&c.app)
        .args(["logs", "--follow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |text: &str, count: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut seen = Vec::new();
        while seen.iter().filter(|l: &&String| l.contains(text)).count() < count {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match received.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => panic!("no {count} lines with {text:?} in 30 s: {seen:?}"),
            }
        }
        seen
    };
    let first = wait_for("Serving HTTP on 0.0.0.0:80", 2);
    assert!(
        first.iter().all(|l| l.starts_with("[hello-aks-")),
        "two pods: each line names its pod: {first:?}"
    );

    let marker = format!("request handled {}", c.ns);
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(c.rig.path("app/app.log"))
        .unwrap();
    use std::io::Write;
    writeln!(log, "2026-01-01T00:00:01.000000000Z stdout F {marker}").unwrap();
    let later = wait_for(&marker, 2);
    assert!(
        follow.try_wait().unwrap().is_none(),
        "still following: {later:?}"
    );
    follow.kill().unwrap();
    let _ = follow.wait();
}

// ---------- cluster access: errors name the context and server ----------

fn kubeconfig_with_user(rig: &Rig, dir: &Path, user: &str) -> PathBuf {
    let base = std::fs::read_to_string(&rig.kubeconfig).unwrap();
    let server = base
        .lines()
        .find(|l| l.trim_start().starts_with("server:"))
        .unwrap()
        .trim()
        .to_string();
    let ca = base
        .lines()
        .find(|l| l.contains("certificate-authority-data"))
        .unwrap()
        .trim()
        .to_string();
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: rig\n  cluster:\n    {server}\n    {ca}\nusers:\n- name: u\n  user:\n{user}\ncontexts:\n- name: test-ctx\n  context: {{cluster: rig, user: u}}\ncurrent-context: test-ctx\n"
    );
    let path = dir.join("kubeconfig-test");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn refused_credentials_forbidden_and_unreachable_clusters_name_context_and_server() {
    let Some(c) = case("access") else { return };
    let run_with = |kubeconfig: &Path| {
        spin_aks_on(c.rig, c.home.path())
            .arg("-f")
            .arg(&c.app)
            .args([
                "apply",
                "-n",
                &c.ns,
                "--image",
                &fake_image(16),
                "--secret",
                &secret_flag(),
                "--kubeconfig",
            ])
            .arg(kubeconfig)
            .output()
            .unwrap()
    };
    let bad_token = kubeconfig_with_user(c.rig, c.home.path(), "    token: not-a-real-token");
    let refused = run_with(&bad_token);
    assert_eq!(refused.status.code(), Some(1));
    let err = stderr(&refused);
    assert!(
        err.contains("refused the credentials of context `test-ctx` (https://127.0.0.1:"),
        "{err}"
    );
    assert!(!err.contains("not-a-real-token"));

    // The admin certificate, impersonating a user with no roles.
    let admin = std::fs::read_to_string(&c.rig.kubeconfig).unwrap();
    let cert = admin
        .lines()
        .find(|l| l.contains("client-certificate-data"))
        .unwrap()
        .trim();
    let key = admin
        .lines()
        .find(|l| l.contains("client-key-data"))
        .unwrap()
        .trim();
    let nobody = kubeconfig_with_user(
        c.rig,
        c.home.path(),
        &format!("    {cert}\n    {key}\n    as: nobody"),
    );
    let forbidden = run_with(&nobody);
    assert_eq!(forbidden.status.code(), Some(1));
    let err = stderr(&forbidden);
    assert!(err.contains("forbidden: context `test-ctx`"), "{err}");
    assert!(
        err.contains("\"nobody\" cannot"),
        "the API server's words name verb and resource: {err}"
    );

    let text = std::fs::read_to_string(&bad_token).unwrap();
    let port = support::registry::free_port();
    let closed = text.replace(
        &text[text.find("https://").unwrap()..]
            .lines()
            .next()
            .unwrap()
            .to_string(),
        &format!("https://127.0.0.1:{port}"),
    );
    std::fs::write(&bad_token, closed).unwrap();
    let unreachable = run_with(&bad_token);
    assert_eq!(unreachable.status.code(), Some(1));
    let err = stderr(&unreachable);
    assert!(
        err.contains(&format!(
            "cannot reach the cluster of context `test-ctx` (https://127.0.0.1:{port})"
        )),
        "{err}"
    );
}

#[test]
fn a_kubeconfig_list_is_merged_like_kubectl_does() {
    let Some(c) = case("kubeconfig-list") else {
        return;
    };
    let port = support::registry::free_port();
    let first = c.home.path().join("first-kubeconfig");
    std::fs::write(
        &first,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster: {{server: \"https://127.0.0.1:{port}\"}}\nusers:\n- name: someone\n  user: {{token: first-file-token}}\ncontexts:\n- name: gone\n  context: {{cluster: gone, user: someone}}\ncurrent-context: gone\n"
        ),
    )
    .unwrap();
    let list = std::env::join_paths([first.as_path(), c.rig.kubeconfig.as_path()]).unwrap();
    let apply = |extra: &[&str]| {
        apply_example(c.rig, c.home.path(), &c.app, &c.ns, 21)
            .env("KUBECONFIG", &list)
            .args(["--no-wait", "--output", "json"])
            .args(extra)
            .output()
            .unwrap()
    };

    let first_file_wins = apply(&[]);
    assert_eq!(first_file_wins.status.code(), Some(1));
    let err = stderr(&first_file_wins);
    assert!(
        err.contains(&format!(
            "cannot reach the cluster of context `gone` (https://127.0.0.1:{port})"
        )),
        "the first file's current-context is used: {err}"
    );

    let second_file_context = apply(&["--context", "rig"]);
    assert_success(&second_file_context);
    let report = json_stdout(&second_file_context);
    assert_eq!(report["cluster"], "rig");
    assert_eq!(report["namespace"], c.ns.as_str());
    assert!(c
        .kubectl(&["get", "spinapp", "hello-aks"])
        .contains("hello-aks"));
}

#[test]
fn exec_credential_plugins_are_run_like_kubectl_does() {
    let Some(c) = case("exec") else { return };
    let admin = std::fs::read_to_string(&c.rig.kubeconfig).unwrap();
    let field = |name: &str| {
        admin
            .lines()
            .find(|l| l.contains(name))
            .unwrap()
            .split_once(':')
            .unwrap()
            .1
            .trim()
            .to_string()
    };
    use base64::Engine;
    let decode = |v: String| {
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v).unwrap()).unwrap()
    };
    let credential = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential",
        "status": {"clientCertificateData": decode(field("client-certificate-data")), "clientKeyData": decode(field("client-key-data"))}
    });
    let plugin = c.home.path().join("plugin.sh");
    std::fs::write(
        &plugin,
        format!("#!/bin/sh\ncat <<'EOF'\n{credential}\nEOF\n"),
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&plugin).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let kubeconfig = kubeconfig_with_user(
        c.rig,
        c.home.path(),
        &format!("    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}\n      interactiveMode: Never", plugin.display()),
    );
    let output = spin_aks_on(c.rig, c.home.path())
        .arg("-f")
        .arg(&c.app)
        .args([
            "apply",
            "-n",
            &c.ns,
            "--image",
            &fake_image(17),
            "--secret",
            &secret_flag(),
            "--no-wait",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .output()
        .unwrap();
    assert_success(&output);
}

// ---------- bad input: exit 2, nothing applied ----------

#[test]
fn bad_input_exits_2_and_applies_nothing() {
    let Some(c) = case("badinput") else { return };
    let image = fake_image(18);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--expose", "ingress"], "--expose ingress needs --host"),
        (
            vec!["--host", "a.example"],
            "--host is only used with --expose ingress",
        ),
        (
            vec!["--context", "nope"],
            "--context `nope` is not in the kubeconfig; it has: rig",
        ),
        (
            vec!["--kubeconfig", "/nonexistent/kubeconfig"],
            "--kubeconfig /nonexistent/kubeconfig",
        ),
        (
            vec!["--dir", "/nonexistent/dir"],
            "--dir /nonexistent/dir: not a directory",
        ),
        (vec!["--secret", "9bad=x"], "is not a Spin variable name"),
        (vec!["--autoscale"], "--autoscale scales on CPU utilization"),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["apply", "-n", c.ns.as_str(), "--image", image.as_str()];
        args.extend(flags.iter().copied());
        let output = c.run(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{flags:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{flags:?}: {}",
            stderr(&output)
        );
    }
    let no_image = c.run(&["apply", "-n", &c.ns]);
    assert_eq!(no_image.status.code(), Some(2));
    assert!(
        stderr(&no_image).contains("no image to deploy"),
        "{}",
        stderr(&no_image)
    );
    assert_eq!(
        c.kubectl(&["get", "spinapp,secret", "-o", "name"]).trim(),
        ""
    );
}

// ---------- up: the whole pipeline against the real registry and the rig ----------

#[test]
fn up_builds_pushes_applies_and_an_unchanged_app_changes_nothing() {
    let Some(rig) = rig() else { return };
    let Some(registry) = support::registry::Registry::open() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let ns = rig.bare_namespace("up");
    let reference = format!("{}/hello-aks", registry.host());
    let up = |args: &[&str]| {
        let output = spin_aks_on(rig, home.path())
            .arg("-f")
            .arg(&app)
            .args(["up", "--output", "json"])
            .args(args)
            .output()
            .unwrap();
        assert_success(&output);
        (json_stdout(&output), stderr(&output))
    };
    let (first, said) = up(&[&reference, "-n", &ns, "--secret", &secret_flag()]);
    assert!(said.contains(&format!("created namespace {ns}")), "{said}");
    let digest = first["build"]["digest"].as_str().unwrap();
    assert_eq!(first["push"]["digest"], digest);
    let pinned = format!("{reference}@{digest}");
    assert_eq!(first["push"]["pinned"], pinned);
    assert_eq!(first["apply"]["image"], pinned);
    assert_eq!(first["apply"]["rollout"]["ready"], 2);
    assert_eq!(rig.running_image(&ns, "hello-aks"), pinned);

    // No flags: the reference, context and namespace come from the state file.
    let (again, _) = up(&["-y"]);
    assert_eq!(again["push"]["blobs_uploaded"], 0);
    assert_eq!(again["apply"]["namespace"], ns);
    assert!(
        actions(&again["apply"])
            .iter()
            .all(|(_, _, a)| a == "unchanged"),
        "{again}"
    );
    let state = std::fs::read_to_string(home.path().join("state")).unwrap();
    assert!(!state.contains(SECRET));

    // Once more: nothing on disk is rewritten either (the state file, the layout's index).
    let stamp = |path: std::path::PathBuf| {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&path).unwrap();
        (meta.ino(), meta.ctime(), meta.ctime_nsec())
    };
    let files = [
        home.path().join("state"),
        app.join(".spin-aks/oci/index.json"),
    ];
    let before: Vec<_> = files.iter().cloned().map(stamp).collect();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (third, _) = up(&["-y"]);
    assert_eq!(third["push"]["digest"], digest);
    let after: Vec<_> = files.iter().cloned().map(stamp).collect();
    assert_eq!(after, before, "an unchanged up rewrites neither {files:?}");
}

// ---------- Key Vault and stores ----------

#[test]
fn key_vault_objects_are_served_and_the_synced_secret_needs_no_values() {
    let Some(c) = case("keyvault") else { return };
    let image = fake_image(11);
    let mut args = vec!["--image", image.as_str()];
    args.extend_from_slice(KEY_VAULT);
    // No --secret for the required api_token: the CSI driver provides it from the vault.
    let report = c.apply(&args);
    assert_eq!(
        actions(&report),
        vec![
            (
                "ServiceAccount".into(),
                "hello-aks".into(),
                "created".into()
            ),
            (
                "SecretProviderClass".into(),
                "hello-aks-key-vault".into(),
                "created".into()
            ),
            ("SpinApp".into(), "hello-aks".into(), "created".into()),
        ]
    );
    let pod = c.kubectl(&[
        "get",
        "deployment",
        "hello-aks",
        "-o",
        "jsonpath={.spec.template.spec.serviceAccountName} {.spec.template.metadata.labels.azure\\.workload\\.identity/use} {.spec.template.spec.volumes[*].csi.volumeAttributes.secretProviderClass}",
    ]);
    assert_eq!(pod, "hello-aks true hello-aks-key-vault");
    let synced = c.kubectl(&[
        "get",
        "secretproviderclass",
        "hello-aks-key-vault",
        "-o",
        "jsonpath={.spec.parameters.objects}",
    ]);
    assert!(synced.contains("objectName: api-token"), "{synced}");

    // Scaffold's files, applied from the directory, are the same objects: nothing changes.
    let mut scaffold_args = vec!["--type", "kustomize"];
    scaffold_args.extend_from_slice(KEY_VAULT);
    let dir = scaffold(&c, &scaffold_args);
    let again = c.apply(&["--dir", dir.to_str().unwrap(), "--image", &image]);
    assert!(
        actions(&again).iter().all(|(_, _, a)| a == "unchanged"),
        "{again}"
    );
}

#[test]
fn a_redis_url_reaches_the_cluster_only_inside_a_secret() {
    let Some(c) = case("redis") else { return };
    let image = fake_image(12);
    let store = "default=redis:redis://:hunter2@cache:6379";
    let output = c.run(&[
        "apply",
        "-n",
        &c.ns,
        "--image",
        &image,
        "--secret",
        &secret_flag(),
        "--kv-store",
        store,
        "-v",
    ]);
    assert_success(&output);
    assert!(!format!("{output:?}").contains("hunter2"));
    let config = c.kubectl(&[
        "get",
        "secret",
        "hello-aks-runtime-config",
        "-o",
        "jsonpath={.data.runtime-config\\.toml}",
    ]);
    use base64::Engine;
    let config = base64::engine::general_purpose::STANDARD
        .decode(config)
        .unwrap();
    assert!(String::from_utf8(config)
        .unwrap()
        .contains("redis://:hunter2@cache:6379"));
    let spec = c.kubectl(&["get", "spinapp", "hello-aks", "-o", "json"]);
    assert!(
        !spec.contains("hunter2") && spec.contains("hello-aks-runtime-config"),
        "{spec}"
    );
}

// ---------- watches and connections that drop ----------

fn api_server_port(rig: &Rig) -> u16 {
    rig.server().rsplit(':').next().unwrap().parse().unwrap()
}

/// The rig's admin kubeconfig, pointed at a relay on `port`.
fn kubeconfig_via(c: &Case, port: u16) -> PathBuf {
    let admin = std::fs::read_to_string(&c.rig.kubeconfig).unwrap();
    let relayed = admin.replace(
        &format!("https://127.0.0.1:{}", api_server_port(c.rig)),
        &format!("https://127.0.0.1:{port}"),
    );
    let path = c.home.path().join(format!("kubeconfig-via-{port}"));
    std::fs::write(&path, relayed).unwrap();
    path
}

#[test]
fn a_rollout_is_followed_to_the_end_while_its_watches_are_cut() {
    let Some(c) = case("cutwatch") else { return };
    let port = api_server_port(c.rig);
    // Every stream the client stops talking on is cut after 1.5 s: each watch, many times over.
    let cutter = support::watch_cutter::WatchCutter::start(
        port,
        std::time::Duration::from_millis(1500),
        std::time::Duration::from_millis(1000),
    );
    let kubeconfig = kubeconfig_via(&c, cutter.port);
    // Pods that are not ready until the test takes the label away, some seconds later.
    let image = fake_image(21);
    let dir = failing_spinapp(&c, "never-ready", &image);
    let mut apply = spin_aks_on(c.rig, c.home.path());
    apply
        .env("KUBECONFIG", &kubeconfig)
        .arg("-f")
        .arg(&c.app)
        .args(["apply", "--output", "json", "-n", &c.ns, "--dir"])
        .arg(&dir)
        .args(["--image", &image, "--timeout", "90s"]);
    let running = std::thread::spawn(move || apply.output().unwrap());
    std::thread::sleep(std::time::Duration::from_secs(6));
    assert!(
        !running.is_finished(),
        "the rollout cannot finish while the pods are not ready"
    );
    c.kubectl(&[
        "patch",
        "spinapp",
        "hello-aks",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/podLabels"}]"#,
    ]);
    let output = running.join().unwrap();
    assert_success(&output);
    let report: Value = json_stdout(&output);
    assert_eq!(report["rollout"]["ready"], 1, "{report}");
    assert!(cutter.cuts() >= 2, "only {} cuts", cutter.cuts());
}

#[test]
fn api_server_reads_and_applies_survive_dropped_connections() {
    let Some(c) = case("dropped") else { return };
    let port = api_server_port(c.rig);
    let long = std::time::Duration::from_secs(3600);
    let relay = support::watch_cutter::WatchCutter::dropping_first(port, 2, long, long);
    let kubeconfig = kubeconfig_via(&c, relay.port);
    let output = spin_aks_on(c.rig, c.home.path())
        .env("KUBECONFIG", &kubeconfig)
        .arg("-f")
        .arg(&c.app)
        .args([
            "apply",
            "--output",
            "json",
            "-n",
            &c.ns,
            "--image",
            &fake_image(22),
        ])
        .args(["--secret", &secret_flag()])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(relay.cuts(), 2, "the first two connections were dropped");
    assert_eq!(json_stdout(&output)["rollout"]["ready"], 2);
}
