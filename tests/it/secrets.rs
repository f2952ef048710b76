//! `spin-aks secrets set` and `secrets list` through the real binary against the fake Key Vault,
//! signed in by a fake `az`: every value source, refusals (exit 2), roles on 403, throttling,
//! paging, and no value in any output (even at trace level) or in the state file.

use crate::support;

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;

use crate::support::arm::write_scoped_az;
use crate::support::keyvault::{FakeKeyVault, VAULT_SCOPE};
use crate::support::scaffold::{shop_app, AppDir};

const KV_TOKEN: &str = "kv-token-5b2e81";
/// Every value a test writes: none may appear in any output or in the state file.
const VALUES: &[&str] = &[
    "pw-from-stdin-7Qx",
    "pw-from-file-8Rz",
    "pw-from-env-9Ty",
    "hunter2-Kp4",
    "pw-second-3Lm",
];

struct Rig {
    kv: FakeKeyVault,
    app: AppDir,
    home: tempfile::TempDir,
    bin: tempfile::TempDir,
}

async fn rig() -> Rig {
    let kv = FakeKeyVault::start(KV_TOKEN).await;
    let bin = tempfile::tempdir().unwrap();
    write_scoped_az(bin.path(), &[(VAULT_SCOPE, KV_TOKEN)]);
    Rig {
        kv,
        app: shop_app(),
        home: tempfile::tempdir().unwrap(),
        bin,
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn succeeded(&self) {
        assert_eq!(self.code, 0, "{}", self.stderr);
    }

    /// Exited `code` with an error naming each of `needles`.
    fn failed(&self, code: i32, needles: &[&str]) {
        assert_eq!(self.code, code, "{}", self.stderr);
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "no `{needle}` in: {}",
                self.stderr
            );
        }
    }
}

impl Rig {
    fn state_path(&self) -> PathBuf {
        self.home.path().join("state")
    }

    /// Runs the binary on the shop app at trace level, `stdin` piped in; checks that no value
    /// and no token leaked into stdout, stderr or the state file.
    async fn run(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_spin-aks"));
        cmd.arg("-v")
            .arg("-f")
            .arg(&self.app.dir)
            .args(args)
            .env_clear()
            .env("PATH", self.bin.path())
            .env("HOME", self.home.path())
            .env("SPIN_AKS_STATE_FILE", self.state_path())
            .env("SPIN_AKS_ARM_DELAY_SCALE", "0")
            .env("SPIN_AKS_LOG", "trace")
            .env(
                "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                format!("http://{closed}"),
            )
            .envs(env.iter().copied())
            .current_dir(self.home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let stdin = stdin.to_string();
        let output = tokio::task::spawn_blocking(move || {
            let mut child = cmd.spawn().unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(stdin.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap();
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        let state = std::fs::read_to_string(self.state_path()).unwrap_or_default();
        for secret in VALUES.iter().chain([&KV_TOKEN]) {
            assert!(
                !run.stdout.contains(secret)
                    && !run.stderr.contains(secret)
                    && !state.contains(secret),
                "`{secret}` leaked:\n{}\n{}\n{state}",
                run.stdout,
                run.stderr
            );
        }
        run
    }

    /// `secrets set <variable> --key-vault <the fake>` with `value` on stdin.
    async fn set(&self, variable: &str, value: &str) -> Run {
        let args = ["secrets", "set", variable, "--key-vault", &self.kv.url];
        self.run(&args, value, &[]).await
    }

    fn remembered_vault(&self) -> Option<String> {
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.state_path()).ok()?).unwrap();
        let app = state["apps"].as_object()?.values().next()?;
        app["key_vault"].as_str().map(String::from)
    }
}

fn json(stdout: &str) -> serde_json::Value {
    support::json_report(stdout)
}

#[tokio::test]
async fn set_from_stdin_writes_the_dashed_secret_drops_one_newline_and_remembers_the_vault() {
    let rig = rig().await;
    let kv = rig.kv.url.as_str();
    let run = rig.set("db_password", "pw-from-stdin-7Qx\n").await;
    run.succeeded();
    assert_eq!(
        rig.kv.value("db-password").as_deref(),
        Some("pw-from-stdin-7Qx")
    );
    let version = &rig.kv.versions("db-password")[0].id;
    assert_eq!(
        run.stdout.trim(),
        format!("set db_password as secret db-password in vault vault (version {version})")
    );
    assert_eq!(rig.remembered_vault().as_deref(), Some(kv));

    // The remembered vault serves the next run; each write is a new version.
    let run = rig
        .run(
            &["secrets", "set", "db_password", "--output", "json"],
            "pw-second-3Lm\r\n",
            &[],
        )
        .await;
    run.succeeded();
    let versions = rig.kv.versions("db-password");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1].value, "pw-second-3Lm");
    assert_eq!(
        json(&run.stdout),
        serde_json::json!({"schema": "spin-aks/v1/secrets-set", "vault": kv, "variable": "db_password", "secret": "db-password", "version": versions[1].id})
    );
}

