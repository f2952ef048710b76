//! The Azure sign-in path against fakes that speak the real shapes: a fake `az` on PATH, a fake
//! managed identity endpoint, and a token service in ACR's shape in front of the real `docker-registry`.

use crate::support;
use crate::support::alone;

use crate::support::acr::{write_fake_az, AcrFake, IDENTITY_HEADER, TENANT};
use crate::support::entra::{Accept, FakeEntra};
use sha2::{Digest, Sha256};
use spin_aks::azure::acr::{
    acr_access_token, acr_refresh_token, repository_scope, AcrAuthError, ACR_USERNAME,
};
use spin_aks::azure::credential::{AzureCredential, CredentialSource, ACR_SCOPE};
use spin_aks::secret::Secret;
use std::path::{Path, PathBuf};
use std::time::Duration;

const AZURE_VARS: &[&str] = &[
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "PATH",
    "SSL_CERT_FILE",
];

/// An environment with no Azure configuration, PATH holding only an empty `bin` dir, and IMDS
/// pointed at a closed loopback port (tests never reach the real metadata address). Only in a
/// test's own process ([`alone`]).
struct IsolatedEnv {
    bin: tempfile::TempDir,
}

impl IsolatedEnv {
    async fn new() -> Self {
        alone::assert_in_child();
        for name in AZURE_VARS {
            std::env::remove_var(name);
        }
        let bin = tempfile::tempdir().unwrap();
        std::env::set_var("PATH", bin.path());
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        std::env::set_var(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://{closed}"),
        );
        IsolatedEnv { bin }
    }

    fn set(&self, name: &str, value: &str) {
        std::env::set_var(name, value);
    }

