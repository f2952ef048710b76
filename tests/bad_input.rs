//! Every kind of bad input is refused with exit code 2, a message naming the file, field and
//! value at fault, and nothing written.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use support::apps::wasm;
use support::spin_aks;

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

/// Serves `body` over HTTP on a loopback port for `requests` requests; returns the URL.
fn serve_once(body: Vec<u8>, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/app.wasm", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(&body).unwrap();
        }
    });
    url
}

#[test]
fn a_download_whose_bytes_do_not_match_the_digest_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let url = serve_once(wasm(5), 1);
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
    let url = serve_once(bytes.clone(), 1);
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
