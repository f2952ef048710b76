//! Every kind of bad input is refused with exit code 2, a message naming the file, field and
//! value at fault, and nothing written: one table of cases, then the cases of another shape.

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use crate::notation::test_pki::{self, KeyKind, Leaf, Pki};
use crate::support;
use crate::support::apps::wasm;
use crate::support::keyvault::{self, FakeKeyVault, PfxEncryption, VAULT_SCOPE};
use crate::support::registry::Registry;
use crate::support::{serve_bytes, spin_aks};

/// An app directory with `app.wasm` and the given spin.toml.
fn app_with(dir: &Path, manifest: &str) -> PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("app.wasm"), wasm(1)).unwrap();
    std::fs::write(app.join("spin.toml"), manifest).unwrap();
    app
}

const HEADER: &str =
    "spin_manifest_version = 2\n[application]\nname = \"bad\"\nversion = \"1.0.0\"\n";

fn v2(rest: &str) -> String {
    format!("{HEADER}[[trigger.http]]\nroute = \"/...\"\ncomponent = \"api\"\n{rest}")
}

/// The secret every case that carries one uses: no message may repeat it.
const SECRET: &str = "hunter2";

/// One bad input: what `setup` writes into an empty home and the arguments it returns, and what
/// the binary must answer. Every case is also checked for: nothing on stdout (unless it exits 0),
/// no [`SECRET`] in stderr or stdout, a short stderr, and nothing written or changed under the home
/// (unless the run says it may write), within the run's deadline.
struct Case {
    name: &'static str,
    setup: fn(&Path) -> Setup,
    code: i32,
    /// Fragments stderr must hold (the file, the field, the value, what to do).
    says: &'static [&'static str],
}

/// A case set up: the arguments and the fragments known only now (a path, a URL), or why it
/// cannot run here (reported through `support::skip`).
type Setup = Result<Run, &'static str>;

struct Run {
    args: Vec<OsString>,
    says: Vec<String>,
    /// Variables set (`Some`) or removed (`None`) for the run.
    env: Vec<(OsString, Option<OsString>)>,
    stdout: Stdout,
    /// Seconds the run may take (a hang is a failure).
    within: u64,
    /// Whether files may be written under the home (a run that succeeds).
    writes: bool,
    /// Fragments neither stream may hold (a credential's parts, a raw escape).
    hides: Vec<String>,
    /// What else must hold afterwards: each problem found, described.
    then: Option<Then>,
}

type Then = Box<dyn Fn(&std::process::Output) -> Vec<String>>;

/// Where the binary's standard output goes.
#[derive(Clone, Copy, PartialEq)]
enum Stdout {
    Captured,
    /// `/dev/full`: every write fails with ENOSPC.
    Full,
    /// A pipe whose reader has gone: every write fails with EPIPE.
    Closed,
}

fn run(args: impl IntoIterator<Item = impl Into<OsString>>) -> Run {
    Run {
        args: args.into_iter().map(Into::into).collect(),
        says: Vec::new(),
        env: Vec::new(),
        stdout: Stdout::Captured,
        within: 60,
        writes: false,
        hides: Vec::new(),
        then: None,
    }
}

impl Run {
    fn arg(mut self, arg: impl Into<OsString>) -> Run {
        self.args.push(arg.into());
        self
    }

    fn args(mut self, args: impl IntoIterator<Item = impl Into<OsString>>) -> Run {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Also requires `fragment` in stderr.
    fn says(mut self, fragment: impl Into<String>) -> Run {
        self.says.push(fragment.into());
        self
    }

    /// Sets `name` to `value` for the run.
    fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Run {
        self.env.push((name.into(), Some(value.into())));
        self
    }

    /// Removes `name` from the run's environment.
    fn env_remove(mut self, name: impl Into<OsString>) -> Run {
        self.env.push((name.into(), None));
        self
    }

    fn stdout(mut self, stdout: Stdout) -> Run {
        self.stdout = stdout;
        self
    }

    /// The run fails if it takes longer than `secs`.
    fn within(mut self, secs: u64) -> Run {
        self.within = secs;
        self
    }

    /// Files under the home may be written (the run is meant to succeed).
    fn writes(mut self) -> Run {
        self.writes = true;
        self
    }

    /// Neither stdout nor stderr may hold `fragment`.
    fn hides(mut self, fragment: impl Into<String>) -> Run {
        self.hides.push(fragment.into());
        self
    }

    /// `check` runs after the binary; each string it returns is a problem.
    fn then(mut self, check: impl Fn(&std::process::Output) -> Vec<String> + 'static) -> Run {
        self.then = Some(Box::new(check));
        self
    }
}

/// `build --skip-spin-build -f <app>` of an app with `manifest`.
fn build(home: &Path, manifest: &str) -> Setup {
    let app = app_with(home, manifest);
    Ok(run(["build", "--skip-spin-build", "-f"]).arg(app))
}

/// An app whose one component's source is `source`; `outside.wasm` lies beside the app.
fn escaping_source(home: &Path, source: &str) -> Setup {
    std::fs::write(home.join("outside.wasm"), wasm(9)).unwrap();
    build(
        home,
        &v2(&format!("[component.api]\nsource = \"{source}\"\n")),
    )
}

/// `--state-file <home>/states/<name>` beside a regular file, a link to it, a directory and a
/// FIFO (never opened: that would wait forever); the path and what it is must be named.
fn state_file(home: &Path, name: &str) -> Setup {
    let dir = home.join("states");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("target"), "{\"version\":1}").unwrap();
    std::os::unix::fs::symlink(dir.join("target"), dir.join("link")).unwrap();
    std::fs::create_dir(dir.join("dir")).unwrap();
    support::run_ok(std::process::Command::new("mkfifo").arg(dir.join("fifo")));
    if name == "null" {
        // A private node with the null device's numbers, never the real /dev/null.
        let node = std::process::Command::new("mknod")
            .arg(dir.join("null"))
            .args(["c", "1", "3"])
            .status();
        if !node.is_ok_and(|s| s.success()) {
            return Err("mknod needs root");
        }
    }
    let path = dir.join(name);
    let said = path.to_str().unwrap().to_string();
    Ok(run(["--state-file"])
        .arg(path)
        .args(["push", "localhost:1/a:1", "--from-layout"])
        .arg(home.join("no-layout"))
        .says(said))
}

/// A small app built into `<home>/layout`, to push.
fn built_layout(home: &Path) -> PathBuf {
    let app = app_with(home, &v2("[component.api]\nsource = \"app.wasm\"\n"));
    let layout = home.join("layout");
    spin_aks(home)
        .args(["build", "--skip-spin-build", "-f"])
        .arg(&app)
        .arg("--layout")
        .arg(&layout)
        .assert()
        .success();
    layout
}

/// A loopback address nobody listens on.
fn closed_port() -> std::net::SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `push` of a built layout to a closed port with `--ca-file` holding `bytes`: a certificate
/// gets the push as far as the (closed) registry.
fn ca_file(home: &Path, bytes: Vec<u8>) -> Setup {
    let layout = built_layout(home);
    let file = home.join("ca");
    std::fs::write(&file, bytes).unwrap();
    Ok(run(["push", "--retry-budget", "0s", "--from-layout"])
        .arg(layout)
        .arg(format!("{}/app:1", closed_port()))
        .arg("--ca-file")
        .arg(file))
}

/// [`ca_file`] holding no certificate: refused, naming the file.
fn refused_ca_file(home: &Path, bytes: Vec<u8>) -> Setup {
    let named = home.join("ca").to_str().unwrap().to_string();
    Ok(ca_file(home, bytes)?.says(named))
}

/// A PEM block of `label` around `body`.
fn pem(label: &str, body: &str) -> Vec<u8> {
    format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n").into_bytes()
}

fn self_signed() -> (rcgen::KeyPair, rcgen::Certificate) {
    let key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertificateParams::new(vec!["registry.test".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (key, ca)
}

/// `push` of a built layout to `reference`.
fn push_to(home: &Path, reference: &str) -> Setup {
    let layout = built_layout(home);
    Ok(run(["push", "--from-layout"]).arg(layout).arg(reference))
}

/// `publish --dir <home>/<dir>` of a small app to a closed registry, after writing `files`
/// (path under the home, contents): a refusal comes before anything is pushed.
fn publish_dir(home: &Path, files: &[(&str, &str)], dir: &str) -> Setup {
    let app = app_with(home, &v2("[component.api]\nsource = \"app.wasm\"\n"));
    for (path, contents) in files {
        let path = home.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    let image = format!("{}/bad@sha256:{}", closed_port(), "ab".repeat(32));
    Ok(
        run(["publish", "--retry-budget", "0s", "--image", &image, "-f"])
            .arg(app)
            .arg("--dir")
            .arg(home.join(dir)),
    )
}

/// A SpinApp named `name`, as a user's object file holds it.
fn spinapp(name: &str) -> String {
    format!("apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinApp\nmetadata:\n  name: {name}\nspec:\n  image: bad:1\n  replicas: 1\n  executor: containerd-shim-spin\n")
}

/// A ConfigMap outside every kustomization of a case, which none may read.
const OUTSIDE: (&str, &str) = (
    "outside/x.yaml",
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: outside\n",
);

/// `publish_dir` of `<home>/kust`, a kustomization reading `kustomization` beside a SpinApp
/// (`app.yaml`) and the [`OUTSIDE`] file; stderr must name the kustomization file.
fn kustomization(home: &Path, kustomization: &str) -> Setup {
    let file = home.join("kust/kustomization.yaml");
    Ok(kustomization_beside(home, kustomization, None)?.says(file.to_str().unwrap()))
}

/// As [`kustomization`], with another kustomization at `<home>/<dir>` (`(dir, text)`); stderr
/// must name that one's file, by its resolved path (as kustomize names a base).
fn kustomization_beside(home: &Path, text: &str, other: Option<(&str, &str)>) -> Setup {
    let app = spinapp("bad");
    let mut files = vec![
        ("kust/kustomization.yaml".to_string(), text.to_string()),
        ("kust/app.yaml".to_string(), app),
        (OUTSIDE.0.to_string(), OUTSIDE.1.to_string()),
    ];
    if let Some((dir, text)) = other {
        files.push((format!("{dir}/kustomization.yaml"), text.to_string()));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let run = publish_dir(home, &files, "kust")?;
    Ok(match other {
        Some((dir, _)) => {
            let file = home
                .join(dir)
                .canonicalize()
                .unwrap()
                .join("kustomization.yaml");
            run.says(file.to_str().unwrap())
        }
        None => run,
    })
}

/// A loopback address that accepts every connection, counts it and closes it at once: a run
/// that must send nothing leaves the count at 0 (`then` waits a moment for a late one).
fn counting_port() -> (std::net::SocketAddr, Then) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let none_arrived: Then = Box::new(move |_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        match count.load(Ordering::SeqCst) {
            0 => Vec::new(),
            n => vec![format!("{n} connections reached {address}")],
        }
    });
    (address, none_arrived)
}

/// The token of [`kubeconfig_good`]'s user: no message may repeat it.
const KUBE_TOKEN: &str = "kube-token-q7w";

/// A kubeconfig at `<home>/kubeconfig` whose one context, `good`, points at `server`.
fn kubeconfig_good(home: &Path, server: &str) -> PathBuf {
    let file = home.join("kubeconfig");
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: good\n  cluster:\n    server: {server}\n\
             contexts:\n- name: good\n  context: {{cluster: good, user: u}}\ncurrent-context: good\n\
             users:\n- name: u\n  user: {{token: {KUBE_TOKEN}}}\n"
        ),
    )
    .unwrap();
    file
}

