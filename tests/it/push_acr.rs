//! `spin-aks push --auth azure` end to end: a fake `az` on PATH signs in, the binary exchanges
//! the Entra token at a token service in ACR's shape, and pushes into the real registry behind it.

use crate::support;

use std::path::Path;

use crate::support::acr::{write_fake_az, AcrFake, TENANT};

/// Runs the binary with only the fake `az` on PATH and IMDS pointed at a closed port.
async fn push(acr: &AcrFake, bin: &Path, args: &[&str]) -> (i32, String, String) {
    push_with(acr, bin, args, "azure").await
}

async fn push_with(acr: &AcrFake, bin: &Path, args: &[&str], auth: &str) -> (i32, String, String) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let home = acr.scratch("home");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_spin-aks"));
    cmd.arg("push")
        .args(args)
        .args(["--auth", auth, "--output", "json"])
        .env_clear()
        .env("PATH", bin)
        .env("HOME", &home)
        .env("DOCKER_CONFIG", home.join("docker"))
        .env("SPIN_AKS_STATE_FILE", home.join("state"))
        .env(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://{closed}"),
        )
        .current_dir(&home);
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn generated_layout(acr: &AcrFake, blobs: usize) -> String {
    let dir = acr.scratch("layout");
    support::layout::generate(&dir, "1.0.0", blobs, &[100, 5000, 70_000]);
    dir.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sign_in_pushes_through_the_acr_token_exchange_and_re_pushes_nothing() {
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let bin = tempfile::tempdir().unwrap();
    write_fake_az(bin.path(), &acr.entra_token(TENANT, 3600), TENANT);
    let layout = generated_layout(&acr, 12);
    let reference = format!("{}/team/app", acr.login_server);

    let (code, stdout, stderr) =
        push(&acr, bin.path(), &[&reference, "--from-layout", &layout]).await;
    assert_eq!(code, 0, "{stderr}");
    let json = support::json_report(&stdout);
    assert_eq!(json["blobs_uploaded"], 13);
    assert_eq!(json["reference"], format!("{reference}:1.0.0"));

    // Unchanged: the Entra exchange, then a token from ACR's token service (known without a 401
    // to learn it), then the one manifest HEAD.
    acr.take_requests();
    let (code, stdout, stderr) =
        push(&acr, bin.path(), &[&reference, "--from-layout", &layout]).await;
    assert_eq!(code, 0, "{stderr}");
    let again = support::json_report(&stdout);
    assert_eq!(again["blobs_skipped"], 13);
    assert_eq!(again["digest"], json["digest"]);
    let asked: Vec<String> = acr
        .take_requests()
        .into_iter()
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    assert_eq!(
        asked,
        [
            "POST /oauth2/exchange",
            "POST /oauth2/token",
            "HEAD /v2/team/app/manifests/1.0.0"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_denied_by_acr_names_the_acr_push_and_abac_roles() {
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    acr.policy(|p| {
        p.deny_push.insert("locked/app".into());
    });
    let bin = tempfile::tempdir().unwrap();
    write_fake_az(bin.path(), &acr.entra_token(TENANT, 3600), TENANT);
    let layout = generated_layout(&acr, 2);
    let reference = format!("{}/locked/app:1", acr.login_server);
    let (code, stdout, stderr) =
        push(&acr, bin.path(), &[&reference, "--from-layout", &layout]).await;
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("denied") && stderr.contains("AcrPush") && stderr.contains("ABAC"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_entra_token_fails_with_exit_1_and_no_token_in_the_output() {
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let bin = tempfile::tempdir().unwrap();
    let expired = acr.entra_token(TENANT, -600);
    write_fake_az(bin.path(), &expired, TENANT);
    let layout = generated_layout(&acr, 2);
    let reference = format!("{}/team/app:1", acr.login_server);
    let (code, stdout, stderr) =
        push(&acr, bin.path(), &[&reference, "--from-layout", &layout]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        !stdout.contains(&expired) && !stderr.contains(&expired),
        "token leaked: {stderr}"
    );
    let expected = format!("authentication to {} failed", acr.login_server);
    assert!(
        stderr.contains(&expected) && stderr.contains("expired"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_config_identity_token_is_redeemed_with_the_refresh_token_grant() {
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    // What `az acr login` leaves in the Docker config: an ACR refresh token as `identitytoken`.
    let entra = spin_aks::secret::Secret::new(acr.entra_token(TENANT, 3600));
    let refresh = spin_aks::azure::acr::exchange_entra_token(
        &reqwest::Client::new(),
        &acr.login_server,
        &entra,
    )
    .await
    .unwrap();
    let docker = acr.scratch("home").join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwOg==","identitytoken":"{}"}}}}}}"#,
            acr.login_server,
            refresh.expose()
        ),
    )
    .unwrap();
    let empty_path = tempfile::tempdir().unwrap();
    let layout = generated_layout(&acr, 3);
    let reference = format!("{}/docker/app:1", acr.login_server);
    let (code, stdout, stderr) = push_with(
        &acr,
        empty_path.path(),
        &[&reference, "--from-layout", &layout],
        "docker",
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let json = support::json_report(&stdout);
    assert_eq!(json["blobs_uploaded"], 4);
    assert!(!stderr.contains(refresh.expose()));
}
