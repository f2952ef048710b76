//! Every kind of bad input is refused with exit code 2, a message naming the file, field and
//! value at fault, and nothing written.

use crate::support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use crate::support::apps::wasm;
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

/// Builds, expects exit 2 with every `expected` fragment in stderr, and no layout written.
fn assert_refused(home: &Path, app: &Path, expected: &[&str]) -> String {
    let output = spin_aks(home)
        .args(["build", "--skip-spin-build", "-f"])
        .arg(app)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(
        output.status.code(),
        Some(2),
        "expected exit 2, stderr: {stderr}"
    );
    for fragment in expected {
        assert!(
            stderr.contains(fragment),
            "stderr lacks `{fragment}`: {stderr}"
        );
    }
    assert!(output.stdout.is_empty(), "nothing on stdout for a failure");
    assert!(
        !app.join(".spin-aks").exists(),
        "a refused build wrote a layout"
    );
    stderr
}

#[test]
fn toml_syntax_errors_give_line_and_column() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(
        home.path(),
        "spin_manifest_version = 2\n[application\nname = \"x\"\n",
    );
    assert_refused(home.path(), &app, &["spin.toml:2:", "invalid TOML"]);
}

#[test]
fn unknown_manifest_versions_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(
        home.path(),
        "spin_manifest_version = 3\n[application]\nname = \"x\"\n",
    );
    assert_refused(
        home.path(),
        &app,
        &["`spin_manifest_version`", "unsupported manifest version 3"],
    );
}

#[test]
fn a_missing_source_field_is_named_by_its_path() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(home.path(), &v2("[component.api]\nfiles = []\n"));
    assert_refused(
        home.path(),
        &app,
        &["`component.api`", "missing field `source`"],
    );
}

#[test]
fn a_mistyped_field_is_named_by_its_path() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(
        home.path(),
        &v2("[component.api]\nsource = \"app.wasm\"\nallowed_outbound_hosts = \"https://x\"\n"),
    );
    assert_refused(
        home.path(),
        &app,
        &[
            "`component.api.allowed_outbound_hosts`",
            "expected a sequence",
        ],
    );
}

#[test]
fn unknown_fields_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(
        home.path(),
        &v2("[component.api]\nsource = \"app.wasm\"\nfilez = []\n"),
    );
    assert_refused(
        home.path(),
        &app,
        &["component.api", "unknown field `filez`"],
    );
}

#[test]
fn a_missing_wasm_names_the_component_and_path_and_suggests_spin_build() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(
        home.path(),
        &v2("[component.api]\nsource = \"target/api.wasm\"\n"),
    );
    assert_refused(
        home.path(),
        &app,
        &["component `api`", "target/api.wasm", "spin build"],
    );
}

#[test]
fn a_source_that_is_not_webassembly_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(
        home.path(),
        &v2("[component.api]\nsource = \"spin.toml\"\n"),
    );
    assert_refused(
        home.path(),
        &app,
        &["component `api`", "is not a WebAssembly module"],
    );
}

#[test]
fn sources_escaping_the_app_directory_are_refused() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("outside.wasm"), wasm(9)).unwrap();
    for source in ["../outside.wasm", "/etc/passwd", "sub/../../outside.wasm"] {
        let app = app_with(
            home.path(),
            &v2(&format!("[component.api]\nsource = \"{source}\"\n")),
        );
        assert_refused(
            home.path(),
            &app,
            &[
                "`component.api.source`",
                source,
                "outside the app directory",
            ],
        );
    }
}

#[test]
fn file_mounts_escaping_the_app_directory_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(
        home.path(),
        &v2("[component.api]\nsource = \"app.wasm\"\nfiles = [\"../secrets/*\"]\n"),
    );
    assert_refused(
        home.path(),
        &app,
        &[
            "`component.api.files[0]`",
            "../secrets/*",
            "outside the app directory",
        ],
    );
    let app = app_with(home.path(), &v2("[component.api]\nsource = \"app.wasm\"\nfiles = [{ source = \"/etc\", destination = \"/\" }]\n"));
    assert_refused(
        home.path(),
        &app,
        &[
            "`component.api.files[0].source`",
            "outside the app directory",
        ],
    );
}

