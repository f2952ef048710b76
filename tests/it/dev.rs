//! `dev` on the rig with the real registry: the first deploy, a round per edit of a mounted file
//! and of a component's source (rebuilt by its build command), only new blobs pushed, a failed
//! build leaving the last good version running, Ctrl-C leaving the app or `--delete-on-exit`
//! removing it; every JSON line checked against docs/schemas/v1/dev.json.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::support;
use crate::support::apps::copy_app;
use crate::support::registry::Registry;
use crate::support::rig::{rig, Rig};

/// A copy of tests/fixtures/dev-app with a page big enough for a layer of its own (not inlined in
/// the config), built once as `spin build` would have (its wasm newer than its source).
fn dev_app(home: &Path) -> PathBuf {
    let app = home.join("dev-app");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dev-app");
    copy_app(
        &fixture,
        &app,
        std::time::SystemTime::now() - Duration::from_secs(60),
    );
    std::fs::create_dir_all(app.join("static")).unwrap();
    std::fs::write(app.join("static/index.html"), "version one\n".repeat(400)).unwrap();
    support::run_ok(Command::new("python3").arg("build.py").current_dir(&app));
    app
}

/// `dev <registry>/dev-app -n <fresh namespace> ARGS…` on the shared rig, once its first round
/// is in: the rig, the registry, the app, the namespace, the reference and `dev` itself. A test
/// binds `home` and `registry` even unused (`home: _home`): left to `..` they are dropped at once,
/// removing the app and stopping the registry.
struct Session {
    rig: &'static Rig,
    registry: Registry,
    /// Holds the app: dropped (removed) with the session's last binding.
    home: tempfile::TempDir,
    app: PathBuf,
    ns: String,
    reference: String,
    dev: Dev,
    first: Value,
}

fn session(hint: &str, args: &[&str]) -> Option<Session> {
    let rig = rig()?;
    let registry = Registry::open()?;
    let home = tempfile::tempdir().unwrap();
    let app = dev_app(home.path());
    let ns = rig.namespace(hint);
    let reference = format!("{}/dev-app", registry.host());
    let mut all = vec![reference.as_str(), "-n", &ns];
    all.extend_from_slice(args);
    let dev = Dev::start(rig, home.path(), &app, &all);
    let first = dev.round();
    assert_eq!(first["ok"], true, "{first}");
    Some(Session {
        rig,
        registry,
        home,
        app,
        ns,
        reference,
        dev,
        first,
    })
}

