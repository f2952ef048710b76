//! Fleet delivery through the binary: the deploy artifact against the real registry (reproducible,
//! no Secrets, Flux's media types), and rigs with the real Flux source- and kustomize-controller and
//! the real spin-operator following it (`fleet add|status|remove`, `up --fleet`, `promote`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::apps::example_copy;
use crate::support::registry::Registry;
use crate::support::rig::{private_rig_with, PrivateRig};
use crate::support::{self, json_stdout, run_ok, spin_aks_isolated};

const SECRET: &str = "fleet-s3cret-value";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs spin-aks in `home` on the app with `--output json`; the output.
fn run(home: &Path, app: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = spin_aks_isolated(home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.arg("-f").arg(app).args(args).args(["--output", "json"]);
    cmd.output().unwrap()
}

fn ok(output: std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "spin-aks failed ({:?}): {}",
        output.status.code(),
        stderr(&output)
    );
    json_stdout(&output)
}

/// A blob of `repository` in the loopback registry, over plain HTTP.
fn blob(registry: &Registry, repository: &str, digest: &str) -> Vec<u8> {
    let url = format!("http://{}/v2/{repository}/blobs/{digest}", registry.host());
    let output = Command::new("curl").args(["-sfL", &url]).output().unwrap();
    assert!(output.status.success(), "GET {url} failed");
    output.stdout
}

fn manifest(registry: &Registry, reference: &str) -> Value {
    let raw = support::skopeo_raw_manifest(&format!("{}/{reference}", registry.host()), None);
    serde_json::from_slice(&raw).unwrap()
}

#[test]
fn the_deploy_artifact_is_flux_shaped_reproducible_and_carries_no_secret_values() {
    let (Some(_), Some(registry)) = (support::tool("skopeo"), Registry::open()) else {
        return;
    };
    let image = format!("{}/hello-aks@sha256:{}", registry.host(), "ab".repeat(32));
    let store = format!("default=redis:redis://user:{SECRET}@redis.example:6379");
    let publish = |home: &Path, env: &[(&str, &str)]| {
        let app = example_copy(home);
        let args = [
            "publish",
            "--image",
            &image,
            "--env",
            "staging",
            "--kv-store",
            &store,
        ];
        ok(run(home, &app, env, &args))
    };
    // Two checkouts, two state files: the same digest.
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = publish(one.path(), &[]);
    let second = publish(two.path(), &[]);
    assert_eq!(first["digest"], second["digest"]);
    assert_eq!(first["image"], image);
    assert_eq!(first["tags"], serde_json::json!(["staging"]));
    assert_eq!(second["unchanged"], true, "{second}");
    let repository = "hello-aks-deploy";
    assert_eq!(
        first["repository"],
        format!("{}/{repository}", registry.host())
    );

    let manifest = manifest(&registry, &format!("{repository}:staging"));
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.cncf.flux.config.v1+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.cncf.flux.content.v1.tar+gzip"
    );
    let annotations = &manifest["annotations"];
    assert_eq!(
        annotations["org.opencontainers.image.created"],
        "1970-01-01T00:00:00Z"
    );
    assert_eq!(
        annotations["org.opencontainers.image.revision"],
        format!("sha256:{}", "ab".repeat(32))
    );
    assert_eq!(
        annotations["org.opencontainers.image.source"],
        format!("oci://{}/hello-aks", registry.host())
    );
    let layer = blob(
        &registry,
        repository,
        manifest["layers"][0]["digest"].as_str().unwrap(),
    );
    let files = spin_aks::oci::flux_artifact::read_layer(&layer).unwrap();
    let yaml = String::from_utf8(files["hello-aks.yaml"].clone()).unwrap();
    assert!(
        yaml.contains("kind: SpinApp") && yaml.contains(&image),
        "{yaml}"
    );
    assert!(!yaml.contains("kind: Secret"), "{yaml}");
    assert!(!layer.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    assert!(!yaml.contains(SECRET), "{yaml}");
    insta::assert_snapshot!(yaml.replace(&registry.host(), "REGISTRY"));

    // SOURCE_DATE_EPOCH sets `created`, and so another digest.
    let three = tempfile::tempdir().unwrap();
    let dated = publish(three.path(), &[("SOURCE_DATE_EPOCH", "1700000000")]);
    assert_eq!(dated["created"], "2023-11-14T22:13:20Z");
    assert_ne!(dated["digest"], first["digest"]);
}