/// A small app whose deploy artifact is published as `latest` (in the state file).
fn published_app(home: &Path) -> std::path::PathBuf {
    let app = app_with(home, &v2("[component.api]\nsource = \"app.wasm\"\n"));
    let key = app.join("spin.toml").canonicalize().unwrap();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let state = serde_json::json!({"version": 1, "apps": {key.to_str().unwrap(): {
        "deploy_artifact": {"repository": "127.0.0.1:1/bad-deploy", "tags": {"latest": {
            "digest": digest, "image": format!("127.0.0.1:1/bad@{digest}"),
        }}},
    }}});
    std::fs::write(home.join("state"), state.to_string()).unwrap();
    app
}

/// `fleet add good nosuchctx` of an app whose deploy artifact is published (in the state file),
/// with `good` at a port that counts connections: none may arrive.
fn fleet_add_unknown_context(home: &Path) -> Setup {
    let app = published_app(home);
    let (address, none_arrived) = counting_port();
    let kubeconfig = kubeconfig_good(home, &format!("https://{address}"));
    Ok(run(["fleet", "add", "good", "nosuchctx", "-f"])
        .arg(app)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .within(20)
        .hides(KUBE_TOKEN)
        .then(none_arrived))
}

/// `up --publish` of a small app to a registry at a port that counts connections (none may
/// arrive), with `--kubeconfig` holding `kubeconfig`.
fn up_publish(home: &Path, kubeconfig: &str) -> Setup {
    let app = app_with(home, &v2("[component.api]\nsource = \"app.wasm\"\n"));
    let file = home.join("kubeconfig");
    std::fs::write(&file, kubeconfig).unwrap();
    let (address, none_arrived) = counting_port();
    Ok(run([
        "up",
        "--skip-spin-build",
        "--publish",
        "--retry-budget",
        "0s",
        "-f",
    ])
    .arg(app)
    .arg("--kubeconfig")
    .arg(&file)
    .arg(format!("{address}/bad:1"))
    .within(20)
    .hides(KUBE_TOKEN)
    .then(none_arrived))
}

const NO_CERTIFICATE: &str = "holds no certificate";

/// An app whose component `api` comes from `url`, pinned to `digest` (`sha256:…`).
fn url_source(home: &Path, url: &str, digest: &str) -> Setup {
    build(
        home,
        &v2(&format!(
            "[component.api]\nsource = {{ url = \"{url}\", digest = \"{digest}\" }}\n"
        )),
    )
}

/// An app whose component `api` (`app.wasm`) has the one dependency `"a:b/c" = <value>`.
fn with_dependency(home: &Path, value: &str) -> Setup {
    build(
        home,
        &v2(&format!(
            "[component.api]\nsource = \"app.wasm\"\n[component.api.dependencies]\n\"a:b/c\" = {value}\n"
        )),
    )
}

/// [`with_dependency`] of `{ url, digest }`.
fn url_dependency(home: &Path, url: &str, digest: &str) -> Setup {
    with_dependency(
        home,
        &format!("{{ url = \"{url}\", digest = \"{digest}\" }}"),
    )
}

/// A digest nothing has.
fn any_digest() -> String {
    format!("sha256:{}", "0".repeat(64))
}

/// A URL to a stalled server (accepts, never answers), and a run whose idle timeout is 2 s: it
/// must end (exit 1) within 20 s, naming the URL.
fn stalled(home: &Path, dependency: bool) -> Setup {
    let url = format!("http://{}/x.wasm", support::silent_server());
    let setup = if dependency {
        url_dependency(home, &url, &any_digest())?
    } else {
        url_source(home, &url, &any_digest())?
    };
    Ok(setup
        .env("SPIN_AKS_DOWNLOAD_IDLE_SECONDS", "2")
        .within(20)
        .says(format!("cannot download {url}")))
}

/// A URL with a password (and a token in its query) on a closed port: the failure names the URL
/// with both replaced by `***`.
fn secret_url(home: &Path, dependency: bool) -> Setup {
    let address = closed_port();
    let url = format!("https://user:{SECRET}@{address}/x.wasm?sig={SECRET}");
    let setup = if dependency {
        url_dependency(home, &url, &any_digest())?
    } else {
        url_source(home, &url, &any_digest())?
    };
    Ok(setup.says(format!("https://***@{address}/x.wasm?sig=***")))
}

/// A download of text pinned to its own digest: refused by the URL, never by a temporary file.
fn not_wasm_download(home: &Path, dependency: bool) -> Setup {
    let bytes = b"<html>not wasm</html>".to_vec();
    let digest = format!("sha256:{}", sha256(&bytes));
    let url = serve_bytes(bytes, 1, "x.wasm");
    let setup = if dependency {
        url_dependency(home, &url, &digest)?
    } else {
        url_source(home, &url, &digest)?
    };
    Ok(setup
        .says(format!(
            "the download from {url} is not a WebAssembly module"
        ))
        .hides("cache/wasm/"))
}

/// An app whose `name` (in the app directory) is a link to `target`.
fn app_link(home: &Path, manifest: &str, name: &str, target: &str) -> Setup {
    let setup = build(home, manifest)?;
    std::os::unix::fs::symlink(target, home.join("app").join(name)).unwrap();
    Ok(setup)
}

/// An app whose `sub` is an empty directory.
fn app_dir(home: &Path, manifest: &str) -> Setup {
    let setup = build(home, manifest)?;
    std::fs::create_dir(home.join("app/sub")).unwrap();
    Ok(setup)
}