/// A running `dev`: its JSON lines as they come, its stderr gathered.
struct Dev {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Dev {
    fn start(rig: &Rig, home: &Path, app: &Path, args: &[&str]) -> Dev {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("spin-aks"))
            .env("SPIN_AKS_STATE_FILE", home.join("state"))
            .env("KUBECONFIG", &rig.kubeconfig)
            .env("HOME", home)
            .env("DOCKER_CONFIG", home.join("docker"))
            .env("PATH", std::env::var_os("PATH").unwrap())
            .arg("-f")
            .arg(app)
            .args(["dev", "--output", "json"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (send, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = send.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (gathered, mut pipe) = (stderr.clone(), child.stderr.take().unwrap());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                gathered
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Dev {
            child,
            lines,
            stderr,
        }
    }

    /// The next round's line, checked against the schema.
    fn round(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("no round line in 120 s; stderr:\n{}", self.stderr()));
        support::json_report(line)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Ctrl-C; the exit status and stderr once it ended.
    fn interrupt(mut self) -> (std::process::ExitStatus, String) {
        support::run_ok(Command::new("kill").args(["-INT", &self.child.id().to_string()]));
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        (status, self.stderr())
    }
}

/// A test that fails before Ctrl-C leaves no `dev` running.
impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the app answers at `/` through `spin-aks port-forward`, each of its pods running its
/// image's wasm in the rig's WAGI stand-in for the Spin shim (scripts/kube-rig/wagi-shim.py):
/// a `PortForward` named after each pod sends its connections there.
fn served(rig: &Rig, home: &Path, app: &Path, ns: &str) -> String {
    let serve = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kube-rig/serve-wasm.sh");
    support::run_ok(Command::new("bash").arg(serve).arg(&rig.kubeconfig).arg(ns));
    let port = support::registry::free_port();
    let mut forward = Command::new(assert_cmd::cargo::cargo_bin("spin-aks"))
        .env("SPIN_AKS_STATE_FILE", home.join("state"))
        .env("KUBECONFIG", &rig.kubeconfig)
        .env("HOME", home)
        .arg("-f")
        .arg(app)
        .args(["port-forward", "-n", ns, "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let body = support::http_get_retrying(port);
    let _ = forward.kill();
    let forwarded = forward.wait_with_output().unwrap();
    body.unwrap_or_else(|| {
        panic!(
            "nothing answered through port-forward: {}",
            String::from_utf8_lossy(&forwarded.stderr)
        )
    })
}

/// The blobs the registry stores (sha256 hex), as its filesystem storage lays them out.
fn stored_blobs(registry: &Registry) -> Vec<String> {
    let root = registry
        .dir()
        .join("storage/docker/registry/v2/blobs/sha256");
    let mut blobs: Vec<String> = walkdir::WalkDir::new(root)
        .min_depth(2)
        .max_depth(2)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    blobs.sort();
    blobs
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn dev_redeploys_each_edit_pushes_only_new_blobs_and_survives_a_failed_build() {
    let Some(Session {
        rig,
        registry,
        app,
        ns,
        reference,
        dev,
        first,
        home: _home,
        ..
    }) = session("dev", &[])
    else {
        return;
    };
    assert_eq!(
        (first["round"].as_u64(), first["trigger"].as_str()),
        (Some(1), Some("start"))
    );
    let running = |report: &Value| {
        let digest = report["digest"].as_str().unwrap();
        assert_eq!(report["running"], format!("{reference}@{digest}"));
        assert_eq!(
            rig.running_image(&ns, "dev-app"),
            format!("{reference}@{digest}")
        );
        digest.to_string()
    };
    let one = running(&first);
    // What answers is the pushed wasm itself, run on the mounted page (the fixture's WAGI module
    // prints its greeting, then /index.html).
    let page_one = "version one\n".repeat(400);
    assert_eq!(
        served(rig, _home.path(), &app, &ns),
        format!("greeting: hello one\n{page_one}")
    );
    // Between rounds the pods' logs stream on stderr, each line naming its pod.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !dev.stderr().contains("] Serving HTTP on 0.0.0.0:80") {
        assert!(
            std::time::Instant::now() < deadline,
            "no log lines in 30 s: {}",
            dev.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(dev.stderr().contains("[dev-app-"), "{}", dev.stderr());

    // A mounted file: a new image whose only new layer is that file (and the manifest and
    // config naming it), without running the build command.
    let before = stored_blobs(&registry);
    let page = "version two\n".repeat(400);
    std::fs::write(app.join("static/index.html"), &page).unwrap();
    let file = dev.round();
    assert_eq!(file["ok"], true, "{file}");
    assert_eq!(file["changed"], serde_json::json!(["static/index.html"]));
    assert_eq!(file["built"], serde_json::json!([]));
    let two = running(&file);
    assert_ne!(two, one);
    let new: Vec<String> = stored_blobs(&registry)
        .into_iter()
        .filter(|b| !before.contains(b))
        .collect();
    assert!(new.contains(&sha256_hex(page.as_bytes())), "{new:?}");
    assert!(new.contains(&two["sha256:".len()..].to_string()), "{new:?}");
    // Besides the page, only JSON (config, manifest, what describes them) is new: the
    // component's wasm layer was not sent again.
    let wasm = sha256_hex(&std::fs::read(app.join("target/api.wasm")).unwrap());
    assert!(before.contains(&wasm), "{before:?}");
    for blob in new.iter().filter(|b| **b != sha256_hex(page.as_bytes())) {
        let data = registry.dir().join(format!(
            "storage/docker/registry/v2/blobs/sha256/{}/{blob}/data",
            &blob[..2]
        ));
        assert_eq!(std::fs::read(data).unwrap().first(), Some(&b'{'), "{blob}");
    }
    assert!(file["blobs_skipped"].as_u64().unwrap() >= 1, "{file}");
    assert_eq!(
        served(rig, _home.path(), &app, &ns),
        format!("greeting: hello one\n{page}")
    );

    // The component's source: its build command runs, then a new image with the new wasm.
    let wat = std::fs::read_to_string(app.join("src/api.wat")).unwrap();
    std::fs::write(
        app.join("src/api.wat"),
        wat.replace("greeting: hello one", "greeting: hello two"),
    )
    .unwrap();
    let source = dev.round();
    assert_eq!(source["ok"], true, "{source}");
    assert_eq!(source["changed"], serde_json::json!(["src/api.wat"]));
    assert_eq!(source["built"], serde_json::json!(["api"]));
    let three = running(&source);
    let wasm = std::fs::read(app.join("target/api.wasm")).unwrap();
    assert!(String::from_utf8_lossy(&wasm).contains("greeting: hello two"));
    assert!(stored_blobs(&registry).contains(&sha256_hex(&wasm)));
    assert_ne!(three, two);
    let now_served = format!("greeting: hello two\n{page}");
    assert_eq!(served(rig, _home.path(), &app, &ns), now_served);

    // A build error: reported, nothing pushed or applied, the last good version keeps running.
    std::fs::write(app.join("src/api.wat"), "(module (error").unwrap();
    let failed = dev.round();
    assert_eq!(failed["ok"], false, "{failed}");
    assert_eq!(failed["failed_step"], "build_command");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("component `api`"),
        "{failed}"
    );
    assert_eq!(failed["running"], format!("{reference}@{three}"));
    assert_eq!(
        rig.running_image(&ns, "dev-app"),
        format!("{reference}@{three}")
    );
    assert!(dev.stderr().contains("syntax error"), "{}", dev.stderr());
    assert_eq!(served(rig, _home.path(), &app, &ns), now_served);

    // Ctrl-C stops watching and leaves the app deployed.
    let (status, said) = dev.interrupt();
    assert!(status.success(), "{status:?}\n{said}");
    assert!(said.contains("keeps running"), "{said}");
    assert_eq!(
        rig.running_image(&ns, "dev-app"),
        format!("{reference}@{three}")
    );
}

#[test]
fn dev_forces_a_round_on_sigusr1_and_delete_on_exit_removes_what_it_applied() {
    let Some(Session {
        rig,
        ns,
        dev,
        first,
        home: _home,
        registry: _registry,
        ..
    }) = session("dev-delete", &["--delete-on-exit", "--no-logs"])
    else {
        return;
    };
    // SIGUSR1 forces a round: every build command runs; the same inputs make the same digest.
    support::run_ok(Command::new("kill").args(["-USR1", &dev.child.id().to_string()]));
    let forced = dev.round();
    assert_eq!(forced["trigger"], "forced", "{forced}");
    assert_eq!(forced["built"], serde_json::json!(["api"]));
    assert_eq!(
        (&forced["ok"], &forced["digest"]),
        (&Value::Bool(true), &first["digest"]),
        "{forced}"
    );
    let (status, said) = dev.interrupt();
    assert!(status.success(), "{status:?}\n{said}");
    assert!(said.contains("spinapp/dev-app deleted"), "{said}");
    rig.kubectl_ok(&[
        "wait",
        "-n",
        &ns,
        "--for=delete",
        "spinapp/dev-app",
        "--timeout=60s",
    ]);
}
