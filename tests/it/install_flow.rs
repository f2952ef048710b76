//! `cluster install` end to end on a bare cluster with the real Flux controllers: install, `cluster
//! check`, `up` of the example app, a version bump, `uninstall` refused while the app runs; `up`
//! that installs SpinKube itself (or says how); bad input and missing rights.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::install::bare_flux_rig;
use crate::support::apps::example_copy;
use crate::support::pty::{Terminal, ENTER};
use crate::support::registry::Registry;
use crate::support::rig::{spin_aks_on, Rig};
use crate::support::{json_stdout, run_ok, tool};

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub(crate) fn assert_exit(output: &Output, code: i32, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}: stdout {}\nstderr {}",
        String::from_utf8_lossy(&output.stdout),
        stderr(output)
    );
}

/// The rig's install sources: its chart registry and Go module proxy mirror.
pub(crate) struct Sources {
    pub charts: String,
    pub proxy: String,
}

impl Sources {
    pub fn flags(&self) -> [&str; 4] {
        [
            "--chart-registry",
            &self.charts,
            "--module-proxy",
            &self.proxy,
        ]
    }
}

/// `spin-aks cluster install --output json <sources> <extra>` on the rig.
pub(crate) fn install(rig: &Rig, home: &Path, sources: &Sources, extra: &[&str]) -> Output {
    spin_aks_on(rig, home)
        .args(["cluster", "install", "--output", "json", "--timeout", "5m"])
        .args(sources.flags())
        .args(extra)
        .output()
        .unwrap()
}

/// `spin-aks -f <app> up --output json <reference> -n <ns> --secret … <extra>` on the rig.
pub(crate) fn up(
    rig: &Rig,
    home: &Path,
    app: &Path,
    target: (&str, &str),
    extra: &[&str],
) -> Output {
    let (reference, ns) = target;
    spin_aks_on(rig, home)
        .arg("-f")
        .arg(app)
        .args(["up", "--output", "json", reference, "-n", ns])
        .args(["--secret", "api_token=x"])
        .args(extra)
        .output()
        .unwrap()
}

pub(crate) fn namespaces(rig: &Rig) -> String {
    rig.kubectl_ok(&["get", "namespaces", "-o", "name"])
}

/// A chart of the rig's registry published again under another version (a repackage with a
/// new version field, pushed next to the first), as a publisher's next release would be.
fn publish_again(charts: &str, chart: &str, from: &str, to: &str) -> Option<()> {
    let helm = tool("helm")?;
    let dir = tempfile::tempdir().unwrap();
    let helm_in = |args: &[&str]| {
        let mut cmd = Command::new(&helm);
        cmd.args(args)
            .env("HOME", dir.path())
            .current_dir(dir.path());
        run_ok(&mut cmd)
    };
    let oci = format!("oci://{charts}/{chart}");
    helm_in(&["pull", &oci, "--version", from, "--plain-http", "--untar"]);
    let app_version = format!("v{to}");
    helm_in(&[
        "package",
        chart,
        "--version",
        to,
        "--app-version",
        &app_version,
    ]);
    let package = format!("{chart}-{to}.tgz");
    helm_in(&["push", &package, &format!("oci://{charts}"), "--plain-http"]);
    Some(())
}

pub(crate) fn jsonpath(rig: &Rig, args: &[&str], path: &str) -> String {
    let mut all = args.to_vec();
    let path = format!("jsonpath={path}");
    all.extend(["-o", &path]);
    rig.kubectl_ok(&all)
}

