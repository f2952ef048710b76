//! CI runners as users: signing in with nothing but GitHub Actions' or Azure Pipelines' own variables
//! (their OIDC token exchanged at a fake Entra), through the binary, pushing to an ACR-shaped registry.

use crate::support;
use crate::support::acr::{AcrFake, TENANT};
use crate::support::alone;
use crate::support::ci_oidc::{
    CiOidc, Jobs, Trust, ADO_ISSUER, ADO_SYSTEM_TOKEN, GITHUB_ISSUER, GITHUB_REQUEST_TOKEN,
    SERVICE_CONNECTION,
};

const CLIENT_ID: &str = "3f2b1c4d-1111-4222-8333-944455556666";
const GITHUB_SUBJECT: &str = "repo:org/app:ref:refs/heads/main";
const ADO_SUBJECT: &str = "sc://org/project/aks-deploy";

/// The CI system a test plays.
#[derive(Clone, Copy, Debug)]
enum Ci {
    GitHub,
    Pipelines,
}

impl Ci {
    fn trust(self, subject: &str) -> Trust {
        Trust {
            tenant: TENANT.into(),
            client_id: CLIENT_ID.into(),
            issuer: match self {
                Ci::GitHub => GITHUB_ISSUER.into(),
                Ci::Pipelines => ADO_ISSUER.into(),
            },
            subject: subject.into(),
        }
    }

    /// The variables the CI system (and the job's YAML, docs/ci.md) gives the step.
    fn env(self, oidc: &CiOidc) -> Vec<(&'static str, String)> {
        match self {
            Ci::GitHub => vec![
                ("GITHUB_ACTIONS", "true".into()),
                ("ACTIONS_ID_TOKEN_REQUEST_URL", oidc.github_request_url()),
                (
                    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                    GITHUB_REQUEST_TOKEN.into(),
                ),
                ("AZURE_CLIENT_ID", CLIENT_ID.into()),
                ("AZURE_TENANT_ID", TENANT.into()),
            ],
            Ci::Pipelines => vec![
                ("TF_BUILD", "True".into()),
                ("SYSTEM_OIDCREQUESTURI", oidc.ado_request_uri()),
                ("SYSTEM_ACCESSTOKEN", ADO_SYSTEM_TOKEN.into()),
                (
                    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
                    SERVICE_CONNECTION.into(),
                ),
                ("AZURESUBSCRIPTION_CLIENT_ID", CLIENT_ID.into()),
                ("AZURESUBSCRIPTION_TENANT_ID", TENANT.into()),
            ],
        }
    }

    /// The request the runner's token endpoint sees.
    fn token_request(self) -> &'static str {
        match self {
            Ci::GitHub => "GET /github/_apis/distributedtask/hubs/Actions/plans/1/jobs/2/idtoken",
            Ci::Pipelines => {
                "POST /ado/org/project-id/_apis/distributedtask/hubs/build/plans/3/jobs/4/oidctoken"
            }
        }
    }
}

fn jobs() -> Jobs {
    Jobs {
        github_subject: GITHUB_SUBJECT.into(),
        ado_subject: ADO_SUBJECT.into(),
        ci_token_ttl: 300,
        entra_expires_in: 3599,
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    summary: String,
}

/// `spin-aks push … --auth azure --output json` with a cleared environment: PATH to an empty dir
/// (no `az`), IMDS at a closed port, Entra at the fake (authority host and its CA), and `vars`.
async fn push(acr: &AcrFake, oidc: &CiOidc, vars: &[(&str, String)], repository: &str) -> Run {
    push_sized(acr, oidc, vars, repository, &[100, 5000]).await
}

async fn push_sized(
    acr: &AcrFake,
    oidc: &CiOidc,
    vars: &[(&str, String)],
    repository: &str,
    sizes: &[usize],
) -> Run {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let home = acr.scratch(&format!("home-{repository}"));
    let empty = acr.scratch("empty-path");
    let layout = acr.scratch(&format!("layout-{repository}"));
    support::layout::generate(&layout, "1.0.0", 3, sizes);
    let summary = home.join("step-summary.md");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_spin-aks"));
    cmd.arg("push")
        .arg(format!("{}/{repository}", acr.login_server))
        .arg("--from-layout")
        .arg(&layout)
        .args(["--auth", "azure", "--output", "json"])
        .env_clear()
        .env("PATH", &empty)
        .env("HOME", &home)
        .env("DOCKER_CONFIG", home.join("docker"))
        .env("SPIN_AKS_STATE_FILE", home.join("state"))
        .env(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://{closed}"),
        )
        .env("AZURE_AUTHORITY_HOST", &oidc.base)
        .env("SSL_CERT_FILE", &oidc.ca_file)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .current_dir(&home);
    for (name, value) in vars {
        cmd.env(name, value);
    }
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        summary: std::fs::read_to_string(&summary).unwrap_or_default(),
    }
}