    fn bin(&self) -> &Path {
        self.bin.path()
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn push_scope(repository: &str) -> Vec<String> {
    vec![repository_scope(repository, &["pull", "push"])]
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Uploads one blob with the bearer token, then HEADs it: the registry accepted the token for push.
async fn upload_blob(login_server: &str, repository: &str, token: &Secret, blob: &[u8]) {
    let http = http();
    let digest = sha256(blob);
    let started = http
        .post(format!(
            "http://{login_server}/v2/{repository}/blobs/uploads/"
        ))
        .bearer_auth(token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202, "{}", started.text().await.unwrap());
    let location = started.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("http://{login_server}/")),
        "upload Location must point back at the front: {location}"
    );
    let put = http
        .put(format!("{location}&digest={digest}"))
        .bearer_auth(token.expose())
        .body(blob.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201, "{}", put.text().await.unwrap());
    let head = http
        .head(format!(
            "http://{login_server}/v2/{repository}/blobs/{digest}"
        ))
        .bearer_auth(token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
}

fn assert_no_secret(message: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !message.contains(secret),
            "a token leaked into the error: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_az_on_path_signs_in_and_the_registry_accepts_the_exchanged_token_for_push() {
    if alone::ran_in_child() {
        return;
    }
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let env = IsolatedEnv::new().await;
    let entra = acr.entra_token(TENANT, 3600);
    write_fake_az(env.bin(), &entra, TENANT);

    let credential = AzureCredential::from_env();
    let token = credential.token(ACR_SCOPE).await.unwrap();
    assert_eq!(token.source, CredentialSource::AzureCli);
    assert_eq!(token.token.expose(), entra);
    let args = std::fs::read_to_string(env.bin().join("az.args")).unwrap();
    assert!(
        args.contains("account get-access-token") && args.contains(&format!("--scope {ACR_SCOPE}")),
        "az was called as: {args}"
    );

    let refresh = acr_refresh_token(&http(), &acr.login_server, &credential)
        .await
        .unwrap();
    let access = acr_access_token(
        &http(),
        &acr.login_server,
        &refresh,
        &push_scope("team/app"),
    )
    .await
    .unwrap();
    assert!(access.expires_within(Duration::from_secs(2 * 3600)));
    assert!(!access.expires_within(Duration::from_secs(60)));
    upload_blob(
        &acr.login_server,
        "team/app",
        &access.token,
        b"hello from spin-aks",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_challenges_point_at_the_token_service() {
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let response = http()
        .get(format!("http://{}/v2/", acr.login_server))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with(&format!(
            "Bearer realm=\"http://{}/oauth2/token\"",
            acr.login_server
        )),
        "{challenge}"
    );
    assert!(challenge.contains(&format!("service=\"{}\"", acr.login_server)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_endpoint_supplies_the_entra_token() {
    if alone::ran_in_child() {
        return;
    }
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let env = IsolatedEnv::new().await;
    let entra = acr.entra_token(TENANT, 3600);
    acr.policy(|policy| policy.managed_identity_token = Some(entra.clone()));
    env.set("IDENTITY_ENDPOINT", &acr.identity_endpoint());
    env.set("IDENTITY_HEADER", IDENTITY_HEADER);

    let credential = AzureCredential::from_env();
    let token = credential.token(ACR_SCOPE).await.unwrap();
    assert_eq!(token.source, CredentialSource::ManagedIdentity);
    assert_eq!(token.token.expose(), entra);

    let refresh = acr_refresh_token(&http(), &acr.login_server, &credential)
        .await
        .unwrap();
    let access = acr_access_token(&http(), &acr.login_server, &refresh, &push_scope("mi/app"))
        .await
        .unwrap();
    upload_blob(&acr.login_server, "mi/app", &access.token, b"managed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_refusal_is_listed_with_its_endpoint_and_the_chain_moves_on() {
    if alone::ran_in_child() {
        return;
    }
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let env = IsolatedEnv::new().await;
    env.set("IDENTITY_ENDPOINT", &acr.identity_endpoint());
    env.set("IDENTITY_HEADER", "not-the-expected-header");

    let err = AzureCredential::from_env()
        .token(ACR_SCOPE)
        .await
        .unwrap_err();
    let message = err.to_string();
    let expected = format!(
        "managed identity (IDENTITY_ENDPOINT {}): ManagedIdentityCredential authentication failed.",
        acr.identity_endpoint()
    );
    assert!(message.contains(&expected), "{message}");
    assert!(message.contains("Azure CLI (az):"), "{message}");
    assert_no_secret(&message, &["not-the-expected-header"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_entra_token_is_refused_with_the_service_message_and_no_token() {
    if alone::ran_in_child() {
        return;
    }
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let env = IsolatedEnv::new().await;
    let expired = acr.entra_token(TENANT, -600);
    write_fake_az(env.bin(), &expired, TENANT);

    let err = acr_refresh_token(&http(), &acr.login_server, &AzureCredential::from_env())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("refused the Entra token"), "{message}");
    assert!(message.contains("has expired"), "{message}");
    assert!(matches!(
        err.downcast_ref::<AcrAuthError>(),
        Some(AcrAuthError::ExchangeRefused { status: 401, .. })
    ));
    assert_no_secret(&format!("{err:#} {err:?}"), &[&expired]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_entra_token_is_refused() {
    if alone::ran_in_child() {
        return;
    }
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let env = IsolatedEnv::new().await;
    let forged = "eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ4In0.forged";
    write_fake_az(env.bin(), forged, TENANT);

    let err = acr_refresh_token(&http(), &acr.login_server, &AzureCredential::from_env())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("invalid or could not be validated"),
        "{message}"
    );
    assert_no_secret(&format!("{err:#} {err:?}"), &[forged]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_refused_for_another_tenant_names_the_tenant_and_azure_tenant_id() {
    if alone::ran_in_child() {
        return;
    }
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let env = IsolatedEnv::new().await;
    let other_tenant = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    let entra = acr.entra_token(other_tenant, 3600);
    write_fake_az(env.bin(), &entra, other_tenant);

    let err = acr_refresh_token(&http(), &acr.login_server, &AzureCredential::from_env())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains(other_tenant), "{message}");
    assert!(message.contains("AZURE_TENANT_ID"), "{message}");
    assert!(message.contains("az login --tenant"), "{message}");
    assert_no_secret(&format!("{err:#} {err:?}"), &[&entra]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_scope_denied_explains_acr_push_and_abac_repository_roles() {
    if alone::ran_in_child() {
        return;
    }
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let env = IsolatedEnv::new().await;
    write_fake_az(env.bin(), &acr.entra_token(TENANT, 3600), TENANT);
    acr.policy(|policy| {
        policy.deny_push.insert("locked/app".into());
    });

    let refresh = acr_refresh_token(&http(), &acr.login_server, &AzureCredential::from_env())
        .await
        .unwrap();
    let err = acr_access_token(
        &http(),
        &acr.login_server,
        &refresh,
        &push_scope("locked/app"),
    )
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("AcrPush"), "{message}");
    assert!(
        message.contains("Container Registry Repository Writer"),
        "{message}"
    );
    assert!(
        message.contains("`locked/app`") && message.contains("`push`"),
        "{message}"
    );
    assert!(matches!(
        err.downcast_ref::<AcrAuthError>(),
        Some(AcrAuthError::Denied { .. })
    ));
    assert_no_secret(&format!("{err:#} {err:?}"), &[refresh.expose()]);

    // Pull alone is still granted.
    acr_access_token(
        &http(),
        &acr.login_server,
        &refresh,
        &[repository_scope("locked/app", &["pull"])],
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_access_tokens_report_that_they_need_refreshing() {
    if alone::ran_in_child() {
        return;
    }
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let env = IsolatedEnv::new().await;
    write_fake_az(env.bin(), &acr.entra_token(TENANT, 3600), TENANT);
    acr.policy(|policy| policy.access_token_ttl = Duration::from_secs(30));

    let refresh = acr_refresh_token(&http(), &acr.login_server, &AzureCredential::from_env())
        .await
        .unwrap();
    let access = acr_access_token(
        &http(),
        &acr.login_server,
        &refresh,
        &push_scope("short/app"),
    )
    .await
    .unwrap();
    assert!(access.expires_within(Duration::from_secs(60)));
    assert!(!access.expires_within(Duration::from_secs(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_at_all_lists_every_source_tried_and_suggests_az_login() {
    if alone::ran_in_child() {
        return;
    }
    let _env = IsolatedEnv::new().await;
    let started = std::time::Instant::now();
    let err = AzureCredential::from_env()
        .token(ACR_SCOPE)
        .await
        .unwrap_err();
    let message = err.to_string();
    for tried in [
        "environment service principal: skipped, AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET not set",
        "workload identity: skipped",
        "managed identity: no instance metadata service at http://127.0.0.1:",
        "Azure CLI (az):",
        "Azure Developer CLI (azd):",
        "`az login`",
    ] {
        assert!(message.contains(tried), "missing {tried:?} in:\n{message}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the chain took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_service_principal_refuses_a_plain_http_authority_host_and_the_chain_moves_on()
{
    if alone::ran_in_child() {
        return;
    }
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let env = IsolatedEnv::new().await;
    env.set("AZURE_TENANT_ID", TENANT);
    env.set("AZURE_CLIENT_ID", "99999999-8888-7777-6666-555555555555");
    env.set("AZURE_CLIENT_SECRET", "sp-secret-value");
    env.set(
        "AZURE_AUTHORITY_HOST",
        &format!("http://{}", acr.login_server),
    );
    let entra = acr.entra_token(TENANT, 3600);
    write_fake_az(env.bin(), &entra, TENANT);

    let token = AzureCredential::from_env().token(ACR_SCOPE).await.unwrap();
    assert_eq!(token.source, CredentialSource::AzureCli);

    std::fs::remove_file(env.bin().join("az")).unwrap();
    let err = AzureCredential::from_env()
        .token(ACR_SCOPE)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("environment service principal: authority host doesn't use HTTPS"),
        "{message}"
    );
    assert_no_secret(&message, &["sp-secret-value"]);
}

const SP_CLIENT_ID: &str = "99999999-8888-7777-6666-555555555555";

/// A fake Entra endpoint for the registry's tenant, trusted through `SSL_CERT_FILE`, accepting
/// `credential` and handing out a fresh Entra token the fake ACR knows.
async fn trusted_entra(acr: &AcrFake, env: &IsolatedEnv, credential: &str) -> (FakeEntra, String) {
    let access_token = acr.entra_token(TENANT, 3600);
    let entra = FakeEntra::start(Accept {
        tenant: TENANT.into(),
        client_id: SP_CLIENT_ID.into(),
        credential: credential.into(),
        access_token: access_token.clone(),
    })
    .await;
    env.set("AZURE_AUTHORITY_HOST", &entra.authority_host);
    env.set("SSL_CERT_FILE", entra.ca_file.to_str().unwrap());
    env.set("AZURE_TENANT_ID", TENANT);
    env.set("AZURE_CLIENT_ID", SP_CLIENT_ID);
    (entra, access_token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_service_principal_signs_in_at_the_authority_host_and_pushes() {
    if alone::ran_in_child() {
        return;
    }
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let env = IsolatedEnv::new().await;
    let (_entra, access_token) = trusted_entra(&acr, &env, "sp-secret-value").await;
    env.set("AZURE_CLIENT_SECRET", "sp-secret-value");

    let credential = AzureCredential::from_env();
    let token = credential.token(ACR_SCOPE).await.unwrap();
    assert_eq!(token.source, CredentialSource::EnvironmentServicePrincipal);
    assert_eq!(token.token.expose(), access_token);

    let refresh = acr_refresh_token(&http(), &acr.login_server, &credential)
        .await
        .unwrap();
    let access = acr_access_token(&http(), &acr.login_server, &refresh, &push_scope("sp/app"))
        .await
        .unwrap();
    upload_blob(
        &acr.login_server,
        "sp/app",
        &access.token,
        b"service principal",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_client_secret_is_reported_with_entra_message_and_never_printed() {
    if alone::ran_in_child() {
        return;
    }
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let env = IsolatedEnv::new().await;
    let (_entra, _) = trusted_entra(&acr, &env, "the-right-secret").await;
    env.set("AZURE_CLIENT_SECRET", "a-wrong-secret-value");

    let err = AzureCredential::from_env()
        .token(ACR_SCOPE)
        .await
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("environment service principal: ClientSecretCredential authentication failed. AADSTS7000215: Invalid client secret"),
        "{message}"
    );
    assert_no_secret(&message, &["a-wrong-secret-value", "the-right-secret"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_presents_the_federated_token_file() {
    if alone::ran_in_child() {
        return;
    }
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    let env = IsolatedEnv::new().await;
    let federated = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.sig";
    let (_entra, access_token) = trusted_entra(&acr, &env, federated).await;
    let token_file = acr.scratch("workload").join("token");
    std::fs::write(&token_file, federated).unwrap();
    env.set("AZURE_FEDERATED_TOKEN_FILE", token_file.to_str().unwrap());

    let credential = AzureCredential::from_env();
    let token = credential.token(ACR_SCOPE).await.unwrap();
    assert_eq!(token.source, CredentialSource::WorkloadIdentity);
    assert_eq!(token.token.expose(), access_token);
    acr_refresh_token(&http(), &acr.login_server, &credential)
        .await
        .unwrap();
}

/// A one-layer OCI image layout with tag `v1`, for skopeo to push.
fn write_oci_layout(dir: &Path) -> PathBuf {
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let digest = sha256(bytes);
        std::fs::write(blobs.join(&digest["sha256:".len()..]), bytes).unwrap();
        digest
    };
    let mut tar = tar::Builder::new(Vec::new());
    let content = b"spin-aks test layer\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "hello.txt", &content[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let layer = gz.finish().unwrap();
    let config = format!(
        r#"{{"architecture":"wasm","os":"wasip1","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        sha256(&tar)
    );
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}]}}"#,
        put(config.as_bytes()),
        config.len(),
        put(&layer),
        layer.len()
    );
    let manifest_digest = put(manifest.as_bytes());
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"v1"}}}}]}}"#,
            manifest.len()
        ),
    )
    .unwrap();
    layout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pushes_and_inspects_with_the_refresh_token_as_basic_password() {
    if alone::ran_in_child() {
        return;
    }
    let Some(acr) = AcrFake::start().await else {
        return;
    };
    if which_skopeo().is_none() {
        support::skip("skopeo is not installed (Debian's skopeo package)");
        return;
    }
    let refresh = {
        let env = IsolatedEnv::new().await;
        write_fake_az(env.bin(), &acr.entra_token(TENANT, 3600), TENANT);
        acr_refresh_token(&http(), &acr.login_server, &AzureCredential::from_env())
            .await
            .unwrap()
    };
    let layout = write_oci_layout(&acr.scratch("skopeo"));
    let creds = format!("{ACR_USERNAME}:{}", refresh.expose());
    let image = format!("docker://{}/skopeo/app:v1", acr.login_server);

    let copy = skopeo(&[
        "--insecure-policy",
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &format!("oci:{}:v1", layout.display()),
        &image,
    ])
    .await;
    assert!(copy.status.success(), "skopeo copy: {}", stderr(&copy));

    let inspect = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &creds,
        &image,
    ])
    .await;
    assert!(
        inspect.status.success(),
        "skopeo inspect: {}",
        stderr(&inspect)
    );
    let raw = String::from_utf8(inspect.stdout).unwrap();
    assert!(
        raw.contains("application/vnd.oci.image.layer.v1.tar+gzip"),
        "{raw}"
    );

    let anonymous = skopeo(&["inspect", "--raw", "--tls-verify=false", &image]).await;
    assert!(
        !anonymous.status.success(),
        "the registry must require a token"
    );
}

fn which_skopeo() -> Option<PathBuf> {
    ["/usr/bin/skopeo", "/usr/local/bin/skopeo"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

async fn skopeo(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(which_skopeo().unwrap())
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .await
        .unwrap()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