#[test]
fn a_bare_cluster_runs_the_example_app_after_install_upgrades_and_uninstall_refuses_while_it_runs()
{
    let Some((rig, charts, proxy)) = bare_flux_rig() else {
        return;
    };
    let Some(registry) = Registry::open() else {
        return;
    };
    let sources = Sources { charts, proxy };
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let ns = rig.bare_namespace("installed");
    let reference = format!("{}/hello-aks", registry.host());
    let target = (reference.as_str(), ns.as_str());

    // Under -y without --install-spinkube, `up` says how to install and writes nothing.
    let refused = up(&rig, home.path(), &app, target, &["-y"]);
    assert_exit(&refused, 1, "up -y on a bare cluster");
    let said = stderr(&refused);
    assert!(
        said.contains("does not serve SpinApp")
            && said.contains("spin-aks up --install-spinkube")
            && said.contains("spin-aks cluster install"),
        "{said}"
    );
    let before = namespaces(&rig);
    assert!(
        !before.contains(&format!("namespace/{ns}\n")) && !before.contains("namespace/spin-aks\n"),
        "{before}"
    );

    let installed = install(&rig, home.path(), &sources, &[]);
    assert_exit(&installed, 0, "cluster install");
    let check = spin_aks_on(&rig, home.path())
        .arg("-f")
        .arg(&app)
        .args(["cluster", "check", "--output", "json", "-n", &ns])
        .output()
        .unwrap();
    assert_exit(&check, 0, "cluster check after the install");
    let checks = json_stdout(&check);
    let shim = (checks["checks"].as_array().unwrap().iter())
        .find(|c| c["name"] == "shim-version")
        .unwrap();
    assert!(
        shim["detail"]
            .as_str()
            .unwrap()
            .contains("containerd-shim-spin v0.25"),
        "the installed Shim's release is read: {checks}"
    );

    let deployed = up(&rig, home.path(), &app, target, &[]);
    assert_exit(&deployed, 0, "up after the install");
    let report = json_stdout(&deployed);
    assert_eq!(report["apply"]["rollout"]["ready"], 2, "{report}");

    // A new runtime-class-manager release: the HelmRelease is upgraded to it.
    publish_again(&sources.charts, "runtime-class-manager", "0.2.0", "0.2.1").unwrap();
    let bumped = install(
        &rig,
        home.path(),
        &sources,
        &["--runtime-class-manager-version", "0.2.1"],
    );
    assert_exit(&bumped, 0, "install with a newer runtime-class-manager");
    let report = json_stdout(&bumped);
    let actions: Vec<(String, String)> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] != "unchanged")
        .map(|o| {
            let name = |k: &str| o[k].as_str().unwrap().to_string();
            (name("kind"), name("name"))
        })
        .collect();
    assert_eq!(
        actions,
        [(
            "HelmRelease".to_string(),
            "runtime-class-manager".to_string()
        )],
        "only the bumped release changes: {report}"
    );
    let release = [
        "get",
        "helmrelease",
        "runtime-class-manager",
        "-n",
        "spin-aks",
    ];
    assert_eq!(
        jsonpath(&rig, &release, "{.status.history[0].chartVersion}"),
        "0.2.1"
    );
    let image = jsonpath(
        &rig,
        &["get", "deployments", "-n", "runtime-class-manager"],
        "{.items[0].spec.template.spec.containers[0].image}",
    );
    assert!(image.ends_with(":v0.2.1"), "{image}");

    let refused = spin_aks_on(&rig, home.path())
        .args(["cluster", "uninstall"])
        .output()
        .unwrap();
    assert_exit(&refused, 2, "uninstall with a SpinApp");
    let said = stderr(&refused);
    assert!(
        said.contains(&format!("{ns}/hello-aks")) && said.contains("--force"),
        "{said}"
    );
    assert!(jsonpath(&rig, &release, "{.metadata.name}") == "runtime-class-manager");

    let forced = spin_aks_on(&rig, home.path())
        .args(["cluster", "uninstall", "--force"])
        .output()
        .unwrap();
    assert_exit(&forced, 0, "uninstall --force");
    let releases = rig.kubectl_ok(&["get", "helmreleases", "-A", "-o", "name"]);
    assert!(releases.trim().is_empty(), "{releases}");
    // The operator's CRDs go; cert-manager's and the Shim's stay, as `helm uninstall` leaves them.
    let crds = rig.kubectl_ok(&["get", "crd", "-o", "name"]);
    assert!(!crds.contains("core.spinkube.dev"), "{crds}");
    let forced = stderr(&forced) + &String::from_utf8_lossy(&forced.stdout);
    assert!(
        forced.contains(&format!("spinapp/{ns}/hello-aks deleted")),
        "{forced}"
    );
}