#[test]
fn symlinks_pointing_outside_the_app_are_refused() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("secret.txt"), "not for the image").unwrap();
    let app = app_with(
        home.path(),
        &v2("[component.api]\nsource = \"app.wasm\"\nfiles = [\"static/*\"]\n"),
    );
    std::fs::create_dir_all(app.join("static")).unwrap();
    std::os::unix::fs::symlink(home.path().join("secret.txt"), app.join("static/leak.txt"))
        .unwrap();
    assert_refused(
        home.path(),
        &app,
        &[
            "static/leak.txt",
            "symbolic link",
            "outside the app directory",
        ],
    );

    let app2 = home.path().join("app2");
    std::fs::create_dir_all(&app2).unwrap();
    std::fs::write(
        app2.join("spin.toml"),
        v2("[component.api]\nsource = \"app.wasm\"\n"),
    )
    .unwrap();
    std::os::unix::fs::symlink(home.path().join("outside.wasm"), app2.join("app.wasm")).unwrap();
    std::fs::write(home.path().join("outside.wasm"), wasm(4)).unwrap();
    assert_refused(
        home.path(),
        &app2,
        &["component `api`", "outside the app directory"],
    );
}

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
fn an_invalid_url_digest_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(home.path(), &v2("[component.api]\nsource = { url = \"https://example.com/a.wasm\", digest = \"sha256:1234\" }\n"));
    assert_refused(
        home.path(),
        &app,
        &[
            "`component.api.source.digest`",
            "sha256:1234",
            "not a sha256 digest",
        ],
    );
}

#[test]
fn a_download_whose_bytes_do_not_match_the_digest_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let url = serve_bytes(wasm(5), 1, "app.wasm");
    let pinned = format!("sha256:{}", "0".repeat(64));
    let app = app_with(
        home.path(),
        &v2(&format!(
            "[component.api]\nsource = {{ url = \"{url}\", digest = \"{pinned}\" }}\n"
        )),
    );
    assert_refused(
        home.path(),
        &app,
        &["component `api`", &url, &pinned, "fix the `digest`"],
    );
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

#[test]
fn triggers_the_shim_cannot_run_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let manifest = format!("{HEADER}[[trigger.cron]]\ncron_expression = \"* * * * *\"\ncomponent = \"api\"\n[component.api]\nsource = \"app.wasm\"\n");
    let app = app_with(home.path(), &manifest);
    assert_refused(
        home.path(),
        &app,
        &[
            "type `cron`",
            "containerd-shim-spin cannot run",
            "http, redis, sqs, mqtt, command",
        ],
    );
}

#[test]
fn registry_dependencies_cannot_be_fetched_offline() {
    // Path and url dependencies are packaged (tests/locked_app.rs); a registry one is refused.
    let home = tempfile::tempdir().unwrap();
    let app = app_with(home.path(), &v2("[component.api]\nsource = \"app.wasm\"\n[component.api.dependencies]\n\"my:dep/iface\" = \"^1.0\"\n"));
    assert_refused(
        home.path(),
        &app,
        &[
            "component `api`",
            "dependency `my:dep/iface`",
            "cannot fetch offline",
        ],
    );
}

#[test]
fn registry_package_sources_are_not_supported_yet() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(home.path(), &v2("[component.api]\nsource = { registry = \"ghcr.io\", package = \"a:b\", version = \"1.0.0\" }\n"));
    assert_refused(
        home.path(),
        &app,
        &["component `api`", "registry package", "not support"],
    );
}

#[test]
fn a_trigger_naming_an_unknown_component_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(
        home.path(),
        &v2("[component.other]\nsource = \"app.wasm\"\n"),
    );
    assert_refused(
        home.path(),
        &app,
        &["`trigger.http[0].component`", "no component named `api`"],
    );
}