#[tokio::test]
async fn set_from_file_keeps_the_bytes_but_one_final_newline_and_from_env_keeps_them_all() {
    let rig = rig().await;
    let kv = rig.kv.url.as_str();
    let file = rig.home.path().join("value.txt");
    std::fs::write(&file, "pw-from-file-8Rz\nline two\n\n").unwrap();
    let args = [
        "secrets",
        "set",
        "api_key",
        "--key-vault",
        kv,
        "--from-file",
    ];
    rig.run(&args, "", &[]).await.failed(2, &["--from-file"]);
    let args = [&args[..], &[file.to_str().unwrap()]].concat();
    let run = rig.run(&args, "ignored stdin", &[]).await;
    run.succeeded();
    assert_eq!(
        rig.kv.value("api-key").as_deref(),
        Some("pw-from-file-8Rz\nline two\n")
    );

    let args = [
        "secrets",
        "set",
        "log_level",
        "--from-env",
        "LOG_LEVEL_VALUE",
    ];
    let run = rig
        .run(&args, "", &[("LOG_LEVEL_VALUE", " pw-from-env-9Ty \n")])
        .await;
    run.succeeded();
    assert_eq!(
        rig.kv.value("log-level").as_deref(),
        Some(" pw-from-env-9Ty \n")
    );

    let run = rig.run(&args, "", &[]).await;
    run.failed(2, &["LOG_LEVEL_VALUE is not set"]);
}

#[tokio::test]
async fn a_value_on_the_command_line_is_refused_without_echoing_it() {
    let rig = rig().await;
    let kv = rig.kv.url.as_str();
    for args in [
        &["secrets", "set", "api_key=hunter2-Kp4", "--key-vault", kv][..],
        &[
            "secrets",
            "set",
            "api_key",
            "hunter2-Kp4",
            "--key-vault",
            kv,
        ][..],
    ] {
        let run = rig.run(args, "", &[]).await;
        run.failed(2, &["shell history", "`api_key`"]);
    }
    assert_eq!(rig.kv.total_requests(), 0);
}

#[tokio::test]
async fn bad_input_exits_2_before_the_vault_is_asked() {
    let rig = rig().await;
    let run = rig.set("no_such", "x").await;
    run.failed(
        2,
        &[
            "`no_such` is not declared",
            "declared: api_key, db_password, log_level, region",
        ],
    );

    let run = rig.run(&["secrets", "set", "api_key"], "x", &[]).await;
    run.failed(2, &["pass --key-vault"]);

    let run = rig.set("api_key", "\n").await;
    run.failed(2, &["from stdin is empty"]);

    let run = rig
        .run(
            &["secrets", "list", "--key-vault", "https://example.com/"],
            "",
            &[],
        )
        .await;
    run.failed(2, &["not a Key Vault URL"]);
    assert_eq!(rig.kv.total_requests(), 0);
    assert_eq!(rig.remembered_vault(), None);
}

