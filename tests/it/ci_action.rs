//! The GitHub Action (action.yml) and the Azure Pipelines template: their install step, run as the
//! runner would under a fake GITHUB_*/agent environment, against a release scripts/release.sh built
//! and a loopback file server holding it; a tampered archive is refused by its sha256.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::support;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

/// action.yml's step `id`: its `run` script and the names of its `env`.
fn action_step(id: &str) -> (String, Vec<String>) {
    let action = yaml("action.yml");
    assert_eq!(action["runs"]["using"], "composite");
    let step = action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["id"] == id)
        .unwrap_or_else(|| panic!("action.yml has no step `{id}`"))
        .clone();
    assert_eq!(step["shell"], "bash");
    let env = step["env"]
        .as_object()
        .map(|env| env.keys().cloned().collect())
        .unwrap_or_default();
    (step["run"].as_str().unwrap().to_string(), env)
}

/// Serves `root` over HTTP; the paths asked are recorded.
async fn file_server(root: PathBuf) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    support::serve_http(listener, move |req| {
        let (root, log) = (root.clone(), log.clone());
        async move {
            let path = req.uri().path().to_string();
            log.lock().unwrap().push(path.clone());
            let file = root.join(path.trim_start_matches('/'));
            let (status, body) = match std::fs::read(&file) {
                Ok(bytes) if !path.contains("..") => (200, bytes),
                _ => (404, b"Not Found".to_vec()),
            };
            hyper::Response::builder()
                .status(status)
                .body(http_body_util::Full::new(body.into()))
                .unwrap()
        }
    });
    (base, asked)
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `script` with bash in a cleared environment: the system PATH (curl, tar, python3) and `vars`.
fn run_script(script: &str, vars: &[(&str, String)]) -> Ran {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin");
    for (name, value) in vars {
        cmd.env(name, value);
    }
    let output = cmd.output().unwrap();
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A GitHub-hosted Linux x64 runner's variables for a job using `<owner>/spin-aks@v0.1.0`.
fn github_runner(dir: &Path, server: &str) -> Vec<(&'static str, String)> {
    for sub in ["temp", "tool-cache", "home", "_actions/org/spin-aks/v0.1.0"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
    vec![
        ("GITHUB_ACTIONS", "true".into()),
        ("RUNNER_OS", "Linux".into()),
        ("RUNNER_ARCH", "X64".into()),
        ("RUNNER_TEMP", file("temp")),
        ("RUNNER_TOOL_CACHE", file("tool-cache")),
        ("HOME", file("home")),
        ("GITHUB_SERVER_URL", server.to_string()),
        ("GITHUB_ACTION_PATH", file("_actions/org/spin-aks/v0.1.0")),
        ("GITHUB_PATH", file("github_path")),
        ("GITHUB_OUTPUT", file("github_output")),
        ("SPIN_AKS_VERSION", String::new()),
        ("SPIN_AKS_MANIFEST_URL", String::new()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_action_installs_a_release_by_manifest_url_and_sha256_then_runs_the_command() {
    if support::tool("curl").is_none() || support::tool("python3").is_none() {
        return;
    }
    assert_eq!(
        std::env::consts::ARCH,
        "x86_64",
        "the release packs the host binary"
    );
    let work = tempfile::tempdir().unwrap();
    let served = work.path().join("served");
    let (server, asked) = file_server(served.clone()).await;
    // Published as a GitHub release of org/spin-aks tagged v0.1.0.
    let release_dir = served.join("org/spin-aks/releases/download/v0.1.0");
    support::run_ok(
        Command::new("bash")
            .arg(Path::new(ROOT).join("scripts/release.sh"))
            .arg(format!("{server}/org/spin-aks/releases/download/v0.1.0"))
            .args(["--binary", env!("CARGO_BIN_EXE_spin-aks")])
            .arg("--out")
            .arg(&release_dir)
            .arg("--manifest-dir")
            .arg(work.path().join("manifests")),
    );

    let (install, env_names) = action_step("install");
    assert_eq!(env_names, ["SPIN_AKS_MANIFEST_URL", "SPIN_AKS_VERSION"]);
    let runner = work.path().join("runner");
    let vars = github_runner(&runner, &server);
    let ran = run_script(&install, &vars);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let dest = runner.join("tool-cache/spin-aks/0.1.0/amd64");
    assert!(
        ran.stdout.contains("spin-aks 0.1.0"),
        "it ran the installed binary: {}",
        ran.stdout
    );
    assert_eq!(
        std::fs::read_to_string(runner.join("github_path")).unwrap(),
        format!("{}\n", dest.display())
    );
    assert_eq!(
        std::fs::read_to_string(runner.join("github_output")).unwrap(),
        format!("path={}/spin-aks\nversion=0.1.0\n", dest.display())
    );
    assert_eq!(
        *asked.lock().unwrap(),
        [
            "/org/spin-aks/releases/download/v0.1.0/aks.json",
            "/org/spin-aks/releases/download/v0.1.0/spin-aks-v0.1.0-linux-amd64.tar.gz"
        ],
        "the manifest at the action's own release, then the archive it names"
    );
    assert!(
        std::fs::read_dir(runner.join("temp"))
            .unwrap()
            .next()
            .is_none(),
        "nothing left in RUNNER_TEMP"
    );

    // The action's second step: the command, with the installed spin-aks first on PATH, its stdout
    // also the step's `result` output.
    let (run, env_names) = action_step("run");
    assert_eq!(env_names, ["SPIN_AKS_COMMAND"]);
    let mut run_vars = vars.clone();
    run_vars.retain(|(name, _)| *name != "SPIN_AKS_VERSION" && *name != "SPIN_AKS_MANIFEST_URL");
    run_vars.push(("SPIN_AKS_COMMAND", "completions 'bash'".into()));
    let mut cmd_path = vec![(
        "PATH",
        format!("{}:/usr/local/bin:/usr/bin:/bin", dest.display()),
    )];
    cmd_path.extend(run_vars);
    let ran = run_script(&run, &cmd_path);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stdout.contains("complete -F"), "{}", ran.stdout);
    let outputs = std::fs::read_to_string(runner.join("github_output")).unwrap();
    let result = outputs.split("result<<").nth(1).expect("a result output");
    let delimiter = result.lines().next().unwrap();
    assert!(delimiter.starts_with("spin_aks_result_") && result.contains("complete -F"));
    assert!(result.trim_end().ends_with(delimiter));

    // A tampered archive on the server: refused by its sha256, nothing installed.
    let archive = release_dir.join("spin-aks-v0.1.0-linux-amd64.tar.gz");
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&archive, bytes).unwrap();
    let tampered_runner = work.path().join("tampered");
    let ran = run_script(&install, &github_runner(&tampered_runner, &server));
    assert_eq!(ran.code, 1, "{}", ran.stdout);
    assert!(
        ran.stdout
            .contains("::error title=spin-aks install::refusing ")
            && ran.stdout.contains("the release manifest says"),
        "{}",
        ran.stdout
    );
    assert!(!tampered_runner.join("tool-cache/spin-aks").exists());
    assert!(!tampered_runner.join("github_path").exists());
}

/// The Azure Pipelines template installs with the very same script, speaking the agent's logging
/// commands; a runner platform without a release is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipelines_template_runs_the_same_install_on_an_agent() {
    if support::tool("curl").is_none() || support::tool("python3").is_none() {
        return;
    }
    let template = yaml("ci/azure-pipelines/spin-aks.yml");
    let script = template["steps"][0]["bash"].as_str().unwrap().to_string();
    let (install, _) = action_step("install");
    assert_eq!(script, install, "one install script for both CI systems");
    let env: HashMap<String, Value> =
        serde_json::from_value(template["steps"][0]["env"].clone()).unwrap();
    assert!(env.contains_key("SPIN_AKS_MANIFEST_URL") && env.contains_key("SPIN_AKS_RELEASES"));

    let work = tempfile::tempdir().unwrap();
    let served = work.path().join("served");
    let (server, _) = file_server(served.clone()).await;
    support::run_ok(
        Command::new("bash")
            .arg(Path::new(ROOT).join("scripts/release.sh"))
            .arg(format!("{server}/mirror"))
            .args(["--binary", env!("CARGO_BIN_EXE_spin-aks")])
            .arg("--out")
            .arg(served.join("mirror"))
            .arg("--manifest-dir")
            .arg(work.path().join("manifests")),
    );
    let agent = work.path().join("agent");
    for sub in ["temp", "tools", "home"] {
        std::fs::create_dir_all(agent.join(sub)).unwrap();
    }
    let dir = |name: &str| agent.join(name).to_string_lossy().into_owned();
    let vars = vec![
        ("TF_BUILD", "True".to_string()),
        ("AGENT_OS", "Linux".into()),
        ("AGENT_OSARCHITECTURE", "X64".into()),
        ("AGENT_TEMPDIRECTORY", dir("temp")),
        ("AGENT_TOOLSDIRECTORY", dir("tools")),
        ("HOME", dir("home")),
        ("SPIN_AKS_MANIFEST_URL", format!("{server}/mirror/aks.json")),
    ];
    let ran = run_script(&script, &vars);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let dest = agent.join("tools/spin-aks/0.1.0/amd64");
    assert!(
        ran.stdout
            .contains(&format!("##vso[task.prependpath]{}\n", dest.display())),
        "{}",
        ran.stdout
    );
    assert!(dest.join("spin-aks").is_file());

    let mut windows = vars.clone();
    windows.retain(|(name, _)| *name != "AGENT_OS");
    windows.push(("AGENT_OS", "Windows_NT".into()));
    let ran = run_script(&script, &windows);
    assert_eq!(ran.code, 1);
    assert!(
        ran.stdout.contains("##vso[task.logissue type=error]spin-aks install: spin-aks releases are for Linux and macOS runners, not Windows_NT"),
        "{}",
        ran.stdout
    );
}