fn cases() -> Vec<Case> {
    vec![
        // ---------- spin.toml: syntax, schema, fields ----------
        Case {
            name: "TOML syntax errors give line and column",
            setup: |home| {
                build(
                    home,
                    "spin_manifest_version = 2\n[application\nname = \"x\"\n",
                )
            },
            code: 2,
            says: &["spin.toml:2:", "invalid TOML"],
        },
        Case {
            name: "unknown manifest versions are refused",
            setup: |home| {
                build(
                    home,
                    "spin_manifest_version = 3\n[application]\nname = \"x\"\n",
                )
            },
            code: 2,
            says: &["`spin_manifest_version`", "unsupported manifest version 3"],
        },
        Case {
            name: "a missing source field is named by its path",
            setup: |home| build(home, &v2("[component.api]\nfiles = []\n")),
            code: 2,
            says: &["`component.api`", "missing field `source`"],
        },
        Case {
            name: "a mistyped field is named by its path",
            setup: |home| {
                build(home, &v2("[component.api]\nsource = \"app.wasm\"\nallowed_outbound_hosts = \"https://x\"\n"))
            },
            code: 2,
            says: &[
                "`component.api.allowed_outbound_hosts`",
                "expected a sequence",
            ],
        },
        Case {
            name: "unknown fields are refused",
            setup: |home| {
                build(
                    home,
                    &v2("[component.api]\nsource = \"app.wasm\"\nfilez = []\n"),
                )
            },
            code: 2,
            says: &["component.api", "unknown field `filez`"],
        },
        Case {
            name: "triggers the shim cannot run are refused",
            setup: |home| {
                build(home, &format!("{HEADER}[[trigger.cron]]\ncron_expression = \"* * * * *\"\ncomponent = \"api\"\n[component.api]\nsource = \"app.wasm\"\n"))
            },
            code: 2,
            says: &[
                "type `cron`",
                "containerd-shim-spin cannot run",
                "http, redis, sqs, mqtt, command",
            ],
        },
        Case {
            name: "a trigger naming an unknown component is refused",
            setup: |home| build(home, &v2("[component.other]\nsource = \"app.wasm\"\n")),
            code: 2,
            says: &["`trigger.http[0].component`", "no component named `api`"],
        },
        Case {
            name: "variables need exactly one of default and required",
            setup: |home| {
                build(home, &v2("[variables]\ntoken = { secret = true }\n[component.api]\nsource = \"app.wasm\"\n"))
            },
            code: 2,
            says: &[
                "`variables.token`",
                "needs a `default` or `required = true`",
            ],
        },
        Case {
            name: "a missing manifest is bad input",
            setup: |home| Ok(run(["build", "-f"]).arg(home.join("nope"))),
            code: 2,
            says: &["no Spin manifest at"],
        },
        // ---------- component sources ----------
        Case {
            name: "a missing wasm names the component and path and suggests spin build",
            setup: |home| build(home, &v2("[component.api]\nsource = \"target/api.wasm\"\n")),
            code: 2,
            says: &["component `api`", "target/api.wasm", "spin build"],
        },
        Case {
            name: "a source that is not WebAssembly is refused",
            setup: |home| build(home, &v2("[component.api]\nsource = \"spin.toml\"\n")),
            code: 2,
            says: &["component `api`", "is not a WebAssembly module"],
        },
        Case {
            name: "a source escaping the app directory by `..` is refused",
            setup: |home| escaping_source(home, "../outside.wasm"),
            code: 2,
            says: &[
                "`component.api.source`",
                "../outside.wasm",
                "outside the app directory",
            ],
        },
        Case {
            name: "an absolute source is refused",
            setup: |home| escaping_source(home, "/etc/passwd"),
            code: 2,
            says: &[
                "`component.api.source`",
                "/etc/passwd",
                "outside the app directory",
            ],
        },
        Case {
            name: "a source escaping through a subdirectory is refused",
            setup: |home| escaping_source(home, "sub/../../outside.wasm"),
            code: 2,
            says: &[
                "`component.api.source`",
                "sub/../../outside.wasm",
                "outside the app directory",
            ],
        },
        Case {
            name: "a source linked outside the app is refused",
            setup: |home| {
                let app = home.join("app");
                std::fs::create_dir_all(&app).unwrap();
                std::fs::write(
                    app.join("spin.toml"),
                    v2("[component.api]\nsource = \"app.wasm\"\n"),
                )
                .unwrap();
                std::fs::write(home.join("outside.wasm"), wasm(4)).unwrap();
                std::os::unix::fs::symlink(home.join("outside.wasm"), app.join("app.wasm"))
                    .unwrap();
                Ok(run(["build", "--skip-spin-build", "-f"]).arg(app))
            },
            code: 2,
            says: &["component `api`", "outside the app directory"],
        },
        Case {
            name: "an invalid URL digest is refused",
            setup: |home| {
                build(home, &v2("[component.api]\nsource = { url = \"https://example.com/a.wasm\", digest = \"sha256:1234\" }\n"))
            },
            code: 2,
            says: &[
                "`component.api.source.digest`",
                "sha256:1234",
                "not a sha256 digest",
            ],
        },
        Case {
            name: "a download whose bytes do not match the digest is refused",
            setup: |home| {
                let url = serve_bytes(wasm(5), 1, "app.wasm");
                let pinned = format!("sha256:{}", "0".repeat(64));
                let source = format!(
                    "[component.api]\nsource = {{ url = \"{url}\", digest = \"{pinned}\" }}\n"
                );
                Ok(build(home, &v2(&source))?.says(url).says(pinned))
            },
            code: 2,
            says: &["component `api`", "fix the `digest`"],
        },
        Case {
            // Path and url dependencies are packaged (locked_app); a registry one is refused.
            name: "registry dependencies cannot be fetched offline",
            setup: |home| {
                build(home, &v2("[component.api]\nsource = \"app.wasm\"\n[component.api.dependencies]\n\"my:dep/iface\" = \"^1.0\"\n"))
            },
            code: 2,
            says: &[
                "component `api`",
                "dependency `my:dep/iface`",
                "cannot fetch offline",
            ],
        },
        Case {
            name: "registry package sources are not supported yet",
            setup: |home| {
                build(home, &v2("[component.api]\nsource = { registry = \"ghcr.io\", package = \"a:b\", version = \"1.0.0\" }\n"))
            },
            code: 2,
            says: &["component `api`", "registry package", "not support"],
        },
        // ---------- files mounted into a component ----------
        Case {
            name: "a file pattern escaping the app directory is refused",
            setup: |home| {
                build(
                    home,
                    &v2("[component.api]\nsource = \"app.wasm\"\nfiles = [\"../secrets/*\"]\n"),
                )
            },
            code: 2,
            says: &[
                "`component.api.files[0]`",
                "../secrets/*",
                "outside the app directory",
            ],
        },
        Case {
            name: "a file mount of an absolute directory is refused",
            setup: |home| {
                build(home, &v2("[component.api]\nsource = \"app.wasm\"\nfiles = [{ source = \"/etc\", destination = \"/\" }]\n"))
            },
            code: 2,
            says: &[
                "`component.api.files[0].source`",
                "outside the app directory",
            ],
        },
        Case {
            name: "a file linked outside the app is refused",
            setup: |home| {
                std::fs::write(home.join("secret.txt"), "not for the image").unwrap();
                let setup = build(
                    home,
                    &v2("[component.api]\nsource = \"app.wasm\"\nfiles = [\"static/*\"]\n"),
                );
                let app = home.join("app");
                std::fs::create_dir_all(app.join("static")).unwrap();
                std::os::unix::fs::symlink(home.join("secret.txt"), app.join("static/leak.txt"))
                    .unwrap();
                setup
            },
            code: 2,
            says: &[
                "static/leak.txt",
                "symbolic link",
                "outside the app directory",
            ],
        },
        // ---------- --state-file: a regular file or a new path, nothing else ----------
        Case {
            name: "a state file that is a FIFO is refused unopened",
            setup: |home| state_file(home, "fifo"),
            code: 2,
            says: &["is a FIFO"],
        },
        Case {
            name: "a state file that is a symbolic link is refused, its target untouched",
            setup: |home| state_file(home, "link"),
            code: 2,
            says: &["is a symbolic link"],
        },
        Case {
            name: "a state file that is a directory is refused",
            setup: |home| state_file(home, "dir"),
            code: 2,
            says: &["is a directory"],
        },
        Case {
            name: "a state file that is a device node is refused",
            setup: |home| state_file(home, "null"),
            code: 2,
            says: &["is a character device"],
        },
        // ---------- secret-bearing flags: the flag and the problem named, never the value ----------
        Case {
            name: "apply --secret with a name Spin does not allow",
            setup: |_| Ok(run(["apply", "--secret", "API-KEY=hunter2"])),
            code: 2,
            says: &["invalid --secret", "not a Spin variable name"],
        },
        Case {
            name: "up --secret without NAME=",
            setup: |_| Ok(run(["up", "--secret", "hunter2!"])),
            code: 2,
            says: &["invalid --secret", "not a Spin variable name"],
        },
        Case {
            name: "apply --kv-store with a password in an http URL",
            setup: |_| {
                Ok(run([
                    "apply",
                    "--kv-store",
                    "cache=redis:http://:hunter2@redis",
                ]))
            },
            code: 2,
            says: &["invalid --kv-store", "redis URL of `cache`"],
        },
        Case {
            name: "scaffold --kv-store without a label",
            setup: |_| Ok(run(["scaffold", "--kv-store", "hunter2"])),
            code: 2,
            says: &["invalid --kv-store", "<label>=<backend>"],
        },
        Case {
            name: "up --kv-store with a label Spin does not allow",
            setup: |_| {
                Ok(run([
                    "up",
                    "--kv-store",
                    "Cache=redis:redis://:hunter2@redis",
                ]))
            },
            code: 2,
            says: &["invalid --kv-store", "label before `=`"],
        },
        Case {
            name: "apply --sqlite with a URL that is not libsql",
            setup: |_| Ok(run(["apply", "--sqlite", "db=postgres://u:hunter2@db"])),
            code: 2,
            says: &["invalid --sqlite", "libsql:<url>"],
        },
        // ---------- --ca-file must hold a certificate (an empty list used to pass silently) ----------
        Case {
            name: "an empty CA file is refused",
            setup: |home| refused_ca_file(home, vec![]),
            code: 2,
            says: &[NO_CERTIFICATE],
        },
        Case {
            name: "a CA file of random bytes is refused",
            setup: |home| refused_ca_file(home, support::apps::bytes(3, 4096)),
            code: 2,
            says: &[NO_CERTIFICATE],
        },
        Case {
            name: "a CA file of text is refused",
            setup: |home| refused_ca_file(home, b"not a certificate\n".to_vec()),
            code: 2,
            says: &[NO_CERTIFICATE],
        },
        Case {
            name: "a CA file holding only a key is refused",
            setup: |home| refused_ca_file(home, self_signed().0.serialize_pem().into_bytes()),
            code: 2,
            says: &[NO_CERTIFICATE],
        },
        Case {
            name: "a CA file whose certificate is not X.509 is refused",
            setup: |home| refused_ca_file(home, pem("CERTIFICATE", "aGVsbG8gd29ybGQ=")),
            code: 2,
            says: &["not a valid X.509 certificate"],
        },
        Case {
            name: "a CA file whose certificate is not base64 is refused",
            setup: |home| refused_ca_file(home, pem("CERTIFICATE", "!!not base64!!")),
            code: 2,
            says: &["not valid base64"],
        },
        Case {
            name: "a PEM CA certificate is accepted (the push reaches the closed registry)",
            setup: |home| ca_file(home, self_signed().1.pem().into_bytes()),
            code: 1,
            says: &["Connection refused"],
        },
        Case {
            name: "a DER CA certificate is accepted (the push reaches the closed registry)",
            setup: |home| ca_file(home, self_signed().1.der().to_vec()),
            code: 1,
            says: &["Connection refused"],
        },
        // ---------- push references: what to change, the password never echoed, the length cut ----------
        Case {
            name: "a reference with credentials",
            setup: |home| push_to(home, "user:hunter2@example.com/app:1"),
            code: 2,
            says: &["credentials do not belong in a reference"],
        },
        Case {
            name: "a URL with credentials",
            setup: |home| push_to(home, "https://user:hunter2@example.com/app"),
            code: 2,
            says: &["credentials do not belong in a reference"],
        },
        Case {
            name: "a reference with an http:// scheme",
            setup: |home| push_to(home, "http://localhost:5000/app:1"),
            code: 2,
            says: &["drop the `http://` scheme"],
        },
        Case {
            name: "a reference with an oci:// scheme",
            setup: |home| push_to(home, "oci://example.com/app:1"),
            code: 2,
            says: &["drop the `oci://` scheme"],
        },
        Case {
            name: "a reference with a docker:// scheme",
            setup: |home| push_to(home, "docker://example.com/app:1"),
            code: 2,
            says: &["drop the `docker://` scheme"],
        },
        Case {
            name: "a reference of 100 012 characters",
            setup: |home| push_to(home, &format!("example.com/{}", "a/".repeat(50_000))),
            code: 2,
            says: &["(100012 characters)"],
        },
        // ---------- panics: every failure is an exit code and a sentence (#27) ----------
        Case {
            name: "a report that cannot be written to a full stdout is an error, not a panic",
            setup: |home| {
                Ok(
                    build(home, &v2("[component.api]\nsource = \"app.wasm\"\n"))?
                        .stdout(Stdout::Full)
                        .writes(),
                )
            },
            code: 1,
            says: &[
                "cannot write the report to standard output",
                "No space left on device",
            ],
        },
        Case {
            name: "a report that cannot be written to a closed pipe is an error, not a panic",
            setup: |home| {
                Ok(
                    build(home, &v2("[component.api]\nsource = \"app.wasm\"\n"))?
                        .stdout(Stdout::Closed)
                        .writes(),
                )
            },
            code: 1,
            says: &["cannot write the report to standard output", "Broken pipe"],
        },
        // ---------- #27: credentials never published or echoed ----------
        Case {
            name: "a git remote's credential never reaches an exported deploy artifact",
            setup: |home| {
                let archive = home.join("app.oci.tar");
                let run = git_app(home, "https://ci:hunter2@example.com/org/app.git")?
                    .args(["--output", "json", "export", "-o"])
                    .arg(&archive)
                    .args(["--with-deploy", "localhost:1/org/app"])
                    .writes();
                Ok(run.then(move |_| {
                    let bytes = std::fs::read(&archive).unwrap_or_default();
                    let source = br#""org.opencontainers.image.source":"https://example.com/org/app.git""#;
                    let mut problems = Vec::new();
                    if contains(&bytes, SECRET.as_bytes()) {
                        problems.push("the archive holds the credential".to_string());
                    }
                    if !contains(&bytes, source) {
                        problems.push("the archive lacks the remote without its userinfo".to_string());
                    }
                    problems
                }))
            },
            code: 0,
            says: &[],
        },
        Case {
            name: "a git remote's credential never reaches a published deploy artifact",
            setup: |home| {
                let Some(registry) = Registry::open() else {
                    return Err("docker-registry is not installed");
                };
                let repository = format!("{}/org/app", registry.host());
                let run = git_app(home, "https://x-access-token:hunter2@example.com/org/app.git")?
                    .args(["--output", "json", "push", "--publish"])
                    .arg(&repository)
                    .writes();
                Ok(run.then(move |_| {
                    let deploy = format!("{}/org/app-deploy:latest", registry.host());
                    let manifest = support::skopeo_raw_manifest(&deploy, None);
                    let text = String::from_utf8_lossy(&manifest);
                    let mut problems = Vec::new();
                    if text.contains(SECRET) {
                        problems.push(format!("the artifact carries the credential: {text}"));
                    }
                    if !text.contains(r#""org.opencontainers.image.source":"https://example.com/org/app.git""#) {
                        problems.push(format!("the artifact lacks the bare remote: {text}"));
                    }
                    problems
                }))
            },
            code: 0,
            says: &[],
        },
        Case {
            name: "apply --image with credentials is refused without echoing them",
            setup: |_| Ok(run(["apply", "--image", "https://user:hunter2@example.com/app:1"])),
            code: 2,
            says: &["invalid --image", "credentials do not belong in a reference"],
        },
        Case {
            name: "publish --repository with credentials is refused without echoing them",
            setup: |_| Ok(run(["publish", "--repository", "user:hunter2@example.com/app"])),
            code: 2,
            says: &["invalid --repository", "credentials do not belong in a reference"],
        },
        Case {
            name: "export --with-deploy with credentials is refused without echoing them",
            setup: |_| Ok(run(["export", "--with-deploy", "user:hunter2@example.com/app"])),
            code: 2,
            says: &["invalid --with-deploy", "credentials do not belong in a reference"],
        },
        Case {
            name: "cluster install --chart-registry with credentials is refused without echoing them",
            setup: |home| Ok(no_cluster(home, ["cluster", "install", "--chart-registry", "user:hunter2@example.com/charts"])),
            code: 2,
            says: &["--chart-registry", "credentials do not belong in a reference"],
        },
        Case {
            name: "cluster install --flux-registry with credentials is refused without echoing them",
            setup: |home| Ok(no_cluster(home, ["cluster", "install", "--flux-registry", "oci://user:hunter2@example.com/flux"])),
            code: 2,
            says: &["--flux-registry", "credentials do not belong in a reference"],
        },
        Case {
            name: "cluster install --module-proxy that is not https is refused without echoing its login",
            setup: |home| Ok(no_cluster(home, ["cluster", "install", "--module-proxy", "ftp://user:hunter2@example.com/proxy"])),
            code: 2,
            says: &["--module-proxy", "ftp://***@example.com/proxy", "must be https://"],
        },
        Case {
            name: "cluster install --module-proxy that is no URL is refused without echoing it",
            setup: |home| Ok(no_cluster(home, ["cluster", "install", "--module-proxy", "user:hunter2@example.com"])),
            code: 2,
            says: &["--module-proxy is not a URL with a host"],
        },
        // ---------- #27: what is printed cannot steer a terminal or a CI runner ----------
        Case {
            name: "in GitHub Actions an error is one workflow command whatever lines it holds",
            setup: |home| {
                let source = "a.wasm\\n::add-mask::owned\\n::error::injected";
                Ok(build(home, &v2(&format!("[component.api]\nsource = \"{source}\"\n")))?
                    .env("GITHUB_ACTIONS", "true")
                    .then(|output| workflow_commands(&output.stderr, "::error::", 1)))
            },
            code: 2,
            says: &["::error::", "%0A::add-mask::owned"],
        },
        Case {
            name: "in GitHub Actions a report's lines are never workflow commands",
            setup: |home| {
                let manifest = v2("[component.api]\nsource = \"app.wasm\"\n")
                    .replace("name = \"bad\"", "name = \"x\\n::add-mask::owned\\n##[error]injected\"");
                Ok(build(home, &manifest)?
                    .env("GITHUB_ACTIONS", "true")
                    .writes()
                    .then(|output| {
                        let mut problems = workflow_commands(&output.stdout, "", 0);
                        problems.extend(workflow_commands(&output.stderr, "", 0));
                        problems
                    }))
            },
            code: 0,
            says: &[],
        },
        Case {
            name: "terminal escapes in the app name are printed escaped",
            setup: |home| {
                let manifest = v2("[component.api]\nsource = \"app.wasm\"\n")
                    .replace("name = \"bad\"", "name = \"x\\u001b]0;owned\\u0007\\u001b[2J\"");
                Ok(build(home, &manifest)?.writes().hides("\u{1b}").hides("\u{7}"))
            },
            code: 0,
            says: &[],
        },
        // ---------- #27: timestamps past 9999 are refused, not a panic ----------
        Case {
            name: "SOURCE_DATE_EPOCH after 9999 is refused by build",
            setup: |home| Ok(build(home, &v2("[component.api]\nsource = \"app.wasm\"\n"))?
                .env("SOURCE_DATE_EPOCH", "253402300800")),
            code: 2,
            says: &["SOURCE_DATE_EPOCH=`253402300800`", "after 9999-12-31T23:59:59Z"],
        },
        Case {
            name: "SOURCE_DATE_EPOCH after 9999 is refused by export",
            setup: |home| {
                let app = app_with(home, &v2("[component.api]\nsource = \"app.wasm\"\n"));
                Ok(run(["export", "--skip-spin-build", "-f"])
                    .arg(app)
                    .env("SOURCE_DATE_EPOCH", "99999999999999"))
            },
            code: 2,
            says: &["SOURCE_DATE_EPOCH=`99999999999999`", "after 9999-12-31T23:59:59Z"],
        },
        Case {
            name: "SOURCE_DATE_EPOCH after 9999 is refused by publish",
            setup: |home| {
                let app = app_with(home, &v2("[component.api]\nsource = \"app.wasm\"\n"));
                let image = format!("localhost:1/app@sha256:{}", "a".repeat(64));
                Ok(run(["publish", "-f"])
                    .arg(app)
                    .args(["--image", &image])
                    .env("SOURCE_DATE_EPOCH", "18446744073709551615"))
            },
            code: 2,
            says: &["SOURCE_DATE_EPOCH=`18446744073709551615`", "after 9999-12-31T23:59:59Z"],
        },
        Case {
            name: "SOURCE_DATE_EPOCH at the last second of 9999 builds",
            setup: |home| Ok(build(home, &v2("[component.api]\nsource = \"app.wasm\"\n"))?
                .env("SOURCE_DATE_EPOCH", "253402300799")
                .writes()),
            code: 0,
            says: &[],
        },
        // ---------- #27: files others read are written readable ----------
        Case {
            name: "an OCI layout is readable by others as the umask allows",
            setup: |home| {
                let layout = home.join("app/.spin-aks/oci");
                Ok(build(home, &v2("[component.api]\nsource = \"app.wasm\"\n"))?
                    .writes()
                    .then(move |_| modes(&layout)))
            },
            code: 0,
            says: &[],
        },
        // ---------- #27: promote's source environment cannot be mistaken for --from ----------
        Case {
            name: "promote --from ENV is refused saying --from names the app",
            setup: |_| Ok(run(["promote", "--from", "staging", "--to", "prod"])),
            code: 2,
            says: &["`--from` names the app's manifest", "spin-aks promote staging --to prod"],
        },
        // ---------- #27: Kustomize roots, fleet add and up before writing, publish --dir ----------
        // What `kubectl kustomize` (kustomize v5.6.0, kubectl v1.33.9) answered for each case:
        // `resources: [../outside/x.yaml]`: "security; file '…/outside/x.yaml' is not in or below
        // '…/root'"; an absolute file outside the same; a link in the root to a file outside the
        // same ("file '…/root/link.yaml' is not in or below"); `patches: [{path: ../x}]`,
        // `patchesStrategicMerge`, `patchesJson6902` and `configurations` the same; an absolute
        // directory "new root '…' cannot be absolute"; `resources: [.]`, `[../root]`, root → b2 →
        // root and root → sub → `..`: "cycle detected: candidate root '…' contains visited root
        // '…'". Accepted: `../base` (a directory with its kustomization), a link to it, an
        // absolute file inside the root, `sub/../own.yaml`, and a diamond (two bases of one).
        Case {
            name: "a kustomization resource outside its directory is refused",
            setup: |home| kustomization(home, "resources: [app.yaml, ../outside/x.yaml]\n"),
            code: 2,
            says: &["`resources`", "`../outside/x.yaml`", "is outside"],
        },
        Case {
            name: "a kustomization resource by absolute path outside its directory is refused",
            setup: |home| {
                let outside = home.join(OUTSIDE.0);
                let text = format!("resources: [app.yaml, {}]\n", outside.display());
                Ok(kustomization(home, &text)?.says(outside.to_str().unwrap()))
            },
            code: 2,
            says: &["`resources`", "is outside"],
        },
        Case {
            name: "a kustomization resource linked to a file outside its directory is refused",
            setup: |home| {
                let run = kustomization(home, "resources: [app.yaml, link.yaml]\n")?;
                std::os::unix::fs::symlink(home.join(OUTSIDE.0), home.join("kust/link.yaml"))
                    .unwrap();
                Ok(run)
            },
            code: 2,
            says: &["`resources`", "`link.yaml`", "is outside"],
        },
        Case {
            name: "a kustomization resource that is an absolute directory is refused",
            setup: |home| {
                let text = format!(
                    "resources: [app.yaml, {}]\n",
                    home.join("outside").display()
                );
                kustomization(home, &text)
            },
            code: 2,
            says: &["`resources`", "absolute directory"],
        },
        Case {
            name: "a kustomization patch file outside its directory is refused",
            setup: |home| {
                kustomization(
                    home,
                    "resources: [app.yaml]\npatches:\n- path: ../outside/x.yaml\n",
                )
            },
            code: 2,
            says: &["`patches`", "`../outside/x.yaml`", "is outside"],
        },
        Case {
            name: "a kustomization strategic merge patch outside its directory is refused",
            setup: |home| {
                kustomization(
                    home,
                    "resources: [app.yaml]\npatchesStrategicMerge: [../outside/x.yaml]\n",
                )
            },
            code: 2,
            says: &[
                "`patchesStrategicMerge`",
                "`../outside/x.yaml`",
                "is outside",
            ],
        },
        Case {
            name: "a kustomization JSON 6902 patch outside its directory is refused",
            setup: |home| {
                kustomization(home, "resources: [app.yaml]\npatchesJson6902:\n- path: ../outside/x.yaml\n  target: {kind: SpinApp, name: bad}\n")
            },
            code: 2,
            says: &["`patchesJson6902`", "`../outside/x.yaml`", "is outside"],
        },
        Case {
            name: "a kustomization configurations file outside its directory is refused",
            setup: |home| {
                kustomization(
                    home,
                    "resources: [app.yaml]\nconfigurations: [../outside/x.yaml]\n",
                )
            },
            code: 2,
            says: &["`configurations`", "`../outside/x.yaml`", "is outside"],
        },
        Case {
            name: "a base's resource outside the base's directory is refused",
            setup: |home| {
                let base = ("base", "resources: [../outside/x.yaml]\n");
                kustomization_beside(home, "resources: [app.yaml, ../base]\n", Some(base))
            },
            code: 2,
            says: &["`resources`", "`../outside/x.yaml`", "is outside"],
        },
        Case {
            name: "a kustomization that includes itself is a cycle",
            setup: |home| kustomization(home, "resources: [app.yaml, .]\n"),
            code: 2,
            says: &["`resources`", "`.`", "makes a cycle"],
        },
        Case {
            name: "kustomizations including each other are a cycle",
            setup: |home| {
                let other = ("other", "resources: [../kust]\n");
                let run =
                    kustomization_beside(home, "resources: [app.yaml, ../other]\n", Some(other))?;
                let cycle = format!(
                    "{kust} → {other} → {kust}",
                    kust = home.join("kust").canonicalize().unwrap().display(),
                    other = home.join("other").canonicalize().unwrap().display()
                );
                Ok(run.says(cycle))
            },
            code: 2,
            says: &["`../kust` makes a cycle"],
        },
        Case {
            name: "publish --dir refuses the user's Secrets, naming each file and name",
            setup: |home| {
                let app = spinapp("bad");
                let secret = format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-password\nstringData:\n  password: {SECRET}\n");
                let run = publish_dir(
                    home,
                    &[("objs/app.yaml", &app), ("objs/secret.yaml", &secret)],
                    "objs",
                )?;
                Ok(run.says(home.join("objs/secret.yaml").to_str().unwrap()))
            },
            code: 2,
            says: &[
                "Secret `db-password`",
                "carries no Secrets",
                "fleet add --secret",
            ],
        },
        Case {
            name: "publish --dir refuses objects without a workload, naming the directory",
            setup: |home| {
                let run = publish_dir(home, &[OUTSIDE], "outside")?;
                Ok(run.says(home.join("outside").to_str().unwrap()))
            },
            code: 2,
            says: &["no SpinApp or Deployment"],
        },
        Case {
            name: "fleet add checks every context before it applies to any cluster",
            setup: fleet_add_unknown_context,
            code: 2,
            says: &["cluster `nosuchctx` is not in the kubeconfig; it has: good"],
        },
        Case {
            name: "up --publish reads the kubeconfig before it pushes anything",
            setup: |home| {
                let file = home.join("kubeconfig");
                Ok(up_publish(home, "{not: [a kubeconfig")?.says(file.to_str().unwrap()))
            },
            code: 2,
            says: &["--kubeconfig"],
        },
        Case {
            name: "up --publish checks the context before it pushes anything",
            setup: |home| {
                let kubeconfig = kubeconfig_good(home, "https://127.0.0.1:1");
                let text = std::fs::read_to_string(kubeconfig).unwrap();
                Ok(up_publish(home, &text)?.arg("--context").arg("nosuchctx"))
            },
            code: 2,
            says: &["--context `nosuchctx` is not in the kubeconfig; it has: good"],
        },
        Case {
            name: "up --publish checks --dir before it pushes anything",
            setup: |home| {
                let kubeconfig = kubeconfig_good(home, "https://127.0.0.1:1");
                let text = std::fs::read_to_string(kubeconfig).unwrap();
                let objects = home.join("objs");
                std::fs::create_dir(&objects).unwrap();
                std::fs::write(objects.join("cm.yaml"), OUTSIDE.1).unwrap();
                Ok(up_publish(home, &text)?
                    .arg("--dir")
                    .arg(&objects)
                    .says(objects.to_str().unwrap()))
            },
            code: 2,
            says: &["no SpinApp or Deployment"],
        },
        // ---------- #27: component sources and dependencies ----------
        // Spin's URL forms: a source `{ url, digest }` and a dependency's HTTP variant (crates/
        // manifest/src/schema/v2.rs:298-310@v4.0.2), both verified by digest as they download
        // (crates/loader/src/http.rs:58-62@v4.0.2). Spin trusts a cache hit as it is
        // (crates/loader/src/local.rs:729@v4.0.2); spin-aks hashes it again.
        Case {
            name: "a URL source whose server never answers fails after the idle timeout",
            setup: |home| stalled(home, false),
            code: 1,
            says: &["component `api`", "sent nothing for 2 s", "re-run to retry"],
        },
        Case {
            name: "a URL dependency whose server never answers fails after the idle timeout",
            setup: |home| stalled(home, true),
            code: 1,
            says: &[
                "dependency `a:b/c`",
                "sent nothing for 2 s",
                "re-run to retry",
            ],
        },
        Case {
            name: "a replaced cache file is hashed again, dropped and downloaded anew",
            setup: |home| {
                let bytes = wasm(6);
                let hex = sha256(&bytes);
                let url = serve_bytes(bytes.clone(), 1, "app.wasm");
                let cache = home.join("cache/wasm");
                std::fs::create_dir_all(&cache).unwrap();
                let replaced = wasm(7);
                std::fs::write(cache.join(&hex), &replaced).unwrap();
                let app = home.join("app");
                let cached = cache.join(&hex);
                let replaced_hex = sha256(&replaced);
                Ok(url_source(home, &url, &format!("sha256:{hex}"))?
                    .writes()
                    .says("downloaded again")
                    .then(move |_| {
                        let blobs = app.join(".spin-aks/oci/blobs/sha256");
                        let mut problems = Vec::new();
                        if std::fs::read(&cached).ok() != Some(bytes.clone()) {
                            problems.push("the cache does not hold the pinned bytes again".into());
                        }
                        if !blobs.join(&hex).is_file() {
                            problems.push("the image lacks the pinned wasm".into());
                        }
                        if blobs.join(&replaced_hex).exists() {
                            problems.push("the image holds the replaced cache file".into());
                        }
                        problems
                    }))
            },
            code: 0,
            says: &["component `api`", "not the pinned"],
        },
        Case {
            name: "a URL source's password and query token are never echoed",
            setup: |home| secret_url(home, false),
            code: 1,
            says: &["component `api`", "cannot download", "re-run to retry"],
        },
        Case {
            name: "a URL dependency's password and query token are never echoed",
            setup: |home| secret_url(home, true),
            code: 1,
            says: &["dependency `a:b/c`", "cannot download", "re-run to retry"],
        },
        Case {
            name: "a URL source that is not http(s) is refused without its password",
            setup: |home| url_source(home, "ftp://user:hunter2@example.com/x.wasm", &any_digest()),
            code: 2,
            says: &[
                "`component.api.source.url`",
                "`ftp://***@example.com/x.wasm` is not an http(s) URL",
            ],
        },
        Case {
            name: "a URL dependency that is not http(s) is refused without its password",
            setup: |home| {
                url_dependency(home, "ftp://user:hunter2@example.com/x.wasm", &any_digest())
            },
            code: 2,
            says: &["`ftp://***@example.com/x.wasm` is not an http(s) URL"],
        },
        Case {
            name: "a URL source that is not wasm is named by its URL",
            setup: |home| not_wasm_download(home, false),
            code: 2,
            says: &["component `api`"],
        },
        Case {
            name: "a URL dependency that is not wasm is named by its URL",
            setup: |home| not_wasm_download(home, true),
            code: 2,
            says: &["component `api`, dependency `a:b/c`"],
        },
        Case {
            name: "a Dockerfile's warning about a URL source and dependency hides their passwords",
            setup: |home| {
                let url = "https://user:hunter2@example.com/x.wasm?sig=hunter2";
                let manifest = v2(&format!(
                    "[component.api]\nsource = {{ url = \"{url}\", digest = \"{}\" }}\n[component.api.dependencies]\n\"a:b/c\" = {{ url = \"{url}\", digest = \"{}\" }}\n",
                    any_digest(),
                    any_digest()
                ));
                let app = app_with(home, &manifest);
                Ok(run([
                    "scaffold",
                    "-y",
                    "--dockerfile",
                    "--image",
                    "example.com/app:1",
                    "-f",
                ])
                .arg(app)
                .env("KUBECONFIG", "/nonexistent/kubeconfig")
                .writes())
            },
            code: 0,
            says: &[
                "has a remote source (https://***@example.com/x.wasm?sig=***)",
                "dependency `a:b/c` is remote (https://***@example.com/x.wasm?sig=***)",
            ],
        },
        // A dependency `path` is joined to the app directory and may lie outside it, even be
        // absolute (v2.rs:273-279, crates/loader/src/local.rs:896-899@v4.0.2); a `source` must
        // stay inside, links followed.
        Case {
            name: "a source linked to /dev/zero is named a character device",
            setup: |home| {
                app_link(
                    home,
                    &v2("[component.api]\nsource = \"z.wasm\"\n"),
                    "z.wasm",
                    "/dev/zero",
                )
            },
            code: 2,
            says: &[
                "`component.api.source`",
                "z.wasm (a link to /dev/zero) is a character device, not a wasm file",
            ],
        },
        Case {
            name: "a source naming a directory is named a directory",
            setup: |home| app_dir(home, &v2("[component.api]\nsource = \"sub\"\n")),
            code: 2,
            says: &[
                "`component.api.source`",
                ": sub is a directory, not a wasm file",
            ],
        },
        Case {
            name: "a dependency path /dev/zero is named a character device, with one leading slash",
            setup: |home| Ok(with_dependency(home, "{ path = \"/dev/zero\" }")?.hides("//dev/zero")),
            code: 2,
            says: &[
                "`component.api.dependencies.\"a:b/c\".path`",
                ": /dev/zero is a character device, not a wasm file",
            ],
        },
        Case {
            name: "a dependency path naming a directory is named a directory",
            setup: |home| {
                let manifest = v2("[component.api]\nsource = \"app.wasm\"\n[component.api.dependencies]\n\"a:b/c\" = { path = \"sub\" }\n");
                app_dir(home, &manifest)
            },
            code: 2,
            says: &[
                "`component.api.dependencies.\"a:b/c\".path`",
                ": sub is a directory, not a wasm file",
            ],
        },
        Case {
            name: "a files source linked to /dev/zero is named a character device",
            setup: |home| {
                let manifest = v2("[component.api]\nsource = \"app.wasm\"\nfiles = [{ source = \"z\", destination = \"/z\" }]\n");
                app_link(home, &manifest, "z", "/dev/zero")
            },
            code: 2,
            says: &[
                "`component.api.files[0]`",
                "source `z` (a link to /dev/zero) is a character device, not a file or directory",
            ],
        },
        Case {
            name: "a files path linked to /dev/zero is named a character device",
            setup: |home| {
                let manifest = v2("[component.api]\nsource = \"app.wasm\"\nfiles = [\"z\"]\n");
                app_link(home, &manifest, "z", "/dev/zero")
            },
            code: 2,
            says: &[
                "`component.api.files[0]`",
                "`z` (a link to /dev/zero) is a character device, not a file or directory",
            ],
        },
        // ---------- #27: ARM names, CI request URLs, a failing ARM ----------
        Case {
            name: "fleet add aks: with `..` for a resource group is refused before ARM",
            setup: |home| fleet_add(home, &format!("aks:{ARM_SUB}/../x")),
            code: 2,
            says: &["resource group \"..\"", "a resource group name has 1 to 90"],
        },
        Case {
            name: "fleet add aks: with a query in the cluster name is refused before ARM",
            setup: |home| fleet_add(home, &format!("aks:{ARM_SUB}/rg/name?x=1")),
            code: 2,
            says: &[
                "AKS cluster \"name?x=1\"",
                "an AKS cluster name has 1 to 63",
            ],
        },
        Case {
            name: "fleet add aks: with a fragment in the cluster name is refused before ARM",
            setup: |home| fleet_add(home, &format!("aks:{ARM_SUB}/rg/a#b")),
            code: 2,
            says: &["AKS cluster \"a#b\"", "an AKS cluster name has 1 to 63"],
        },
        Case {
            name: "fleet add aks: with a subscription that is not a GUID is refused before ARM",
            setup: |home| fleet_add(home, "aks:sub/rg/x"),
            code: 2,
            says: &["subscription \"sub\"", "a subscription id is a GUID"],
        },
        Case {
            name: "--subscription that is not a GUID is refused before ARM",
            setup: |home| Ok(aks_status(home, &["--subscription", "my-subscription"]).within(10)),
            code: 2,
            says: &[
                "'my-subscription'",
                "--subscription",
                "a subscription id is a GUID",
            ],
        },
        Case {
            name: "cluster install --resource-group .. is refused before ARM",
            setup: |home| {
                let args = ["cluster", "install", "--subscription", ARM_SUB];
                let args = [&args[..], &["--resource-group", "..", "--cluster", "aks1"]].concat();
                Ok(refused_before_arm(home, &args).within(10))
            },
            code: 2,
            says: &[
                "'..'",
                "--resource-group",
                "a resource group name has 1 to 90",
            ],
        },
        Case {
            name: "status --resource-group with a query is refused before ARM",
            setup: |home| Ok(aks_status(home, &["--resource-group", "rg?api-version=1"]).within(10)),
            code: 2,
            says: &[
                "'rg?api-version=1'",
                "--resource-group",
                "a resource group name",
            ],
        },
        Case {
            name: "status --cluster with a path is refused before ARM",
            setup: |home| Ok(aks_status(home, &["--cluster", "../../x"]).within(10)),
            code: 2,
            says: &["'../../x'", "--cluster", "an AKS cluster name"],
        },
        Case {
            name: "an ARM answering 500 (Retry-After: 20) fails in time, naming the request",
            setup: |home| {
                let args = ["status", "--subscription", ARM_SUB];
                let args = [&args[..], &["--resource-group", "rg", "--cluster", "aks1"]].concat();
                let failing = "500 Internal Server Error";
                let (run, _) = against_arm(home, failing, "Retry-After: 20\r\n", &args);
                Ok(run.env_remove("SPIN_AKS_ARM_DELAY_SCALE").within(40))
            },
            code: 1,
            says: &[
                "HTTP 500",
                "Encountered internal server error.",
                "[GET http://127.0.0.1:",
                "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1]",
                "attempts over",
                "a re-run continues",
            ],
        },
        Case {
            name: "a GitHub Actions token request URL over plain http: refused, the token not sent",
            setup: |home| {
                let url = "http://example.invalid:9/token?api-version=2.0";
                ci_over_http(
                    home,
                    &[
                        ("ACTIONS_ID_TOKEN_REQUEST_URL", url),
                        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", SECRET),
                    ],
                )
            },
            code: 2,
            says: &[
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                "must be https://",
                "nothing was sent",
            ],
        },
        Case {
            name:
                "an Azure Pipelines OIDC request URI over plain http: refused, the token not sent",
            setup: |home| {
                let connection = "5a6b7c8d-0000-4000-8000-00000000c0c0";
                ci_over_http(
                    home,
                    &[
                        (
                            "SYSTEM_OIDCREQUESTURI",
                            "http://example.invalid:9/oidctoken",
                        ),
                        ("SYSTEM_ACCESSTOKEN", SECRET),
                        ("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", connection),
                    ],
                )
            },
            code: 2,
            says: &[
                "SYSTEM_OIDCREQUESTURI",
                "must be https://",
                "nothing was sent",
            ],
        },
        // ---------- #28: verify ----------
        Case {
            name: "up --verify without a trust cert is refused before anything is built or pushed",
            setup: |home| {
                let app = app_with(home, &v2("[component.api]\nsource = \"app.wasm\"\n"));
                Ok(no_cluster(home, ["up", "127.0.0.1:1/a:1", "--verify"]).arg("-f").arg(app))
            },
            code: 2,
            says: &["--verify needs the certificates to trust", "give --trust-cert FILE"],
        },
        Case {
            name: "apply --verify without a trust cert is refused before the cluster is reached",
            setup: |home| {
                let app = app_with(home, &v2("[component.api]\nsource = \"app.wasm\"\n"));
                let image = format!("127.0.0.1:1/a@sha256:{}", "0".repeat(64));
                Ok(no_cluster(home, ["apply", "--verify"]).arg("-f").arg(app).args(["--image", &image]))
            },
            code: 2,
            says: &["--verify needs the certificates to trust", "give --trust-cert FILE"],
        },
        Case {
            name: "up --trust-cert without --verify asks for --verify",
            setup: |home| {
                let app = app_with(home, &v2("[component.api]\nsource = \"app.wasm\"\n"));
                Ok(no_cluster(home, ["up", "--trust-cert", "root.pem"]).arg("-f").arg(app))
            },
            code: 2,
            says: &["--trust-cert and --subject say what --verify trusts: add --verify"],
        },
        Case {
            name: "verify without a trust cert names --trust-cert",
            setup: |_| Ok(run(["verify", "127.0.0.1:1/a:1"])),
            code: 2,
            says: &["verify needs the certificates to trust", "--trust-cert FILE"],
        },
        Case {
            name: "verify --subject that is not Notation's x509.subject names the flag and the fix",
            setup: |_| Ok(run(["verify", "127.0.0.1:1/a:1", "--trust-cert", "r.pem", "--subject", "CN=signer"])),
            code: 2,
            says: &["invalid --subject", "\"CN=signer\" has no C", "C=US,ST=WA,O=Example"],
        },
        Case {
            name: "verify --trust-cert holding no certificate names the file",
            setup: |home| {
                let file = home.join("root.pem");
                std::fs::write(&file, "not a certificate").unwrap();
                let named = file.to_str().unwrap().to_string();
                Ok(run(["verify", "127.0.0.1:1/a:1", "--trust-cert"]).arg(file).says(named))
            },
            code: 2,
            says: &["the --trust-cert", NO_CERTIFICATE, "root or intermediate CA"],
        },
        // ---------- #28: signing keys, refused before anything is built or pushed ----------
        Case {
            name: "push --sign with a file that holds no key names the file",
            setup: |home| {
                std::fs::write(home.join("key.pem"), "not a key").unwrap();
                signed_push(home, "key.pem", None)
            },
            code: 2,
            says: &["key.pem", "private key"],
        },
        Case {
            name: "push --sign with a key that does not exist says so",
            setup: |home| signed_push(home, "nokey.pem", None),
            code: 2,
            says: &["--sign", "nokey.pem", "does not exist"],
        },
        Case {
            name: "push --sign with a chain of another key is refused",
            setup: |home| {
                pki(home, KeyKind::P256, &[]);
                let other = test_pki::make("other root", &Leaf::new(KeyKind::P256));
                std::fs::write(home.join("chain.pem"), other.chain_pem).unwrap();
                signed_push(home, "key.pem", Some("chain.pem"))
            },
            code: 2,
            says: &["chain.pem", "is not the certificate of the key", "key.pem"],
        },
        Case {
            name: "push --sign with a certificate without the code-signing EKU is refused",
            setup: |home| {
                pki(home, KeyKind::Rsa2048, &[rcgen::ExtendedKeyUsagePurpose::ServerAuth]);
                signed_push(home, "key.pem", Some("chain.pem"))
            },
            code: 2,
            says: &["chain.pem", "cannot sign"],
        },
        // ---------- #28: fleet add --verify ----------
        Case {
            name: "fleet add --verify without a trust cert is refused before any cluster is reached",
            setup: |home| {
                let app = app_with(home, &v2("[component.api]\nsource = \"app.wasm\"\n"));
                Ok(no_cluster(home, ["fleet", "add", "c", "--verify"]).arg("-f").arg(app))
            },
            code: 2,
            says: &["--verify needs the certificates to trust", "give --trust-cert FILE"],
        },
        Case {
            name: "fleet add --trust-cert without --verify asks for --verify",
            setup: |home| {
                let app = app_with(home, &v2("[component.api]\nsource = \"app.wasm\"\n"));
                Ok(no_cluster(home, ["fleet", "add", "c", "--trust-cert", "root.pem"]).arg("-f").arg(app))
            },
            code: 2,
            says: &["--trust-cert and --subject say what --verify trusts: add --verify"],
        },
        Case {
            name: "fleet add --verify of an aks: cluster is refused before ARM: its Flux extension verifies cosign keys only",
            setup: |home| {
                let args = ["fleet", "add", "aks:rg/aks1", "--verify", "--trust-cert", "root.pem"];
                Ok(refused_before_arm(home, &args).within(10))
            },
            code: 2,
            says: &["--verify: aks:rg/aks1 cannot verify", "cosign public keys only", "--no-verify"],
        },
        Case {
            name: "fleet add of an aks: cluster for an app that remembers --verify is refused before ARM",
            setup: |home| {
                let run = refused_before_arm(home, &["fleet", "add", "aks:rg/aks1"]);
                let manifest = std::fs::canonicalize(home.join("app/spin.toml")).unwrap();
                let state = serde_json::json!({"version": 1, "apps": {manifest.to_str().unwrap(): {
                    "verify": {"trust_certs": [home.join("root.pem")]}}}});
                std::fs::write(home.join("state"), state.to_string()).unwrap();
                Ok(run.within(10))
            },
            code: 2,
            says: &["remembered from an earlier --verify", "aks:rg/aks1 cannot verify", "--no-verify"],
        },
        // ---------- #31: dev ----------
        Case {
            name: "dev --debounce of zero",
            setup: |_| Ok(run(["dev", "--debounce", "0s"])),
            code: 2,
            says: &["--debounce", "`0s`", "more than 0 and at most 10s"],
        },
        Case {
            name: "dev --debounce that is no duration",
            setup: |_| Ok(run(["dev", "--debounce", "soon"])),
            code: 2,
            says: &["--debounce", "`soon`"],
        },
        Case {
            name: "dev --no-wait is refused before the app is read or anything sent",
            setup: |home| {
                let app = app_with(home, &v2("[component.api]\nsource = \"app.wasm\"\n"));
                Ok(run(["dev", "--no-wait", "-f"]).arg(app))
            },
            code: 2,
            says: &["dev", "no --no-wait", "drop --no-wait"],
        },
        Case {
            name: "dev --publish is refused",
            setup: |_| Ok(run(["dev", "--publish"])),
            code: 2,
            says: &["no --publish", "spin-aks up"],
        },
        // ---------- #28: Key Vault PKCS#12 ----------
        Case {
            name: "push --sign with a Key Vault certificate whose PKCS#12 backing secret is no PFX names the key and --sign-cert",
            // The base64 of PEM text, under the content type application/x-pkcs12.
            setup: |home| pkcs12_push(home, |pki| pki.chain_pem.clone().into_bytes()),
            code: 2,
            says: &["(application/x-pkcs12) is not a PKCS#12 file", "give the chain as PEM with --sign-cert"],
        },
        Case {
            name: "push --sign with a Key Vault certificate whose PKCS#12 backing secret fails its MAC names the key and --sign-cert",
            // A PFX exported with a password (the SECRET): its MAC fails with the empty one.
            setup: |home| {
                pkcs12_push(home, |pki| keyvault::pkcs12(&pki.key_pem, &pki.chain_pem, PfxEncryption::Aes, SECRET))
            },
            code: 2,
            says: &["MAC that does not match the empty password", "give the chain as PEM with --sign-cert"],
        },
        // ---------- #29: the air-gap bundle ----------
        Case {
            name: "bundle create --arch that no AKS node has is refused before anything is fetched",
            setup: |home| Ok(run(["bundle", "create", "-o"]).arg(home.join("b.tar")).args(["--arch", "amd64,s390x"])),
            code: 2,
            says: &["--arch `s390x`", "amd64 and/or arm64"],
        },
        Case {
            name: "bundle create for a chart version whose images spin-aks does not know names the versions it knows",
            setup: |home| Ok(run(["bundle", "create", "-o"]).arg(home.join("b.tar")).args(["--cert-manager-version", "1.21.0"])),
            code: 2,
            says: &["--cert-manager-version v1.21.0", "knows which images cert-manager runs at v1.20.0"],
        },
        Case {
            name: "bundle create --module-proxy that is not https is refused without echoing its login",
            setup: |home| Ok(run(["bundle", "create", "-o"]).arg(home.join("b.tar")).args(["--module-proxy", "ftp://user:hunter2@example.com/proxy"])),
            code: 2,
            says: &["--module-proxy", "ftp://***@example.com/proxy", "must be https://"],
        },
        Case {
            name: "bundle create --shim-base-url with a query, a fragment or a newline is refused without echoing a login",
            setup: |home| {
                Ok(run(["bundle", "create", "-o"]).arg(home.join("b.tar")).args(["--shim-base-url", "https://user:hunter2@example.com/shim?x=1"]))
            },
            code: 2,
            says: &["--shim-base-url", "https://***@example.com/shim", "without `?`, `#`"],
        },
        Case {
            name: "bundle create --module-proxy with a newline inside is refused",
            setup: |home| {
                Ok(run(["bundle", "create", "-o"]).arg(home.join("b.tar")).args(["--module-proxy", "https://proxy.example.com/a\nb#frag"]))
            },
            code: 2,
            says: &["--module-proxy", "control characters"],
        },
        Case {
            name: "bundle create --shim-base-url over plain http to another host is refused",
            setup: |home| Ok(run(["bundle", "create", "-o"]).arg(home.join("b.tar")).args(["--shim-base-url", "http://example.com/shim"])),
            code: 2,
            says: &["--shim-base-url", "must be https://"],
        },
        Case {
            name: "bundle create -o onto a file that is no bundle leaves it as it was",
            setup: |home| {
                let file = home.join("notes.txt");
                std::fs::write(&file, "mine").unwrap();
                Ok(run(["bundle", "create", "--module-proxy", "http://127.0.0.1:9", "-o"]).arg(&file).then(move |_| {
                    match std::fs::read_to_string(&file).ok().as_deref() {
                        Some("mine") => Vec::new(),
                        other => vec![format!("the file was changed: {other:?}")],
                    }
                }))
            },
            code: 2,
            says: &["notes.txt", "not an oci-archive spin-aks wrote", "name another file"],
        },
        Case {
            name: "bundle create --registries-conf in the version 1 format names the file and the table",
            setup: |home| {
                let conf = home.join("registries.conf");
                std::fs::write(&conf, "[registries.search]\nregistries = ['quay.io']\n").unwrap();
                Ok(run(["bundle", "create", "-o"]).arg(home.join("b.tar")).arg("--registries-conf").arg(conf))
            },
            code: 2,
            says: &["registries.conf", "registries.search"],
        },
        Case {
            name: "bundle push --digest that is no digest is refused",
            setup: |home| {
                let file = home.join("b.tar");
                std::fs::write(&file, "").unwrap();
                Ok(run(["bundle", "push"]).arg(file).args(["127.0.0.1:9/mirror", "--digest", "sha256:xyz"]))
            },
            code: 2,
            says: &["--digest `sha256:xyz` is not a digest"],
        },
        Case {
            name: "bundle push to a registry with credentials is refused without echoing them",
            setup: |home| {
                let file = home.join("b.tar");
                std::fs::write(&file, "").unwrap();
                Ok(run(["bundle", "push"]).arg(file).arg("user:hunter2@example.com/mirror"))
            },
            code: 2,
            says: &["REGISTRY", "credentials do not belong in a reference"],
        },
        Case {
            name: "bundle push of a file that is no bundle loads nothing",
            setup: |home| {
                let file = home.join("b.tar");
                std::fs::write(&file, "not a tar at all, and long enough to be read as one").unwrap();
                Ok(run(["bundle", "push"]).arg(file).arg(format!("{}/mirror", closed_port())))
            },
            code: 2,
            says: &["b.tar"],
        },
        Case {
            name: "cluster install --mirror with credentials is refused without echoing them",
            setup: |home| Ok(no_cluster(home, ["cluster", "install", "--mirror", "user:hunter2@example.com/mirror"])),
            code: 2,
            says: &["--mirror", "credentials do not belong in a reference"],
        },
        Case {
            name: "cluster install --mirror with --chart-registry is refused: the mirror holds the charts",
            setup: |home| Ok(no_cluster(home, ["cluster", "install", "--mirror", "example.com/m", "--chart-registry", "example.com/c"])),
            code: 2,
            says: &["--mirror", "--chart-registry"],
        },
        // ---------- #29: fleet add --mirror ----------
        Case {
            name: "fleet add --mirror with credentials is refused without echoing them, before any cluster",
            setup: fleet_add_mirror_with_credentials,
            code: 2,
            says: &["--mirror", "credentials do not belong in a reference"],
        },
        // ---------- #30: settings made by the CLI ----------
        Case {
            name: "export --with-deploy refuses a --sqlite store without its libsql token before building",
            setup: |home| {
                let app = app_with(home, &v2("[component.api]\nsource = \"app.wasm\"\n"));
                Ok(run(["export", "--skip-spin-build", "--with-deploy", "example.com/app"])
                    .args(["--sqlite", "orders=libsql:https://db.example.com", "-f"])
                    .arg(app)
                    .env_remove("SPIN_AKS_LIBSQL_TOKEN_ORDERS"))
            },
            code: 2,
            says: &["--sqlite orders", "SPIN_AKS_LIBSQL_TOKEN_ORDERS"],
        },
    ]
}