#[test]
fn variables_need_exactly_one_of_default_and_required() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(
        home.path(),
        &v2("[variables]\ntoken = { secret = true }\n[component.api]\nsource = \"app.wasm\"\n"),
    );
    assert_refused(
        home.path(),
        &app,
        &[
            "`variables.token`",
            "needs a `default` or `required = true`",
        ],
    );
}

#[test]
fn a_missing_manifest_is_bad_input() {
    let home = tempfile::tempdir().unwrap();
    let output = spin_aks(home.path())
        .args(["build", "-f"])
        .arg(home.path().join("nope"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no Spin manifest at"));
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

/// `--state-file` naming anything but a regular file or a new path is refused (exit 2, the
/// path and what it is) before anything is read, moved aside or replaced: a device node stays a
/// device node, a FIFO is never opened (that would wait forever), a link's target is untouched.
#[test]
fn a_state_file_that_is_not_a_regular_file_is_refused_untouched() {
    use std::os::unix::fs::FileTypeExt;
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("states");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("target"), "{\"version\":1}").unwrap();
    std::os::unix::fs::symlink(dir.join("target"), dir.join("link")).unwrap();
    std::fs::create_dir(dir.join("dir")).unwrap();
    support::run_ok(std::process::Command::new("mkfifo").arg(dir.join("fifo")));
    let mut cases = vec![
        ("fifo", "is a FIFO"),
        ("link", "is a symbolic link"),
        ("dir", "is a directory"),
    ];
    // A private node with the null device's numbers, never the real /dev/null (needs root).
    let node = std::process::Command::new("mknod")
        .arg(dir.join("null"))
        .args(["c", "1", "3"])
        .status();
    if node.is_ok_and(|s| s.success()) {
        cases.push(("null", "is a character device"));
    } else {
        eprintln!("not checking a device node: mknod needs root");
    }
    let listing = |dir: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = listing(&dir);
    for (name, kind) in cases {
        let path = dir.join(name);
        let file_type = std::fs::symlink_metadata(&path).unwrap().file_type();
        let (code, stderr) = run_within(
            spin_aks(home.path())
                .arg("--state-file")
                .arg(&path)
                .args(["push", "localhost:1/a:1", "--from-layout"])
                .arg(home.path().join("no-layout")),
            30,
        );
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(stderr.contains(path.to_str().unwrap()), "{name}: {stderr}");
        assert!(stderr.contains(kind), "{name}: {stderr}");
        let now = std::fs::symlink_metadata(&path).unwrap().file_type();
        assert_eq!(now, file_type, "{name} was replaced");
        assert_eq!(
            listing(&dir),
            before,
            "{name}: something was written beside it"
        );
    }
    assert!(std::fs::symlink_metadata(dir.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        std::fs::read_to_string(dir.join("target")).unwrap(),
        "{\"version\":1}"
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

/// A malformed secret-bearing flag is refused with exit 2 naming the flag and the problem, and
/// never repeating its value: the password in a Redis URL, a libsql token, a secret given
/// without `NAME=`.
#[test]
fn malformed_secret_bearing_flags_are_refused_without_echoing_the_value() {
    let home = tempfile::tempdir().unwrap();
    for (command, flag, value, problem) in [
        (
            "apply",
            "--secret",
            "API-KEY=hunter2",
            "not a Spin variable name",
        ),
        ("up", "--secret", "hunter2!", "not a Spin variable name"),
        (
            "apply",
            "--kv-store",
            "cache=redis:http://:hunter2@redis",
            "redis URL of `cache`",
        ),
        ("scaffold", "--kv-store", "hunter2", "<label>=<backend>"),
        (
            "up",
            "--kv-store",
            "Cache=redis:redis://:hunter2@redis",
            "label before `=`",
        ),
        (
            "apply",
            "--sqlite",
            "db=postgres://u:hunter2@db",
            "libsql:<url>",
        ),
    ] {
        let (code, stderr) = run_within(spin_aks(home.path()).args([command, flag, value]), 30);
        assert_eq!(code, Some(2), "{command} {flag}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid {flag}")),
            "{flag}: {stderr}"
        );
        assert!(stderr.contains(problem), "{flag}: {stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "{flag} echoed the value: {stderr}"
        );
    }
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
    assert!(!stderr.contains("kube_client"), "{stderr}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
    let (_, verbose) = status(&["-vv"]);
    assert!(verbose.contains("kube_client"), "-vv shows them: {verbose}");
}

/// A `--ca-file` must hold a certificate: one that holds none (empty, garbage bytes, only a
/// key) used to parse as an empty list and be accepted silently, trusting nothing more. Each is
/// exit 2 naming the file; a real CA certificate, PEM or DER, gets past it to the registry.
#[test]
fn a_ca_file_without_a_certificate_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let layout = built_layout(home.path());
    let key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertificateParams::new(vec!["registry.test".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let block = |label: &str, body: &str| {
        format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n").into_bytes()
    };
    let no_certificate = "holds no certificate";
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("empty", vec![], Some(no_certificate)),
        (
            "garbage",
            support::apps::bytes(3, 4096),
            Some(no_certificate),
        ),
        (
            "text",
            b"not a certificate\n".to_vec(),
            Some(no_certificate),
        ),
        (
            "key-only",
            key.serialize_pem().into_bytes(),
            Some(no_certificate),
        ),
        (
            "not-x509",
            block("CERTIFICATE", "aGVsbG8gd29ybGQ="),
            Some("not a valid X.509 certificate"),
        ),
        (
            "bad-base64",
            block("CERTIFICATE", "!!not base64!!"),
            Some("not valid base64"),
        ),
        ("ca-pem", ca.pem().into_bytes(), None),
        ("ca-der", ca.der().to_vec(), None),
    ];
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for (name, bytes, refusal) in cases {
        let file = home.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let (code, stderr) = run_within(
            spin_aks(home.path())
                .args(["push", "--retry-budget", "0s", "--from-layout"])
                .arg(&layout)
                .arg(format!("{closed}/app:1"))
                .arg("--ca-file")
                .arg(&file),
            60,
        );
        match refusal {
            Some(why) => {
                assert_eq!(code, Some(2), "{name}: {stderr}");
                assert!(stderr.contains(file.to_str().unwrap()), "{name}: {stderr}");
                assert!(stderr.contains(why), "{name}: {stderr}");
            }
            None => {
                assert_eq!(code, Some(1), "{name} is accepted: {stderr}");
                // Accepted: the push gets as far as the (closed) registry.
                assert!(stderr.contains("Connection refused"), "{name}: {stderr}");
            }
        }
    }
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

/// A push reference with credentials, a URL scheme or an absurd length is refused with exit 2
/// saying what to change: the password never echoed, the scheme named, the length cut.
#[test]
fn hostile_push_references_say_what_to_change() {
    let home = tempfile::tempdir().unwrap();
    let layout = built_layout(home.path());
    let long = format!("example.com/{}", "a/".repeat(50_000));
    for (reference, expected) in [
        (
            "user:hunter2@example.com/app:1",
            "credentials do not belong in a reference",
        ),
        (
            "https://user:hunter2@example.com/app",
            "credentials do not belong in a reference",
        ),
        ("http://localhost:5000/app:1", "drop the `http://` scheme"),
        ("oci://example.com/app:1", "drop the `oci://` scheme"),
        ("docker://example.com/app:1", "drop the `docker://` scheme"),
        (long.as_str(), "(100012 characters)"),
    ] {
        let (code, stderr) = run_within(
            spin_aks(home.path())
                .args(["push", "--from-layout"])
                .arg(&layout)
                .arg(reference),
            30,
        );
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "the password was echoed: {stderr}"
        );
        assert!(stderr.len() < 1000, "{} bytes of stderr", stderr.len());
    }
}