#[test]
fn bad_fleet_input_is_exit_2_naming_the_flag_or_value() {
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let cases: [(&[&str], &str); 7] = [
        (&["publish", "--env", "Prod"], "--env <ENV>"),
        (
            &["publish", "--repository", "r.example/x:1"],
            "give the repository only",
        ),
        (&["fleet", "add", "east", "--interval", "0s"], "at least 1s"),
        (
            &["fleet", "add", "aks:a/b/c/d"],
            "aks:<resource group>/<name>",
        ),
        (&["fleet", "remove", "east"], "east is not in the fleet"),
        (
            &["push", "r.example/x", "--env", "staging"],
            "add --publish",
        ),
        (
            &["promote", "staging", "--to", "staging"],
            "FROM_ENV and --to are both `staging`",
        ),
    ];
    for (args, expected) in cases {
        let output = run(home.path(), &app, &[], args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn publishing_a_tag_only_image_is_refused_naming_the_flag() {
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let output = run(
        home.path(),
        &app,
        &[],
        &["publish", "--image", "r.example/hello:1"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--image r.example/hello:1 has no digest"),
        "{}",
        stderr(&output)
    );
    let output = run(home.path(), &app, &[], &["fleet", "add", "east"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no deploy artifact tagged `latest`"),
        "{}",
        stderr(&output)
    );
}

/// Two rigs with the real Flux source- and kustomize-controller, started at once.
fn two_flux_rigs() -> Option<(PrivateRig, PrivateRig)> {
    let east = std::thread::spawn(|| private_rig_with(&["--kustomize"]));
    let west = private_rig_with(&["--kustomize"])?;
    let east = east.join().unwrap()?;
    Some((east, west))
}

/// A kubeconfig file with each rig's admin credentials under its own context name.
fn fleet_kubeconfig(dir: &Path, rigs: &[(&str, &PrivateRig)]) -> PathBuf {
    let mut files = Vec::new();
    for (name, rig) in rigs {
        let text = std::fs::read_to_string(&rig.kubeconfig).unwrap();
        let renamed = text
            .replace("- name: rig-admin", &format!("- name: {name}-admin"))
            .replace("- name: rig\n", &format!("- name: {name}\n"))
            .replace(
                "{cluster: rig, user: rig-admin}",
                &format!("{{cluster: {name}, user: {name}-admin}}"),
            )
            .replace("current-context: rig", &format!("current-context: {name}"));
        let file = dir.join(format!("{name}.kubeconfig"));
        std::fs::write(&file, renamed).unwrap();
        files.push(file);
    }
    let joined = std::env::join_paths(&files).unwrap();
    PathBuf::from(joined)
}

/// Polls `fleet status` until `done` holds for the report, or panics after `timeout`.
fn status_until(
    run: &dyn Fn(&[&str]) -> std::process::Output,
    timeout: Duration,
    done: &dyn Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let report = ok(run(&["fleet", "status"]));
        if done(&report) {
            return report;
        }
        assert!(
            started.elapsed() < timeout,
            "fleet status never got there: {report}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn cluster<'a>(report: &'a Value, name: &str) -> &'a Value {
    let all = report["clusters"].as_array().unwrap();
    all.iter().find(|c| c["cluster"] == name).unwrap()
}

#[test]
fn a_fleet_of_two_rigs_follows_the_artifact_reports_a_failing_cluster_and_promotes_only_converged()
{
    let Some(registry) = Registry::open() else {
        return;
    };
    let Some(_) = support::tool("skopeo") else {
        return;
    };
    let Some((east, west)) = two_flux_rigs() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let kubeconfig = fleet_kubeconfig(home.path(), &[("east", &east), ("west", &west)]);
    let spin_aks = |args: &[&str]| {
        let mut cmd = spin_aks_isolated(home.path());
        cmd.env("KUBECONFIG", &kubeconfig).arg("-f").arg(&app);
        cmd.args(args).args(["--output", "json"]).output().unwrap()
    };
    let reference = format!("{}/hello-aks", registry.host());
    let ns = "fleet-app";

    // Push and publish as `staging`; both rigs follow it, the secret written into each directly.
    let pushed = ok(spin_aks(&[
        "push",
        &reference,
        "--publish",
        "--env",
        "staging",
    ]));
    let pinned = pushed["pinned"].as_str().unwrap().to_string();
    assert_eq!(pushed["published"]["image"], pinned);
    let secret = format!("api_token={SECRET}");
    let add = [
        "fleet",
        "add",
        "east",
        "west",
        "-n",
        ns,
        "--env",
        "staging",
        "--secret",
        &secret,
        "--interval",
        "5s",
        "--timeout",
        "1m",
    ];
    let added = ok(spin_aks(&add));
    assert_eq!(added["clusters"].as_array().unwrap().len(), 2, "{added}");
    let spec = |kind: &str, name: &str| {
        let json = east.kubectl_ok(&["get", kind, name, "-n", ns, "-o", "jsonpath={.spec}"]);
        let text = json.replace(&registry.host(), "REGISTRY");
        serde_json::from_str::<Value>(&text).unwrap()
    };
    let flux_objects = [
        spec("ocirepository", "hello-aks"),
        spec("kustomization", "hello-aks"),
    ];
    insta::assert_yaml_snapshot!("flux_objects", flux_objects);
    let up = ok(spin_aks(&[
        "up",
        "--fleet",
        "--env",
        "staging",
        "--timeout",
        "3m",
    ]));
    assert_eq!(
        up["published"]["unchanged"], true,
        "the same inputs publish nothing new: {up}"
    );
    for (name, rig) in [("east", &east), ("west", &west)] {
        let status = cluster(&up, name);
        assert_eq!(status["state"], "converged", "{up}");
        assert_eq!(status["image"], pinned);
        assert_eq!(rig.running_image(ns, "hello-aks"), pinned);
        let token = rig.kubectl_ok(&[
            "get",
            "secret",
            "hello-aks-variables",
            "-n",
            ns,
            "-o",
            "jsonpath={.data.api_token}",
        ]);
        assert!(!token.is_empty(), "the variables Secret reached {name}");
    }

    // A new version: when `up` returns, each cluster's Flux has applied it and reports Ready,
    // as no health check of the Kustomization is left polling (every 5 s in kustomize-controller
    // v1.9.5, internal/controller/kustomization_controller.go:1061-1062) to hold the next
    // revision back. Each reconcile (every 5 s here) marks Ready Unknown while it runs
    // (kustomization_controller.go:325), so Ready is read until True, within two intervals.
    std::fs::write(app.join("static/next.txt"), "the next version\n").unwrap();
    let next = ok(spin_aks(&[
        "up",
        "--fleet",
        "--env",
        "staging",
        "--timeout",
        "3m",
    ]));
    let pinned = next["push"]["pinned"].as_str().unwrap().to_string();
    for (name, rig) in [("east", &east), ("west", &west)] {
        let status = cluster(&next, name);
        assert_eq!(status["state"], "converged", "{next}");
        assert_eq!(status["applied"], status["published"], "{next}");
        assert_eq!(rig.running_image(ns, "hello-aks"), pinned);
        let ready = || {
            rig.kubectl_ok(&[
                "get",
                "kustomization",
                "hello-aks",
                "-n",
                ns,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ])
        };
        let started = Instant::now();
        while ready().trim() != "True" {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{name}: the Kustomization is not Ready: {next}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // West loses its registry: Flux's reason is reported; a new version still reaches east.
    let good_url = west.kubectl_ok(&[
        "get",
        "ocirepository",
        "hello-aks",
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.url}",
    ]);
    let patch = |url: &str| {
        let body = format!("{{\"spec\":{{\"url\":\"{url}\"}}}}");
        west.kubectl_ok(&[
            "patch",
            "ocirepository",
            "hello-aks",
            "-n",
            ns,
            "--type",
            "merge",
            "-p",
            &body,
        ]);
    };
    patch("oci://127.0.0.1:1/hello-aks-deploy");
    std::fs::write(app.join("static/new.txt"), "a new version\n").unwrap();
    let failed = spin_aks(&["up", "--fleet", "--env", "staging", "--timeout", "2m"]);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    let said = stderr(&failed);
    let error = said.lines().last().unwrap_or_default();
    assert!(error.contains("west failed: OCIRepository"), "{said}");
    assert!(!error.contains("east"), "east converged: {said}");
    let report = ok(spin_aks(&["fleet", "status"]));
    let new_image = cluster(&report, "east")["image"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_image, pinned);
    assert_eq!(cluster(&report, "east")["state"], "converged", "{report}");
    assert_eq!(cluster(&report, "west")["state"], "failed", "{report}");
    assert_eq!(east.running_image(ns, "hello-aks"), new_image);
    assert_eq!(
        west.running_image(ns, "hello-aks"),
        pinned,
        "west keeps what it ran"
    );

    // Promotion waits for staging: refused naming west, then done once west recovered.
    let refused = spin_aks(&["promote", "staging", "--to", "prod"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("west is failed"),
        "{}",
        stderr(&refused)
    );
    assert!(!support::skopeo_finds(&format!(
        "{}/hello-aks-deploy:prod",
        registry.host()
    )));
    patch(&good_url);
    status_until(&spin_aks, Duration::from_secs(120), &|r| {
        r["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["state"] == "converged")
    });
    let promoted = ok(spin_aks(&["promote", "staging", "--to", "prod"]));
    let staging = manifest(&registry, "hello-aks-deploy:staging");
    assert_eq!(
        manifest(&registry, "hello-aks-deploy:prod"),
        staging,
        "retagged, not rebuilt"
    );
    assert_eq!(promoted["verified"].as_array().unwrap().len(), 2);

    // Leaving the fleet keeps the app unless asked.
    ok(spin_aks(&["fleet", "remove", "west"]));
    let started = Instant::now();
    while !west
        .kubectl_ok(&["get", "ocirepository,kustomization", "-n", ns, "-o", "name"])
        .trim()
        .is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "west still follows"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        west.running_image(ns, "hello-aks"),
        new_image,
        "the app keeps running"
    );
    ok(spin_aks(&["fleet", "remove", "east", "--delete-app"]));
    let started = Instant::now();
    while !east
        .kubectl_ok(&["get", "spinapp", "-n", ns, "-o", "name"])
        .trim()
        .is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Flux did not prune the app on east"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let state = std::fs::read_to_string(home.path().join("state")).unwrap();
    assert!(!state.contains("\"fleet\""), "{state}");
    assert!(!state.contains(SECRET));

    // A cluster that stops answering is reported, not fatal.
    ok(spin_aks(&[
        "fleet", "add", "west", "-n", ns, "--env", "staging",
    ]));
    run_ok(
        Command::new("bash")
            .arg(repo().join("scripts/kube-rig/stop.sh"))
            .arg(&west.dir),
    );
    let report = ok(spin_aks(&["fleet", "status"]));
    assert_eq!(cluster(&report, "west")["state"], "unreachable", "{report}");
}

#[test]
fn flux_source_controller_accepts_the_published_artifact() {
    let Some(registry) = Registry::open() else {
        return;
    };
    let Some(rig) = private_rig_with(&["--flux"]) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let image = format!("{}/hello-aks@sha256:{}", registry.host(), "cd".repeat(32));
    let published = ok(run(home.path(), &app, &[], &["publish", "--image", &image]));
    let digest = published["digest"].as_str().unwrap();
    let source = format!(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata: {{name: hello, namespace: default}}\nspec:\n  interval: 1m\n  url: oci://{}/hello-aks-deploy\n  ref: {{tag: latest}}\n  insecure: true\n  layerSelector: {{mediaType: application/vnd.cncf.flux.content.v1.tar+gzip, operation: extract}}\n",
        registry.host()
    );
    let file = home.path().join("source.yaml");
    std::fs::write(&file, source).unwrap();
    rig.kubectl_ok(&["apply", "-f", &file.to_string_lossy()]);
    rig.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "--timeout=60s",
        "ocirepository/hello",
    ]);
    let revision = rig.kubectl_ok(&[
        "get",
        "ocirepository",
        "hello",
        "-o",
        "jsonpath={.status.artifact.revision}",
    ]);
    assert_eq!(revision, format!("latest@{digest}"));
}

/// Polls `fleet status` until `east` is in `state` (and `done` holds for its report).
fn east_until(
    run: &dyn Fn(&[&str]) -> std::process::Output,
    state: &str,
    done: &dyn Fn(&Value) -> bool,
) -> Value {
    let report = status_until(run, Duration::from_secs(120), &|r| {
        let east = cluster(r, "east");
        east["state"] == state && done(east)
    });
    cluster(&report, "east").clone()
}

#[test]
fn a_verifying_cluster_runs_a_signed_artifact_and_refuses_a_wrongly_signed_or_unsigned_one() {
    use crate::notation::test_pki::{self, KeyKind, Leaf};
    let Some(registry) = Registry::open() else {
        return;
    };
    let Some(rig) = private_rig_with(&["--kustomize"]) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let kubeconfig = fleet_kubeconfig(home.path(), &[("east", &rig)]);
    let spin_aks = |args: &[&str]| {
        let mut cmd = spin_aks_isolated(home.path());
        cmd.env("KUBECONFIG", &kubeconfig).arg("-f").arg(&app);
        cmd.args(args).args(["--output", "json"]).output().unwrap()
    };
    // Our signer, and another whose root the cluster does not trust.
    let file = |name: &str, text: &str| support::write_file(home.path(), name, text);
    let ours = test_pki::make("spin-aks fleet root", &Leaf::new(KeyKind::P256));
    let (key, chain, root) = (
        file("key.pem", &ours.key_pem),
        file("chain.pem", &ours.chain_pem),
        file("root.pem", &ours.root_pem),
    );
    let theirs = test_pki::make("someone else's root", &Leaf::new(KeyKind::Rsa2048));
    let (their_key, their_chain) = (
        file("their-key.pem", &theirs.key_pem),
        file("their-chain.pem", &theirs.chain_pem),
    );
    let image = |byte: &str| format!("{}/hello-aks@sha256:{}", registry.host(), byte.repeat(32));
    let publish = |image: &str, sign: &[&str]| {
        let mut args = vec!["publish", "--image", image, "--env", "prod"];
        args.extend(sign);
        ok(spin_aks(&args))
    };
    let ns = "verified";

    // Signed by our key: the real source-controller verifies it and the app rolls out.
    let signed = image("a1");
    publish(&signed, &["--sign", &key, "--sign-cert", &chain]);
    let identity = crate::notation::signer_identity();
    let added = ok(spin_aks(&[
        "fleet",
        "add",
        "east",
        "-n",
        ns,
        "--env",
        "prod",
        "--interval",
        "5s",
        "--timeout",
        "1m",
        "--secret",
        "api_token=x",
        "--verify",
        "--trust-cert",
        &root,
        "--subject",
        &identity,
    ]));
    let trust = "hello-aks-notation-trust";
    assert_eq!(added["clusters"][0]["verify"], trust, "{added}");
    let objects = added["clusters"][0]["objects"].as_array().unwrap();
    assert!(
        objects
            .iter()
            .any(|o| o == &format!("secret/{trust} created")),
        "{added}"
    );
    let verify = rig.kubectl_ok(&[
        "get",
        "ocirepository",
        "hello-aks",
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.verify}",
    ]);
    assert_eq!(
        serde_json::from_str::<Value>(&verify).unwrap(),
        serde_json::json!({"provider": "notation", "secretRef": {"name": trust}})
    );
    let keys = rig.kubectl_ok(&["get", "secret", trust, "-n", ns, "-o", "jsonpath={.data}"]);
    let keys: Value = serde_json::from_str(&keys).unwrap();
    let mut keys: Vec<&String> = keys.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["trusted-0.pem", "trustpolicy.json"]);
    let state = std::fs::read_to_string(home.path().join("state")).unwrap();
    assert!(
        state.contains("root.pem"),
        "--verify is remembered: {state}"
    );
    let started = Instant::now();
    let east = east_until(&spin_aks, "converged", &|c| c["verified"] == true);
    eprintln!(
        "signed artifact verified and rolled out in {:?}",
        started.elapsed()
    );
    assert_eq!(east["image"], signed.as_str());
    assert_eq!(rig.running_image(ns, "hello-aks"), signed);

    // Signed by a key whose root the cluster does not trust: refused, Flux's reason reported,
    // the app keeps running what verified.
    let forged = image("b2");
    publish(
        &forged,
        &["--sign", &their_key, "--sign-cert", &their_chain],
    );
    let east = east_until(&spin_aks, "failed", &|c| c["verified"] == false);
    let reason = east["reason"].as_str().unwrap();
    eprintln!("wrongly signed: {reason}");
    assert!(
        reason.starts_with("OCIRepository VerificationError: failed to verify the signature using provider 'notation'"),
        "{east}"
    );
    // notation-go v1.3.2 notation.go `Verify`: each refused signature is named by its digest.
    assert!(
        reason.contains("failed to verify signature with digest sha256:"),
        "{east}"
    );
    assert_eq!(rig.running_image(ns, "hello-aks"), signed);

    // Unsigned: refused, as having no signature.
    let unsigned = image("c3");
    let published = publish(&unsigned, &["--sign", "none"]);
    let digest = published["digest"].as_str().unwrap().to_string();
    let east = east_until(&spin_aks, "failed", &|c| {
        c["reason"].as_str().is_some_and(|r| r.contains(&digest))
    });
    let reason = east["reason"].as_str().unwrap();
    eprintln!("unsigned: {reason}");
    assert!(reason.contains("no signature is associated"), "{east}");
    assert_eq!(east["verified"], false, "{east}");
    assert_eq!(rig.running_image(ns, "hello-aks"), signed);
    let text = spin_aks_isolated(home.path())
        .env("KUBECONFIG", &kubeconfig)
        .arg("-f")
        .arg(&app)
        .args(["fleet", "status"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&text.stdout);
    assert!(
        said.contains("failed") && said.contains("signature refused"),
        "{said}"
    );

    // Signed by our key again: verified and rolled out.
    let again = image("d4");
    publish(&again, &["--sign", &key, "--sign-cert", &chain]);
    let east = east_until(&spin_aks, "converged", &|c| c["image"] == again.as_str());
    assert_eq!(east["verified"], true, "{east}");
    assert_eq!(rig.running_image(ns, "hello-aks"), again);
}

// ---------- AKS: the Flux extension and a fluxConfigurations resource through ARM ----------

const SUB: &str = "44444444-0000-0000-0000-000000000004";
/// The token the rig's API server knows (scripts/kube-rig/start.sh, tokens.csv).
pub(crate) const RIG_ENTRA_TOKEN: &str = "spin-aks-rig-entra-token";
const AKS_SCOPE: &str = "6dae42f8-4368-4678-94ff-3960e28e3630/.default";

/// A fake ARM with the Entra cluster `rg/aks1` whose API server is `rig`'s and whose Flux
/// extension writes into it, a fake `az` signing in to both, and a private home holding a copy
/// of the example app.
pub(crate) struct AksFleet {
    pub(crate) arm: crate::support::arm::FakeArm,
    pub(crate) home: tempfile::TempDir,
    pub(crate) bin: tempfile::TempDir,
    app: PathBuf,
    closed: std::net::SocketAddr,
}

impl AksFleet {
    pub(crate) async fn start(rig: &PrivateRig) -> AksFleet {
        use crate::support::arm::{entra_user_kubeconfig, write_scoped_az, FakeArm};
        let arm = FakeArm::start("arm-token-f1ee7", RIG_ENTRA_TOKEN).await;
        arm.add_subscription(SUB, "Dev");
        let ca = std::fs::read_to_string(rig.path("pki/ca.crt")).unwrap();
        let kubeconfig = entra_user_kubeconfig("aks1", "rg", &rig.server(), &ca);
        arm.add_cluster(SUB, "rg", "aks1", true, &kubeconfig);
        arm.world(|w| w.flux.kubeconfig = Some(rig.kubeconfig.clone()));
        let home = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        let arm_scope = format!("{}/.default", arm.endpoint);
        let tokens = [
            (arm_scope.as_str(), "arm-token-f1ee7"),
            (AKS_SCOPE, RIG_ENTRA_TOKEN),
        ];
        write_scoped_az(bin.path(), &tokens);
        let app = example_copy(home.path());
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        AksFleet {
            arm,
            home,
            bin,
            app,
            closed,
        }
    }

    /// `spin-aks -f <app> <args> --output json`, signed in to the fake ARM only.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_spin-aks"));
        cmd.env_clear()
            .env(
                "PATH",
                format!("{}:/usr/local/bin:/usr/bin:/bin", self.bin.path().display()),
            )
            .env("HOME", self.home.path())
            .env("SPIN_AKS_STATE_FILE", self.home.path().join("state"))
            .env("DOCKER_CONFIG", self.home.path().join("docker"))
            .env("SPIN_AKS_ARM_ENDPOINT", &self.arm.endpoint)
            .env("SPIN_AKS_ARM_DELAY_SCALE", "0")
            .env(
                "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                format!("http://{}", self.closed),
            )
            .arg("-f")
            .arg(&self.app)
            .args(args)
            .args(["--output", "json"]);
        cmd
    }

    /// Runs [`Self::command`] off the runtime's threads.
    pub(crate) async fn run(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = self.command(args);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aks_cluster_follows_through_the_flux_extension_and_a_flux_configuration() {
    let Some(registry) = Registry::open() else {
        return;
    };
    let Some(rig) = tokio::task::spawn_blocking(|| private_rig_with(&["--kustomize"]))
        .await
        .unwrap()
    else {
        return;
    };
    let fleet = AksFleet::start(&rig).await;
    let arm = &fleet.arm;
    let run = |args: Vec<String>| {
        let mut cmd = fleet.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let image = format!("{}/hello-aks@sha256:{}", registry.host(), "ef".repeat(32));
    ok(run(args(&["publish", "--image", &image, "--env", "prod"]))
        .await
        .unwrap());

    let malformed = run(args(&["fleet", "add", "aks:aks1"])).await.unwrap();
    assert_eq!(malformed.status.code(), Some(2), "{}", stderr(&malformed));
    assert!(
        stderr(&malformed).contains("aks:<resource group>/<name>"),
        "{}",
        stderr(&malformed)
    );

    let ns = "aks-fleet";
    let add = args(&[
        "fleet",
        "add",
        "aks:rg/aks1",
        "-n",
        ns,
        "--env",
        "prod",
        "--secret",
        "api_token=x",
        "--interval",
        "5s",
    ]);
    let added = ok(run(add.clone()).await.unwrap());
    let objects = added["clusters"][0]["objects"].as_array().unwrap();
    assert!(
        objects
            .iter()
            .any(|o| o == "fluxconfiguration/hello-aks configured"),
        "{added}"
    );
    let configuration_path = format!("/subscriptions/{SUB}/resourcegroups/rg/providers/microsoft.containerservice/managedclusters/aks1/providers/microsoft.kubernetesconfiguration/fluxconfigurations/hello-aks");
    let stored = arm
        .world(|w| w.flux.configurations.get(&configuration_path).cloned())
        .expect("the configuration is in ARM");
    let properties = &stored["properties"];
    assert_eq!(properties["sourceKind"], "OCIRepository");
    assert_eq!(
        properties["ociRepository"]["url"],
        format!("oci://{}/hello-aks-deploy", registry.host())
    );
    assert_eq!(properties["ociRepository"]["repositoryRef"]["tag"], "prod");
    assert_eq!(properties["kustomizations"]["objects"]["prune"], true);
    let text = properties.to_string().replace(&registry.host(), "REGISTRY");
    insta::assert_yaml_snapshot!(
        "flux_configuration",
        serde_json::from_str::<Value>(&text).unwrap()
    );
    assert_eq!(
        arm.world(|w| w.extensions.len()),
        1,
        "the Flux extension was enabled"
    );
    assert_eq!(
        rig.kubectl_ok(&[
            "get",
            "kustomization",
            "hello-aks-objects",
            "-n",
            ns,
            "-o",
            "name"
        ])
        .trim(),
        "kustomization.kustomize.toolkit.fluxcd.io/hello-aks-objects"
    );

    let started = Instant::now();
    loop {
        let report = ok(run(args(&["fleet", "status"])).await.unwrap());
        let status = &report["clusters"][0];
        if status["state"] == "converged" {
            assert_eq!(status["cluster"], "aks:rg/aks1");
            assert_eq!(status["image"], image);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never converged: {report}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(rig.running_image(ns, "hello-aks"), image);

    // Added again: one PUT more, same configuration.
    ok(run(add).await.unwrap());
    ok(run(args(&["fleet", "remove", "aks:rg/aks1"]))
        .await
        .unwrap());
    assert!(
        arm.world(|w| w.flux.configurations.is_empty()),
        "the configuration is deleted in ARM"
    );
    let started = Instant::now();
    while !rig
        .kubectl_ok(&["get", "ocirepository,kustomization", "-n", ns, "-o", "name"])
        .trim()
        .is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the extension's objects stay"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        rig.running_image(ns, "hello-aks"),
        image,
        "the app keeps running"
    );
}

#[test]
fn an_exported_archive_carries_the_deploy_artifact_and_push_publishes_it_beside_the_image() {
    let (Some(_), Some(registry)) = (support::tool("skopeo"), Registry::open()) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let repository = format!("{}/air/hello", registry.host());
    let archive = home.path().join("hello.oci.tar");
    let archive_arg = archive.to_string_lossy().into_owned();
    let exported = ok(run(
        home.path(),
        &app,
        &[],
        &[
            "export",
            "-o",
            &archive_arg,
            "--with-deploy",
            &repository,
            "--env",
            "prod",
        ],
    ));
    let pinned = format!("{repository}@{}", exported["digest"].as_str().unwrap());
    assert_eq!(exported["deploy"]["image"], pinned, "{exported}");
    assert_eq!(
        exported["deploy"]["tags"],
        serde_json::json!(["deploy-prod"])
    );
    // The build's own layout keeps its one image (beside its SBOM and provenance, which are
    // referrers with an artifactType): a plain push of it still works.
    let layout = app.join(".spin-aks/oci");
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    let images = manifests.iter().filter(|m| m.get("artifactType").is_none());
    assert_eq!(images.count(), 1, "{index}");

    // Another repository than the one the artifact pins is refused before the artifact goes.
    let elsewhere = format!("{}/other/hello", registry.host());
    let refused = run(
        home.path(),
        &app,
        &[],
        &["push", "--from-archive", &archive_arg, &elsewhere],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains(&format!("--with-deploy {elsewhere}")),
        "{}",
        stderr(&refused)
    );

    let pushed = ok(run(
        home.path(),
        &app,
        &[],
        &["push", "--from-archive", &archive_arg, &repository],
    ));
    assert_eq!(pushed["pinned"], pinned);
    let artifact = manifest(&registry, "air/hello-deploy:prod");
    assert_eq!(
        artifact["config"]["mediaType"],
        "application/vnd.cncf.flux.config.v1+json"
    );
    let raw =
        support::skopeo_raw_manifest(&format!("{}/air/hello-deploy:prod", registry.host()), None);
    let digest = spin_aks::oci::Digest::of(&raw).to_string();
    assert_eq!(
        digest,
        exported["deploy"]["digest"].as_str().unwrap(),
        "the artifact pushed is the one exported"
    );
    let state = std::fs::read_to_string(home.path().join("state")).unwrap();
    assert!(
        state.contains("air/hello-deploy"),
        "remembered for fleet add: {state}"
    );
}