/// `fleet add good --mirror user:SECRET@…` of an app whose deploy artifact is published, with
/// `good` at a port that counts connections: none may arrive.
fn fleet_add_mirror_with_credentials(home: &Path) -> Setup {
    let app = published_app(home);
    let (address, none_arrived) = counting_port();
    let kubeconfig = kubeconfig_good(home, &format!("https://{address}"));
    let mirror = format!("user:{SECRET}@example.com/mirror");
    Ok(run(["fleet", "add", "good", "--mirror", &mirror, "-f"])
        .arg(app)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .within(20)
        .hides(KUBE_TOKEN)
        .then(none_arrived))
}

/// An app in a git repository with one commit whose `origin` is `remote`; the arguments start
/// with `-f <app>`.
fn git_app(home: &Path, remote: &str) -> Setup {
    if support::tool("git").is_none() {
        return Err("git is not installed");
    }
    let app = app_with(home, &v2("[component.api]\nsource = \"app.wasm\"\n"));
    let git = |args: &[&str]| {
        support::run_ok(
            std::process::Command::new("git")
                .arg("-C")
                .arg(&app)
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args),
        )
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "app"]);
    git(&["remote", "add", "origin", remote]);
    Ok(run(["-f"]).arg(app))
}

/// `args` with a kubeconfig naming a closed port: a refusal must come before any connection.
fn no_cluster<const N: usize>(home: &Path, args: [&str; N]) -> Run {
    let kubeconfig = home.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://{}\n\
             contexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n\
             users:\n- name: u\n  user: {{token: abc}}\n",
            closed_port()
        ),
    )
    .unwrap();
    run(args).arg("--kubeconfig").arg(kubeconfig).within(20)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Problems with the lines of `stream` that GitHub's runner would read as workflow commands