#[tokio::test]
async fn list_pages_through_names_and_missing_shrinks_after_a_set() {
    let rig = rig().await;
    let kv = rig.kv.url.as_str();
    rig.kv.vault(|v| v.page_size = 2);
    rig.kv.put("other-app-secret", "unrelated", true);
    rig.kv.put("ZZ-last", "unrelated", true);
    rig.kv.put("log-level", "off", false);

    let run = rig
        .run(
            &["secrets", "list", "--key-vault", kv, "--output", "json"],
            "",
            &[],
        )
        .await;
    run.succeeded();
    let listed = json(&run.stdout);
    assert_eq!(listed["vault"], kv);
    assert_eq!(
        listed["missing"],
        serde_json::json!(["api_key", "db_password", "log_level"])
    );
    assert_eq!(
        listed["secrets"],
        serde_json::json!([
            {"name": "log-level", "variable": "log_level", "enabled": false},
            {"name": "other-app-secret", "variable": null, "enabled": true},
            {"name": "zz-last", "variable": null, "enabled": true},
        ])
    );
    assert_eq!(rig.kv.count("GET", "/secrets"), 2, "two pages of two");

    let run = rig
        .run(&["secrets", "set", "db_password"], "pw-from-stdin-7Qx", &[])
        .await;
    run.succeeded();
    let run = rig.run(&["secrets", "list"], "", &[]).await;
    run.succeeded();
    let line = |name: &str| {
        let found = run
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name));
        found
            .unwrap_or_else(|| panic!("no line for {name}: {}", run.stdout))
            .to_string()
    };
    assert!(line("db-password").ends_with(" variable db_password"));
    assert!(line("log-level").ends_with(" variable log_level (disabled)"));
    assert_eq!(line("zz-last").trim(), "zz-last");
    assert!(
        run.stdout.contains("missing: variable api_key (secret api-key); set it with `spin-aks secrets set api_key`")
            && !run.stdout.contains("missing: variable db_password"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn forbidden_names_the_role_each_command_needs_and_the_vault() {
    let rig = rig().await;
    let kv = rig.kv.url.as_str();
    rig.kv.vault(|v| v.forbidden = true);
    let run = rig.set("api_key", "pw-from-stdin-7Qx").await;
    run.failed(
        1,
        &[
            "may not set secrets in Key Vault vault",
            "Key Vault Secrets Officer role (b86a8fe4-44ce-4948-aee5-eccb2c155cd7)",
            "ForbiddenByRbac",
        ],
    );
    assert_eq!(rig.kv.count("PUT", "/secrets/api-key"), 1, "a 403 is final");
    assert_eq!(
        rig.remembered_vault(),
        None,
        "a refused vault is not remembered"
    );

    let run = rig
        .run(&["secrets", "list", "--key-vault", kv], "", &[])
        .await;
    run.failed(
        1,
        &[
            "may not list secrets",
            "Key Vault Secrets User role (4633458b-17de-408a-b874-0445c86b69e6)",
        ],
    );
}

#[tokio::test]
async fn throttling_is_waited_out() {
    let rig = rig().await;
    rig.kv.vault(|v| v.throttle = 3);
    let run = rig.set("api_key", "pw-from-stdin-7Qx").await;
    run.succeeded();
    assert_eq!(rig.kv.count("PUT", "/secrets/api-key"), 4);
    assert_eq!(rig.kv.versions("api-key").len(), 1);
}

#[tokio::test]
async fn a_refused_token_is_a_sign_in_error_naming_the_tenant() {
    let rig = rig().await;
    let kv = rig.kv.url.as_str();
    write_scoped_az(rig.bin.path(), &[(VAULT_SCOPE, "a-stale-token")]);
    let run = rig
        .run(&["secrets", "list", "--key-vault", kv], "", &[])
        .await;
    run.failed(
        1,
        &[
            "Key Vault vault refused the sign-in token",
            &format!("`az login --tenant {}`", support::arm::TENANT),
        ],
    );
}

#[tokio::test]
async fn a_vault_firewall_is_named_as_the_network_not_a_missing_role() {
    let rig = rig().await;
    rig.kv.vault(|v| v.firewalled = true);
    let run = rig.set("api_key", "pw-from-stdin-7Qx").await;
    run.failed(
        1,
        &[
            "does not accept requests from this network",
            "networking settings",
            "Client address: 203.0.113.7",
        ],
    );
    assert!(!run.stderr.contains("Secrets Officer"), "{}", run.stderr);
    assert_eq!(rig.kv.count("PUT", "/secrets/api-key"), 1, "a 403 is final");
}