/// No token of any kind anywhere in what the run printed or wrote for the job.
fn assert_no_token(run: &Run, oidc: &CiOidc, access_token: &str) {
    let mut secrets = oidc.minted();
    secrets.extend([
        access_token.to_string(),
        GITHUB_REQUEST_TOKEN.to_string(),
        ADO_SYSTEM_TOKEN.to_string(),
    ]);
    for secret in secrets {
        for (what, text) in [
            ("stdout", &run.stdout),
            ("stderr", &run.stderr),
            ("summary", &run.summary),
        ] {
            assert!(
                !text.contains(&secret),
                "a token leaked into {what}: {text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_oidc_alone_signs_in_and_pushes_to_acr() {
    for ci in [Ci::GitHub, Ci::Pipelines] {
        let Some(acr) = AcrFake::start().await else {
            return;
        };
        let access_token = acr.entra_token(TENANT, 3600);
        let subject = match ci {
            Ci::GitHub => GITHUB_SUBJECT,
            Ci::Pipelines => ADO_SUBJECT,
        };
        let oidc = CiOidc::start(ci.trust(subject), jobs(), access_token.clone()).await;
        let run = push(&acr, &oidc, &ci.env(&oidc), "team/app").await;
        assert_eq!(run.code, 0, "{ci:?}: {}", run.stderr);
        let json = support::json_report(&run.stdout);
        assert_eq!(json["blobs_uploaded"], 4, "{ci:?}");
        assert_eq!(
            oidc.take_requests(),
            [
                ci.token_request().to_string(),
                format!("POST /{TENANT}/oauth2/v2.0/token")
            ],
            "{ci:?}: one CI token, one exchange"
        );
        assert_eq!(
            acr.take_requests()
                .first()
                .map(|(m, p)| format!("{m} {p}"))
                .as_deref(),
            Some("POST /oauth2/exchange"),
            "{ci:?}"
        );
        match ci {
            Ci::GitHub => assert!(
                run.summary.starts_with("### spin-aks push\n")
                    && run.summary.contains(&format!(
                        "| Digest | `{}` |",
                        json["digest"].as_str().unwrap()
                    )),
                "{}",
                run.summary
            ),
            Ci::Pipelines => assert_eq!(run.summary, "", "no step summary outside GitHub Actions"),
        }
        assert_no_token(&run, &oidc, &access_token);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_subject_names_the_subject_the_token_carried_and_prints_no_token() {
    for (ci, carried) in [
        (Ci::GitHub, "repo:org/app:ref:refs/heads/feature/x"),
        (Ci::Pipelines, "sc://org/other-project/aks-deploy"),
    ] {
        let Some(acr) = AcrFake::start().await else {
            return;
        };
        let access_token = acr.entra_token(TENANT, 3600);
        let trusted = match ci {
            Ci::GitHub => "repo:org/app:environment:production",
            Ci::Pipelines => ADO_SUBJECT,
        };
        let oidc = CiOidc::start(ci.trust(trusted), jobs(), access_token.clone()).await;
        oidc.jobs(|jobs| {
            jobs.github_subject = carried.into();
            jobs.ado_subject = carried.into();
        });
        let run = push(&acr, &oidc, &ci.env(&oidc), "team/app").await;
        assert_eq!(run.code, 1, "{ci:?}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{ci:?}");
        let stderr = &run.stderr;
        assert!(
            stderr.contains(&format!("subject `{carried}`")) && stderr.contains("AADSTS700213"),
            "{ci:?}: {stderr}"
        );
        assert!(
            stderr.contains(CLIENT_ID),
            "{ci:?}: names the client to fix: {stderr}"
        );
        // A refused federated credential ends the chain: no IMDS probe, no az.
        assert!(!stderr.contains("Tried, in order"), "{ci:?}: {stderr}");
        assert_no_token(&run, &oidc, &access_token);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_job_without_id_token_permission_is_told_to_grant_it() {
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let oidc = CiOidc::start(Ci::GitHub.trust(GITHUB_SUBJECT), jobs(), "unused".into()).await;
    // What a job without `permissions: id-token: write` gets: no request URL or token.
    let vars: Vec<(&str, String)> = Ci::GitHub
        .env(&oidc)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("ACTIONS_ID_TOKEN_REQUEST"))
        .collect();
    let run = push(&acr, &oidc, &vars, "team/app").await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("ACTIONS_ID_TOKEN_REQUEST_URL, ACTIONS_ID_TOKEN_REQUEST_TOKEN not set")
            && run.stderr.contains("`permissions: id-token: write`"),
        "{}",
        run.stderr
    );
    assert!(oidc.take_requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_request_token_and_expired_ci_token_say_what_to_fix() {
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let oidc = CiOidc::start(Ci::GitHub.trust(GITHUB_SUBJECT), jobs(), "unused".into()).await;
    let mut vars = Ci::GitHub.env(&oidc);
    vars.retain(|(name, _)| *name != "ACTIONS_ID_TOKEN_REQUEST_TOKEN");
    vars.push((
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "a-stale-request-token".into(),
    ));
    let run = push(&acr, &oidc, &vars, "team/app").await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("GitHub Actions refused the OIDC token request (HTTP 401")
            && run.stderr.contains("permissions: id-token: write"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("a-stale-request-token"),
        "{}",
        run.stderr
    );

    let mut vars = Ci::Pipelines.env(&oidc);
    vars.retain(|(name, _)| *name != "SYSTEM_ACCESSTOKEN");
    vars.push(("SYSTEM_ACCESSTOKEN", "a-token-of-another-build".into()));
    let run = push(&acr, &oidc, &vars, "team/app").await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("Azure Pipelines refused the OIDC token request (HTTP 401")
            && run
                .stderr
                .contains("SYSTEM_ACCESSTOKEN: $(System.AccessToken)"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("a-token-of-another-build"),
        "{}",
        run.stderr
    );

    oidc.jobs(|jobs| jobs.ci_token_ttl = -60);
    let run = push(&acr, &oidc, &Ci::GitHub.env(&oidc), "team/app").await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("AADSTS700024"), "{}", run.stderr);
}

/// A job that outlives its Entra token: every exchange presents a CI token fetched for it, so one
/// that expired meanwhile is never reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_job_exchanges_a_fresh_ci_token_when_the_entra_token_runs_out() {
    if alone::ran_in_child() {
        return;
    }
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let access_token = acr.entra_token(TENANT, 3600);
    let oidc = CiOidc::start(
        Ci::GitHub.trust(GITHUB_SUBJECT),
        jobs(),
        access_token.clone(),
    )
    .await;
    // Shorter than the credential's reuse margin: each call needs a new exchange.
    oidc.jobs(|jobs| jobs.entra_expires_in = 120);
    let bin = tempfile::tempdir().unwrap();
    std::env::set_var("PATH", bin.path());
    for (name, value) in Ci::GitHub.env(&oidc) {
        std::env::set_var(name, value);
    }
    std::env::set_var("AZURE_AUTHORITY_HOST", &oidc.base);
    std::env::set_var("SSL_CERT_FILE", &oidc.ca_file);
    use spin_aks::azure::credential::{AzureCredential, CredentialSource, ACR_SCOPE};
    let credential = AzureCredential::from_env();
    for _ in 0..2 {
        let token = credential.token(ACR_SCOPE).await.unwrap();
        assert_eq!(token.source, CredentialSource::GitHubActions);
        assert_eq!(token.token.expose(), access_token);
    }
    let assertions = oidc.assertions();
    assert_eq!(assertions.len(), 2);
    assert_ne!(
        assertions[0], assertions[1],
        "the second exchange must not reuse the first CI token"
    );

    // A token that stays valid past the margin is reused: no third exchange.
    oidc.jobs(|jobs| jobs.entra_expires_in = 3599);
    let credential = AzureCredential::from_env();
    credential.token(ACR_SCOPE).await.unwrap();
    credential.token(ACR_SCOPE).await.unwrap();
    assert_eq!(oidc.assertions().len(), 3);
}

/// Subcommands whose stdout is the result itself, never a JSON report (src/output.rs).
const NO_REPORT: [&str; 3] = ["completions", "man", "cluster-token"];

#[test]
fn every_command_with_a_json_report_has_a_published_schema_whose_id_is_its_name() {
    use clap::CommandFactory;
    fn leaves(command: &clap::Command, prefix: &str, names: &mut Vec<String>) {
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("{prefix}{}", sub.get_name());
            if sub.has_subcommands() {
                leaves(sub, &format!("{name}-"), names);
            } else {
                names.push(name);
            }
        }
    }
    let mut names = Vec::new();
    leaves(&spin_aks::cli::Cli::command(), "", &mut names);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schemas/v1");
    let mut published: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    published.sort();
    let mut wanted: Vec<String> = names
        .into_iter()
        .filter(|name| !NO_REPORT.contains(&name.as_str()))
        .collect();
    wanted.sort();
    assert_eq!(
        published, wanted,
        "docs/schemas/v1 holds one schema per command with a JSON report (named like `cluster-install`)"
    );
    for name in &published {
        let schema: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap())
                .unwrap();
        let id = format!("spin-aks/v1/{name}");
        assert_eq!(schema["$id"], id.as_str());
        assert_eq!(schema["properties"]["schema"]["const"], id.as_str());
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
    }
}

/// Under `GITHUB_ACTIONS=true` a spin.toml warning is an annotation on its line, relative to the
/// workspace, and the build's digest goes to the step summary; elsewhere the same plain warning.
#[test]
fn github_actions_sees_spin_toml_warnings_on_their_line_and_a_step_summary() {
    let home = tempfile::tempdir().unwrap();
    let app = home.path().join("repo/app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("app.wasm"), support::apps::wasm(1)).unwrap();
    std::fs::write(
        app.join("spin.toml"),
        "spin_manifest_version = 2\n[application]\nname = \"annotated\"\nversion = \"1.0.0\"\n\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = \"api\"\n\n\
         [component.api]\nsource = \"app.wasm\"\nfiles = [\"nothing/**/*.txt\"]\n",
    )
    .unwrap();
    let summary = home.path().join("summary.md");
    let build = |github: bool| {
        let mut cmd = support::spin_aks_isolated(home.path());
        cmd.args(["--output", "json", "build", "-f"]).arg(&app);
        if github {
            cmd.env("GITHUB_ACTIONS", "true")
                .env("GITHUB_WORKSPACE", home.path().join("repo"))
                .env("GITHUB_STEP_SUMMARY", &summary);
        } else {
            cmd.env_remove("GITHUB_ACTIONS")
                .env_remove("GITHUB_STEP_SUMMARY");
        }
        cmd.output().unwrap()
    };
    let output = build(true);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = support::json_stdout(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.lines().any(|line| line
            == "::warning file=app/spin.toml,line=9::component `api`: files entry `nothing/**/*.txt` matches no file"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("warning: component"),
        "annotation instead of the plain line: {stderr}"
    );
    let markdown = std::fs::read_to_string(&summary).unwrap();
    assert!(
        markdown.starts_with("### spin-aks build\n")
            && markdown.contains(&format!(
                "| Digest | `{}` |",
                report["digest"].as_str().unwrap()
            )),
        "{markdown}"
    );

    let plain = build(false);
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(
        stderr.contains("warning: component `api`: files entry") && !stderr.contains("::warning"),
        "{stderr}"
    );
}

/// In a CI log (stderr not a terminal) a push says how far it got as plain lines, never bar redraws.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_a_push_prints_plain_progress_lines() {
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let access_token = acr.entra_token(TENANT, 3600);
    let oidc = CiOidc::start(Ci::GitHub.trust(GITHUB_SUBJECT), jobs(), access_token).await;
    let mut vars = Ci::GitHub.env(&oidc);
    vars.push(("SPIN_AKS_PROGRESS_SECONDS", "0.02".into()));
    let run = push_sized(&acr, &oidc, &vars, "big/app", &[6_000_000, 6_000_000]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("pushing: "))
        .collect();
    assert!(!lines.is_empty(), "{}", run.stderr);
    assert!(
        lines.iter().all(|l| l.contains(" of ") && l.contains("%")),
        "{lines:?}"
    );
    assert!(
        !run.stderr.contains('\r') && !run.stderr.contains("\x1b["),
        "no terminal control in a log"
    );
}