/// (`::` at a line's start once trimmed, or `##[` anywhere): there must be exactly `expected`,
/// each starting with `ours`.
fn workflow_commands(stream: &[u8], ours: &str, expected: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(stream);
    let commands: Vec<&str> = text
        .lines()
        .filter(|line| line.trim_start().starts_with("::") || line.contains("##["))
        .collect();
    let mut problems = Vec::new();
    if commands.len() != expected || commands.iter().any(|line| !line.starts_with(ours)) {
        problems.push(format!("workflow commands printed: {commands:?}"));
    }
    problems
}

/// Problems with the modes of the layout's files: 0666 less this process's umask, which the
/// binary inherits.
fn modes(layout: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    };
    let umask = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Umask:"))
                .map(|l| l[6..].trim().to_string())
        })
        .and_then(|m| u32::from_str_radix(&m, 8).ok())
        .unwrap_or(0o022);
    let mut problems = Vec::new();
    let files = walkdir::WalkDir::new(layout)
        .into_iter()
        .filter_map(Result::ok);
    for file in files.filter(|e| e.file_type().is_file()) {
        let name = file.path().strip_prefix(layout).unwrap().to_path_buf();
        if name.starts_with("oci.lock") || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if mode(file.path()) != 0o666 & !umask {
            problems.push(format!("{name:?} has mode {:o}", mode(file.path())));
        }
    }
    if mode(&layout.join("index.json")) == 0 {
        problems.push(format!("no index.json in {layout:?}"));
    }
    problems
}