#[test]
fn up_installs_spinkube_on_a_bare_cluster_with_install_spinkube_and_offers_it_on_a_terminal() {
    let Some((rig, charts, proxy)) = bare_flux_rig() else {
        return;
    };
    let Some(registry) = Registry::open() else {
        return;
    };
    let sources = Sources { charts, proxy };
    let home = tempfile::tempdir().unwrap();
    let app = example_copy(home.path());
    let ns = rig.bare_namespace("upinstall");
    let reference = format!("{}/hello-aks", registry.host());

    // On a terminal, `up` asks; declined, it says how and writes nothing.
    let mut terminal = Command::new(env!("CARGO_BIN_EXE_spin-aks"));
    terminal
        .arg("-f")
        .arg(&app)
        .args(["up", &reference, "-n", &ns, "--secret", "api_token=x"])
        .args(sources.flags())
        .env("HOME", home.path())
        .env("SPIN_AKS_STATE_FILE", home.path().join("state"))
        .env("SPIN_AKS_CACHE_DIR", home.path().join("cache"))
        .env("DOCKER_CONFIG", home.path().join("docker"))
        .env("KUBECONFIG", &rig.kubeconfig)
        .env("TERM", "xterm-256color")
        .env_remove("SPIN_AKS_LOG")
        .current_dir(home.path());
    let mut screen = Terminal::spawn(terminal);
    screen.wait_for("Install SpinKube on this cluster now");
    screen.type_keys("n");
    screen.type_keys(ENTER);
    let (code, shown) = screen.finish();
    assert_eq!(code, 1, "{shown}");
    assert!(
        shown.contains("does not serve SpinApp")
            && shown.contains("spin-aks up --install-spinkube"),
        "{shown}"
    );
    assert!(!namespaces(&rig).contains("namespace/spin-aks\n"));

    let started = Instant::now();
    let output = up(
        &rig,
        home.path(),
        &app,
        (&reference, &ns),
        &["-y", "--install-spinkube"]
            .into_iter()
            .chain(sources.flags())
            .collect::<Vec<_>>(),
    );
    assert_exit(&output, 0, "up --install-spinkube -y");
    let report = json_stdout(&output);
    assert_eq!(report["apply"]["rollout"]["ready"], 2, "{report}");
    let said = stderr(&output);
    assert!(said.contains("spin-operator"), "install progress: {said}");
    eprintln!("up --install-spinkube took {:?}", started.elapsed());
}

/// A kubeconfig for a user of the rig holding only `view` (a client certificate from the rig's CA).
pub(crate) fn viewer_kubeconfig(rig: &Rig, dir: &Path) -> std::path::PathBuf {
    let pki = rig.path("pki");
    let key = dir.join("viewer.key");
    let csr = dir.join("viewer.csr");
    let crt = dir.join("viewer.crt");
    // A v3 certificate, as rustls accepts (an extension makes `openssl x509 -req` write v3).
    let ext = dir.join("viewer.ext");
    std::fs::write(&ext, "basicConstraints=CA:FALSE\n").unwrap();
    let openssl = |args: &[&str]| run_ok(Command::new("openssl").args(args));
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=viewer",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        csr.to_str().unwrap(),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        csr.to_str().unwrap(),
        "-CA",
        pki.join("ca.crt").to_str().unwrap(),
        "-CAkey",
        pki.join("ca.key").to_str().unwrap(),
        "-CAcreateserial",
        "-extfile",
        ext.to_str().unwrap(),
        "-days",
        "1",
        "-out",
        crt.to_str().unwrap(),
    ]);
    rig.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "viewer-view",
        "--clusterrole",
        "view",
        "--user",
        "viewer",
    ]);
    let config = dir.join("viewer.kubeconfig");
    std::fs::copy(&rig.kubeconfig, &config).unwrap();
    let path = config.to_str().unwrap();
    run_ok(Command::new("kubectl").args([
        "--kubeconfig",
        path,
        "config",
        "set-credentials",
        "rig-admin",
        "--embed-certs",
        &format!("--client-certificate={}", crt.display()),
        &format!("--client-key={}", key.display()),
    ]));
    config
}

