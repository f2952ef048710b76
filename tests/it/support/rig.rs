//! The real Kubernetes control plane of scripts/kube-rig (etcd, kube-apiserver, controller-manager,
//! scheduler, kwok nodes, spin-operator): one shared by the test process, tests isolated by
//! namespace; a test that changes cluster-wide objects starts a private one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::run_ok;

/// A started rig: its directory and admin kubeconfig.
pub struct Rig {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
}

static RIG: OnceLock<Result<Rig, String>> = OnceLock::new();
static NAMESPACES: AtomicUsize = AtomicUsize::new(0);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The rig shared by every test of this process, started on first use (the build is cached by
/// version); a test using it may change objects in its own namespaces only. `None` (skip)
/// outside CI when it cannot start; under `CI=true` that fails the test.
pub fn rig() -> Option<&'static Rig> {
    match RIG.get_or_init(|| start_with(&[])) {
        Ok(rig) => Some(rig),
        Err(why) => {
            super::skip(why);
            None
        }
    }
}

/// A rig of the calling test's own, for a test that takes cluster-wide parts away (CRDs, the
/// RuntimeClass, node labels); stopped and removed on drop. `None` (skip) as for [`rig`].
pub fn private_rig() -> Option<PrivateRig> {
    private_rig_with(&[])
}

/// A private rig started in a mode of scripts/kube-rig/start.sh (`--bare`: no SpinKube at all;
/// `--flux`: the real Flux source- and helm-controller and a chart registry). `None` (skip) as
/// for [`rig`].
pub fn private_rig_with(modes: &[&str]) -> Option<PrivateRig> {
    match start_with(modes) {
        Ok(rig) => Some(PrivateRig(rig)),
        Err(why) => {
            super::skip(&why);
            None
        }
    }
}

/// [`private_rig_with`] without the skip: why it could not start, for a caller that decides.
pub fn try_private_rig_with(modes: &[&str]) -> Result<PrivateRig, String> {
    start_with(modes).map(PrivateRig)
}

/// A rig started by [`private_rig`].
pub struct PrivateRig(Rig);

impl std::ops::Deref for PrivateRig {
    type Target = Rig;
    fn deref(&self) -> &Rig {
        &self.0
    }
}

impl Drop for PrivateRig {
    /// Stops the rig and removes it; the logs of a rig whose test failed are kept, moved to
    /// `target/tmp/failed-rigs/`, and their place printed.
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/kube-rig/stop.sh"))
            .arg(&self.0.dir)
            .status();
        if std::thread::panicking() {
            let kept = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join("failed-rigs")
                .join(self.0.dir.file_name().unwrap());
            let moved = std::fs::create_dir_all(&kept)
                .and_then(|()| std::fs::rename(self.0.dir.join("logs"), kept.join("logs")));
            match moved {
                Ok(()) => eprintln!("the failed test's rig logs: {}", kept.display()),
                Err(e) => eprintln!("the failed test's rig logs were not kept: {e}"),
            }
        }
        let _ = std::fs::remove_dir_all(&self.0.dir);
    }
}