/// Runs every case (a few at a time, each in a home of its own) and reports every case that
/// fails, by name, with what was wrong.
#[test]
fn every_bad_input_is_refused_naming_what_to_fix_and_writes_nothing() {
    let cases = cases();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let outcomes = std::sync::Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                let outcome = std::panic::catch_unwind(|| check(case))
                    .unwrap_or_else(|panic| Err(vec![format!("panicked: {}", panic_text(&panic))]));
                outcomes.lock().unwrap().push((case.name, outcome));
            });
        }
    });
    let mut failed = Vec::new();
    for (name, outcome) in outcomes.into_inner().unwrap() {
        match outcome {
            Ok(Some(why)) => support::skip(&format!("case `{name}`: {why}")),
            Ok(None) => {}
            Err(problems) => failed.push(format!("`{name}`:\n  {}", problems.join("\n  "))),
        }
    }
    failed.sort();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}

/// Sets up and runs one case: `Ok(None)` when it passed, `Ok(Some(why))` when it cannot run here,
/// `Err(problems)` otherwise.
fn check(case: &Case) -> Result<Option<&'static str>, Vec<String>> {
    let home = tempfile::tempdir().unwrap();
    let run = match (case.setup)(home.path()) {
        Ok(run) => run,
        Err(why) => return Ok(Some(why)),
    };
    let before = tree(home.path());
    let mut cmd = support::spin_aks_std(home.path());
    for (name, value) in &run.env {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    cmd.args(&run.args);
    let started = std::time::Instant::now();
    let output = output_within(cmd, run.stdout, run.within);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut problems = Vec::new();
    if started.elapsed().as_secs() >= run.within {
        problems.push(format!("still running after {} s", run.within));
    }
    if output.status.code() != Some(case.code) {
        problems.push(format!(
            "exit {:?}, expected {}",
            output.status.code(),
            case.code
        ));
    }
    let says = case
        .says
        .iter()
        .copied()
        .chain(run.says.iter().map(String::as_str));
    for fragment in says {
        if !stderr.contains(fragment) {
            problems.push(format!("stderr lacks `{fragment}`"));
        }
    }
    for hidden in std::iter::once(SECRET).chain(run.hides.iter().map(String::as_str)) {
        if stderr.contains(hidden) || stdout.contains(hidden) {
            problems.push(format!("the output repeats `{}`", hidden.escape_debug()));
        }
    }
    if stderr.len() >= 1000 {
        problems.push(format!("{} bytes of stderr", stderr.len()));
    }
    if case.code != 0 && !output.stdout.is_empty() {
        problems.push(format!("stdout: {stdout}"));
    }
    if let Some(then) = &run.then {
        problems.extend(then(&output));
    }
    // Allowed: the state file's lock (empty, beside it) and directories (a file in one shows).
    let after = tree(home.path());
    let lock = (PathBuf::from("state.lock"), format!("file {}", sha256(b"")));
    let gone = before.iter().filter(|e| !after.contains(e));
    let new = after.iter().filter(|e| !before.contains(e) && **e != lock);
    if !run.writes {
        for (path, what) in gone {
            problems.push(format!("{path:?} ({what}) was changed or removed"));
        }
        for (path, what) in new.filter(|(_, what)| what != "directory") {
            problems.push(format!("{path:?} ({what}) was written"));
        }
    }
    if problems.is_empty() {
        return Ok(None);
    }
    problems.push(format!("stderr: {stderr}"));
    Err(problems)
}