/// One bad-input case: whose kubeconfig, the flags, the exit code, what the error says, and the
/// longest it may take.
struct Case<'a> {
    kubeconfig: Option<&'a str>,
    flags: Vec<&'a str>,
    code: i32,
    says: Vec<&'a str>,
    seconds: u64,
}

#[test]
fn bad_versions_an_unreachable_chart_registry_and_missing_rights_fail_with_the_fix() {
    let Some((rig, charts, proxy)) = bare_flux_rig() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let viewer = viewer_kubeconfig(&rig, home.path());
    let nowhere = format!("127.0.0.1:{}/charts", crate::support::registry::free_port());
    let viewer = viewer.to_str().unwrap();
    // The unreachable registry comes last: it is the one case that writes.
    let cases: [Case; 5] = [
        Case {
            kubeconfig: Some(viewer),
            flags: vec![],
            code: 1,
            says: vec![
                "may not create namespaces",
                "patch customresourcedefinitions.apiextensions.k8s.io",
                "patch helmreleases.helm.toolkit.fluxcd.io in namespace spin-aks",
                "patch nodes",
                "cluster-admin",
                "nothing was written",
            ],
            seconds: 60,
        },
        Case {
            kubeconfig: None,
            flags: vec!["--cert-manager-version", "9.9.9"],
            code: 2,
            says: vec![
                "--cert-manager-version 9.9.9",
                "has no chart version v9.9.9",
            ],
            seconds: 60,
        },
        Case {
            kubeconfig: None,
            flags: vec!["--runtime-class-manager-version", "0.3.0"],
            code: 2,
            says: vec!["--runtime-class-manager-version 0.3.0", "--chart-registry"],
            seconds: 60,
        },
        Case {
            kubeconfig: None,
            flags: vec!["--runtime-class-manager-version", "0.2"],
            code: 2,
            says: vec!["--runtime-class-manager-version `0.2` is not a release version"],
            seconds: 60,
        },
        Case {
            kubeconfig: None,
            flags: vec!["--chart-registry", &nowhere, "--timeout", "20s"],
            code: 1,
            says: vec![
                "cert-manager (its webhook serving): its chart: chart pull error",
                "connection refused",
                &nowhere,
                "--chart-registry",
            ],
            seconds: 90,
        },
    ];
    let mut failures = Vec::new();
    for Case {
        kubeconfig,
        flags,
        code,
        says,
        seconds,
    } in cases
    {
        let started = Instant::now();
        let mut cmd = spin_aks_on(&rig, home.path());
        if let Some(kubeconfig) = kubeconfig {
            cmd.env("KUBECONFIG", kubeconfig);
        }
        cmd.args(["cluster", "install", "--module-proxy", &proxy]);
        if !flags.contains(&"--chart-registry") {
            cmd.args(["--chart-registry", &charts]);
        }
        let output = cmd.args(&flags).output().unwrap();
        let took = started.elapsed();
        let said = stderr(&output);
        let missing: Vec<&&str> = says.iter().filter(|w| !said.contains(**w)).collect();
        if output.status.code() != Some(code)
            || !missing.is_empty()
            || took > Duration::from_secs(seconds)
        {
            failures.push(format!(
                "{flags:?}: exit {:?} after {took:?}, missing {missing:?}: {said}",
                output.status.code()
            ));
        }
        if code == 2 || kubeconfig.is_some() {
            let written = namespaces(&rig);
            if written.contains("namespace/spin-aks\n") {
                failures.push(format!("{flags:?} wrote: {written}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