fn start_with(modes: &[&str]) -> Result<Rig, String> {
    let dir = tempfile::Builder::new()
        .prefix("spin-aks-rig-")
        .tempdir()
        .unwrap()
        .keep();
    let output = Command::new("bash")
        .arg(repo().join("scripts/kube-rig/start.sh"))
        .arg(&dir)
        .arg(std::process::id().to_string())
        .args(modes)
        .output()
        .expect("run scripts/kube-rig/start.sh");
    if !output.status.success() {
        let why = format!(
            "the kube rig did not start: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        return Err(why);
    }
    Ok(Rig {
        kubeconfig: dir.join("kubeconfig"),
        dir,
    })
}

impl Rig {
    /// kubectl (from the test tools) against the rig as cluster admin.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    /// Runs kubectl and returns stdout, panicking on failure.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        run_ok(self.kubectl().args(args))
    }

    /// The image the operator's Deployment `name` in `ns` runs.
    pub fn running_image(&self, ns: &str, name: &str) -> String {
        let jsonpath = "jsonpath={.spec.template.spec.containers[0].image}";
        self.kubectl_ok(&["get", "deployment", name, "-n", ns, "-o", jsonpath])
    }

    /// A fresh namespace with the SpinApp executor in it.
    pub fn namespace(&self, hint: &str) -> String {
        let n = NAMESPACES.fetch_add(1, Ordering::SeqCst);
        let name = format!("{hint}-{}-{n}", std::process::id());
        self.kubectl_ok(&["create", "namespace", &name]);
        self.kubectl_ok(&[
            "apply",
            "-n",
            &name,
            "-f",
            &repo()
                .join("manifests/spinapp-executor.yaml")
                .to_string_lossy(),
        ]);
        name
    }

    /// Deletes namespace `ns` and what is in it, not waiting: a test that loops
    /// (`RELIABILITY_RUNS`) frees its pods so the rig's two nodes (110 pods each, as AKS's
    /// default) do not fill up over the runs.
    pub fn drop_namespace(&self, ns: &str) {
        self.kubectl_ok(&["delete", "namespace", ns, "--wait=false"]);
    }

    /// A namespace without the executor (for the generated Deployment workload, or to create later).
    pub fn bare_namespace(&self, hint: &str) -> String {
        let n = NAMESPACES.fetch_add(1, Ordering::SeqCst);
        format!("{hint}-{}-{n}", std::process::id())
    }

    /// The API server's address (`https://127.0.0.1:<port>`), from the admin kubeconfig.
    pub fn server(&self) -> String {
        let admin = std::fs::read_to_string(&self.kubeconfig).unwrap();
        admin
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .unwrap()
            .to_string()
    }

    /// A copy of the admin kubeconfig in `dir` whose `server:` is `https://127.0.0.1:<port>`, a
    /// TCP front (Toxiproxy) before the API server: TLS stays end to end, the certificate names 127.0.0.1.
    pub fn kubeconfig_via(&self, port: u16, dir: &Path) -> PathBuf {
        let admin = std::fs::read_to_string(&self.kubeconfig).unwrap();
        let fronted = admin.replace(
            &format!("server: {}", self.server()),
            &format!("server: https://127.0.0.1:{port}"),
        );
        assert_ne!(fronted, admin, "the kubeconfig names its server");
        let path = dir.join(format!("kubeconfig-via-{port}"));
        std::fs::write(&path, fronted).unwrap();
        path
    }

    /// The API server's port.
    pub fn server_port(&self) -> u16 {
        self.server().rsplit(':').next().unwrap().parse().unwrap()
    }

    /// A value of the rig's `rig.env` (ports, the chart registry of a `--flux` rig).
    pub fn env(&self, key: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.path("rig.env")).ok()?;
        text.lines().find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k == key).then(|| v.trim_matches('"').to_string())
        })
    }

    /// The process id of rig part `name` (`kube_apiserver`, `etcd`, …): the last one started.
    pub fn pid(&self, name: &str) -> u32 {
        let text = std::fs::read_to_string(self.path("rig.env")).unwrap();
        let key = format!("{name}_pid=");
        text.lines()
            .rev()
            .find_map(|line| line.strip_prefix(&key))
            .unwrap_or_else(|| panic!("no {key} in rig.env"))
            .parse()
            .unwrap()
    }

    /// Sends `signal` (`STOP`, `CONT`, …) to rig part `name`.
    pub fn signal(&self, name: &str, signal: &str) {
        run_ok(Command::new("kill").args([&format!("-{signal}"), &self.pid(name).to_string()]));
    }

    /// Kills rig part `name` with SIGKILL and, `down` later, starts it again with the same
    /// command line and environment (its log goes on); stop.sh stops the new one too.
    pub fn kill_and_restart(&self, name: &str, down: std::time::Duration) {
        let pid = self.pid(name);
        let split = |file: &str| -> Vec<String> {
            std::fs::read(format!("/proc/{pid}/{file}"))
                .unwrap()
                .split(|b| *b == 0)
                .filter(|part| !part.is_empty())
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect()
        };
        let (argv, environ) = (split("cmdline"), split("environ"));
        self.signal(name, "KILL");
        std::thread::sleep(down);
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path(&format!("logs/{}.log", name.replace('_', "-"))))
            .unwrap();
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .env_clear()
            .envs(environ.iter().filter_map(|e| e.split_once('=')))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut env = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path("rig.env"))
            .unwrap();
        use std::io::Write;
        writeln!(env, "{name}_pid={}", child.id()).unwrap();
        // Reaped when stop.sh stops it with the rest of the rig.
        std::thread::spawn(move || child.wait());
    }

    /// The rig's file `name` (logs, pki).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// An image reference pinned by a made-up digest: kwok's pods never pull, so any digest runs.
pub fn fake_image(seed: u8) -> String {
    format!(
        "registry.example/hello-aks@sha256:{}",
        hex::encode([seed; 32])
    )
}

/// The spin-aks binary pointed at the rig, isolated in `home`.
pub fn spin_aks_on(rig: &Rig, home: &Path) -> assert_cmd::Command {
    let mut cmd = super::spin_aks_isolated(home);
    cmd.env("KUBECONFIG", &rig.kubeconfig);
    cmd
}

/// `spin-aks -f <app> ARGS…` started against the rig with only `env` beside an isolated `home`
/// (its state file, Docker config and HOME), stdout and stderr piped: for tests that break the
/// cluster or run many at once while it runs.
pub fn spawn_on(
    rig: &Rig,
    home: &Path,
    app: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::process::Child {
    use std::process::Stdio;
    Command::new(assert_cmd::cargo::cargo_bin("spin-aks"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", home)
        .env("SPIN_AKS_STATE_FILE", home.join("state"))
        .env("DOCKER_CONFIG", home.join("docker"))
        .env("KUBECONFIG", &rig.kubeconfig)
        .envs(env.iter().copied())
        .arg("-f")
        .arg(app)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `spin-aks -f <app> apply -n <ns> --image <fake_image(seed)> --secret api_token=x` on the rig:
/// the example app with an image that needs no registry.
pub fn apply_example(
    rig: &Rig,
    home: &Path,
    app: &Path,
    ns: &str,
    seed: u8,
) -> assert_cmd::Command {
    let mut cmd = spin_aks_on(rig, home);
    cmd.arg("-f").arg(app).args(["apply", "-n", ns, "--image"]);
    cmd.arg(fake_image(seed)).args(["--secret", "api_token=x"]);
    cmd
}