/// Runs `cmd` with no stdin, stdout as `stdout` says and stderr captured, killed after `secs`.
fn output_within(
    mut cmd: std::process::Command,
    stdout: Stdout,
    secs: u64,
) -> std::process::Output {
    use std::process::Stdio;
    cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    // The read end of a closed pipe is dropped before the run: the binary's writes meet EPIPE.
    match stdout {
        Stdout::Captured => cmd.stdout(Stdio::piped()),
        Stdout::Full => cmd.stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .expect("/dev/full"),
        ),
        Stdout::Closed => {
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            cmd.stdout(writer)
        }
    };
    let mut child = cmd.spawn().expect("the spin-aks binary runs");
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let out = read(child.stdout.take().map(|p| Box::new(p) as _));
    let err = read(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// What is under `dir`, without following links or opening anything but regular files: each
/// path with its kind and (regular files) contents, (links) target.
fn tree(dir: &Path) -> Vec<(PathBuf, String)> {
    use std::os::unix::fs::FileTypeExt;
    let mut entries = Vec::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let kind = entry.file_type();
        let what = if kind.is_file() {
            format!("file {}", sha256(&std::fs::read(entry.path()).unwrap()))
        } else if kind.is_symlink() {
            format!("link to {:?}", std::fs::read_link(entry.path()).unwrap())
        } else if kind.is_dir() {
            "directory".to_string()
        } else if kind.is_fifo() {
            "fifo".to_string()
        } else if kind.is_char_device() {
            "character device".to_string()
        } else {
            format!("{kind:?}")
        };
        entries.push((entry.path().strip_prefix(dir).unwrap().to_path_buf(), what));
    }
    entries
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

// ---------- cases of another shape ----------

#[test]
fn symlinks_inside_the_app_are_followed() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(
        home.path(),
        &v2("[component.api]\nsource = \"app.wasm\"\nfiles = [\"static/*\"]\n"),
    );
    std::fs::create_dir_all(app.join("static")).unwrap();
    std::fs::write(app.join("real.txt"), "x".repeat(300)).unwrap();
    std::os::unix::fs::symlink(app.join("real.txt"), app.join("static/link.txt")).unwrap();
    spin_aks(home.path())
        .args(["build", "-f"])
        .arg(&app)
        .assert()
        .success();
}

#[test]
fn a_glob_matching_nothing_is_a_warning_not_an_error() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(
        home.path(),
        &v2("[component.api]\nsource = \"app.wasm\"\nfiles = [\"nothing/**/*.txt\"]\n"),
    );
    let output = spin_aks(home.path())
        .args(["--output", "json", "build", "-f"])
        .arg(&app)
        .output()
        .unwrap();
    assert!(output.status.success());
    let report = support::json_stdout(&output);
    assert!(
        report["warnings"][0]
            .as_str()
            .unwrap()
            .contains("`nothing/**/*.txt` matches no file"),
        "{report}"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("matches no file"));
}

#[test]
fn a_url_source_is_downloaded_once_and_cached() {
    use sha2::Digest;
    let home = tempfile::tempdir().unwrap();
    let bytes = wasm(6);
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
    let url = serve_bytes(bytes.clone(), 1, "app.wasm");
    let app = app_with(
        home.path(),
        &v2(&format!(
            "[component.api]\nsource = {{ url = \"{url}\", digest = \"{digest}\" }}\n"
        )),
    );
    spin_aks(home.path())
        .args(["build", "-f"])
        .arg(&app)
        .assert()
        .success();
    assert_eq!(
        std::fs::read(home.path().join("cache/wasm").join(&digest[7..])).unwrap(),
        bytes
    );
    // The server answered once; a second build must come from the cache.
    spin_aks(home.path())
        .args(["build", "-f"])
        .arg(&app)
        .assert()
        .success();
}

/// The download timeout is an idle one: a server that sends a little every second for 4 s passes
/// a 2 s idle timeout (a total timeout would cut it).
#[test]
fn a_slow_download_that_keeps_sending_is_not_cut() {
    let home = tempfile::tempdir().unwrap();
    let bytes = wasm(8);
    let digest = format!("sha256:{}", sha256(&bytes));
    let url = support::serve_slowly(
        bytes.clone(),
        4,
        std::time::Duration::from_secs(1),
        "slow.wasm",
    );
    let app = app_with(
        home.path(),
        &v2(&format!(
            "[component.api]\nsource = {{ url = \"{url}\", digest = \"{digest}\" }}\n"
        )),
    );
    let started = std::time::Instant::now();
    spin_aks(home.path())
        .env("SPIN_AKS_DOWNLOAD_IDLE_SECONDS", "2")
        .args(["build", "--skip-spin-build", "-f"])
        .arg(&app)
        .assert()
        .success();
    assert!(started.elapsed().as_secs() >= 3, "the server sends for 4 s");
    assert_eq!(
        std::fs::read(home.path().join("cache/wasm").join(&digest[7..])).unwrap(),
        bytes
    );
}

/// `export`'s default archive is named after the app, made a file name: whatever the name holds
/// (`..`, `/`, an absolute path), the archive lands in the app directory and nowhere else.
#[test]
fn an_app_name_never_puts_the_default_archive_outside_the_app_directory() {
    for (name, file) in [
        ("../x", "x-1.0.0.oci.tar"),
        ("../../escaped", "escaped-1.0.0.oci.tar"),
        ("/tmp/absolute", "tmp-absolute-1.0.0.oci.tar"),
        ("sub/dir", "sub-dir-1.0.0.oci.tar"),
    ] {
        let home = tempfile::tempdir().unwrap();
        let manifest = v2("[component.api]\nsource = \"app.wasm\"\n")
            .replace("name = \"bad\"", &format!("name = \"{name}\""));
        let app = app_with(home.path(), &manifest);
        let output = spin_aks(home.path())
            .args(["export", "--skip-spin-build", "-f"])
            .arg(&app)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{name}: {stderr}");
        assert!(
            app.join(file).is_file(),
            "{name}: no {file} in the app directory"
        );
        let outside: Vec<_> = walk_files(home.path())
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".oci.tar"))
            .collect();
        assert_eq!(outside, [app.join(file)], "{name}");
    }
    assert!(!Path::new("/tmp/absolute-1.0.0.oci.tar").exists());
}

/// Every file under `dir`, recursively.
fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk_files(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Runs the binary with a deadline: a hang (reading a FIFO, say) fails the test instead of
/// stalling the suite.
fn run_within(cmd: &mut assert_cmd::Command, secs: u64) -> (Option<i32>, String) {
    let output = cmd
        .timeout(std::time::Duration::from_secs(secs))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    (output.status.code(), stderr)
}

/// At default verbosity only our own messages reach stderr: an unreachable API server is one
/// `error:` line saying what to check, not the Kubernetes client's `ERROR` log lines per retry
/// (those stay available with `-vv`).
#[test]
fn library_log_lines_stay_out_of_default_output() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(home.path(), &v2("[component.api]\nsource = \"app.wasm\"\n"));
    let kubeconfig = home.path().join("kubeconfig");
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://{closed}\n\
             contexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n\
             users:\n- name: u\n  user: {{token: abc}}\n"
        ),
    )
    .unwrap();
    let status = |verbosity: &[&str]| {
        run_within(
            spin_aks(home.path())
                .env_remove("SPIN_AKS_LOG")
                .args(["status", "-f"])
                .arg(&app)
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(verbosity),
            60,
        )
    };
    let (code, stderr) = status(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("error: cannot reach the cluster"),
        "{stderr}"
    );
    assert!(!stderr.contains("hyper_util"), "{stderr}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
    let (_, verbose) = status(&["-vv"]);
    assert!(verbose.contains("hyper_util"), "-vv shows them: {verbose}");
}

// ---------- #27: helpers of the rows for ARM names, CI request URLs and a failing ARM ----------

/// A subscription id, as ARM's are.
const ARM_SUB: &str = "0b5e1c9a-1111-4000-8000-00000000abcd";

/// The app in `home`, signed in to a stand-in ARM through a fake `az` (no managed identity, no
/// CI sign-in): `spin-aks -f <app> <args>` against an ARM on loopback that answers every request
/// with `status`, `headers` and an ARM error body. Returns the run and how many requests ARM got.
fn against_arm(
    home: &Path,
    status: &str,
    headers: &str,
    args: &[&str],
) -> (Run, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let app = app_with(home, &v2("[component.api]\nsource = \"app.wasm\"\n"));
    let body = br#"{"error":{"code":"InternalServerError","message":"Encountered internal server error."}}"#;
    let (endpoint, received) = support::serve_answer(
        status,
        &format!("Content-Type: application/json\r\n{headers}"),
        body.to_vec(),
        100,
    );
    let bin = home.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let scope = format!("{endpoint}/.default");
    let run = signed_in_by_az(
        run(["-f"]).arg(app).args(args),
        &bin,
        &[(&scope, "arm-token")],
    )
    .env("SPIN_AKS_ARM_ENDPOINT", &endpoint)
    .env("SPIN_AKS_ARM_DELAY_SCALE", "0");
    (run, received)
}

/// `run` signed in to Azure by a fake `az` in `bin` answering `tokens` (scope, token) and by no
/// other credential (no secret, federated token, CI request or managed identity); the tokens are
/// hidden from its output.
fn signed_in_by_az(mut run: Run, bin: &Path, tokens: &[(&str, &str)]) -> Run {
    support::arm::write_scoped_az(bin, tokens);
    for name in [
        "AZURE_CLIENT_SECRET",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_AUTHORITY_HOST",
        "AZURE_SUBSCRIPTION_ID",
        "IDENTITY_ENDPOINT",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "SYSTEM_OIDCREQUESTURI",
    ] {
        run = run.env_remove(name);
    }
    for (_, token) in tokens {
        run = run.hides(*token);
    }
    run.env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://{}", closed_port()),
        )
}

/// [`against_arm`] with ARM refusing everything (403), checked to have received no request.
fn refused_before_arm(home: &Path, args: &[&str]) -> Run {
    let (run, received) = against_arm(home, "403 Forbidden", "", args);
    run.then(move |_| {
        let count = received.load(std::sync::atomic::Ordering::SeqCst);
        match count {
            0 => Vec::new(),
            n => vec![format!("ARM received {n} request(s)")],
        }
    })
}

/// `status` of an AKS cluster named by flags: `rg`/`aks1` in [`ARM_SUB`] unless `flags` says
/// otherwise.
fn aks_status(home: &Path, flags: &[&str]) -> Run {
    let mut args = vec!["status"];
    for (flag, default) in [
        ("--subscription", ARM_SUB),
        ("--resource-group", "rg"),
        ("--cluster", "aks1"),
    ] {
        if !flags.contains(&flag) {
            args.extend([flag, default]);
        }
    }
    args.extend(flags);
    refused_before_arm(home, &args)
}

/// `fleet add <cluster> --env prod` for an app whose deploy artifact is tagged `prod` in the
/// state file, so that nothing but the reference stands between the command and ARM.
fn fleet_add(home: &Path, cluster: &str) -> Setup {
    let run = refused_before_arm(home, &["fleet", "add", cluster, "--env", "prod"]);
    let manifest = std::fs::canonicalize(home.join("app/spin.toml")).unwrap();
    let image = format!("registry.example/bad@sha256:{}", "ab".repeat(32));
    let state = serde_json::json!({"version": 1, "apps": {manifest.to_str().unwrap(): {
        "deploy_artifact": {"repository": "registry.example/bad-deploy", "tags": {"prod": {
            "digest": format!("sha256:{}", "cd".repeat(32)), "image": image}}}}}});
    std::fs::write(home.join("state"), state.to_string()).unwrap();
    Ok(run.says(format!("{cluster:?}")).within(10))
}

/// `status` of an AKS cluster signed in through a CI system (`vars`) whose token request URL is
/// plain HTTP to a host that is not loopback; the request token is the SECRET.
fn ci_over_http(home: &Path, vars: &[(&str, &str)]) -> Setup {
    let mut run = aks_status(home, &[])
        .env("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47")
        .env("AZURE_CLIENT_ID", "5a6b7c8d-0000-4000-8000-00000000c1d0")
        .within(10);
    for (name, value) in vars {
        run = run.env(*name, *value);
    }
    Ok(run)
}

// ---------- #28: helpers of the signing rows ----------

/// `push` of an app to a closed port, signed with `key` (and the chain `cert`) in `home`.
fn signed_push(home: &Path, key: &str, cert: Option<&str>) -> Setup {
    let app = app_with(home, &v2("[component.api]\nsource = \"app.wasm\"\n"));
    let mut run = run(["push", "--skip-spin-build", "-f"])
        .arg(app)
        .arg(format!("{}/a:1", closed_port()))
        .arg("--sign")
        .arg(home.join(key));
    if let Some(cert) = cert {
        run = run.arg("--sign-cert").arg(home.join(cert));
    }
    Ok(run.within(30))
}

/// A test PKI of `kind` written into `home` as `key.pem` and `chain.pem`; a leaf with `usages`
/// as its extended key usages when given.
fn pki(
    home: &Path,
    kind: KeyKind,
    usages: &[rcgen::ExtendedKeyUsagePurpose],
) -> crate::notation::test_pki::Pki {
    let mut leaf = Leaf::new(kind);
    if !usages.is_empty() {
        leaf.extended_key_usages = usages.to_vec();
    }
    let pki = test_pki::make("spin-aks bad-input root", &leaf);
    std::fs::write(home.join("key.pem"), &pki.key_pem).unwrap();
    std::fs::write(home.join("chain.pem"), &pki.chain_pem).unwrap();
    pki
}

// ---------- #28: helpers of the Key Vault PKCS#12 rows ----------

/// `push --sign <key URL>` of an app to a closed port, the key in a fake Key Vault signed in to by
/// a fake `az`: a CA-issued certificate whose backing secret is PKCS#12 holding `pfx(pki)`. The
/// vault lives as long as the run; afterwards it must have signed nothing, and neither stream may
/// hold the vault's token or the key.
fn pkcs12_push(home: &Path, pfx: fn(&Pki) -> Vec<u8>) -> Setup {
    if support::tool("openssl").is_none() {
        return Err("openssl is not installed");
    }
    const TOKEN: &str = "kv-bad-input-token-51d3";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let kv = runtime.block_on(FakeKeyVault::start(TOKEN));
    let pki = test_pki::make("spin-aks bad-input root", &Leaf::new(KeyKind::P256));
    let files = tempfile::tempdir().unwrap();
    let key_file = files.path().join("signer.key.pem");
    std::fs::write(&key_file, &pki.key_pem).unwrap();
    let version = kv.add_certificate("signer", &key_file, pki.chain_der[0].clone(), String::new());
    kv.keep_as_pkcs12("signer", &pfx(&pki));
    let key_url = format!("{}keys/signer", kv.url);
    let app = app_with(home, &v2("[component.api]\nsource = \"app.wasm\"\n"));
    let run = run(["push", "--skip-spin-build", "-f"])
        .arg(app)
        .arg(format!("{}/a:1", closed_port()))
        .args(["--sign", &key_url]);
    let mut run = signed_in_by_az(run, files.path(), &[(VAULT_SCOPE, TOKEN)])
        .says(format!("--sign {key_url}"));
    for line in crate::key_vault_sign::key_lines(&pki.key_pem) {
        run = run.hides(line);
    }
    let sign = format!("/keys/signer/{version}/sign");
    Ok(run.within(30).then(move |_| {
        // The runtime serving the vault, and the key file, are kept until the run is checked.
        let _ = (&runtime, &files);
        match kv.count("POST", &sign) {
            0 => Vec::new(),
            n => vec![format!("Key Vault signed {n} time(s)")],
        }
    }))
}
