//! The Key Vault route of `--sign`: `KeyVaultSigner` against the fake Key Vault (certificates,
//! their backing secrets, `keys/sign` made by openssl on the digest), signed in through the real
//! credential chain (a fake `az`, and GitHub Actions' OIDC token exchanged at a fake Entra), and
//! the signatures checked by `attest::notation::verify` and by the independent `notation verify`.
//! Every test changes the process environment, so each runs alone in a child process.

use std::path::Path;
use std::time::SystemTime;

use rustls::pki_types::CertificateDer;
use spin_aks::attest::key_vault::{KeyVaultKey, KeyVaultSigner};
use spin_aks::attest::notation::{self, Algorithm, Signer as _};
use spin_aks::error::exit_code;
use spin_aks::oci::{Descriptor, Digest};

use crate::notation::test_pki::{self, KeyKind, Leaf, Pki, SUBJECT_BASE};
use crate::notation::{policy, signer_identity};
use crate::support::acr::TENANT;
use crate::support::alone;
use crate::support::arm::write_scoped_az;
use crate::support::ci_oidc::{CiOidc, Jobs, Trust, GITHUB_ISSUER, GITHUB_REQUEST_TOKEN};
use crate::support::keyvault::{self, FakeKeyVault, PfxEncryption, VAULT_SCOPE};
use crate::support::{self, registry::Registry};

const KV_TOKEN: &str = "kv-sign-token-7c1e55";
const CLIENT_ID: &str = "3f2b1c4d-1111-4222-8333-9444555566aa";
const GITHUB_SUBJECT: &str = "repo:org/app:ref:refs/heads/main";
/// The fix every unreadable backing secret names.
const GIVE_PEM: &str = "give the chain as PEM with --sign-cert";

/// Only in a test's own process: nothing of the host's sign-in or CI left in the environment,
/// PATH holding `bin` only, IMDS at a closed port, then `vars`.
fn isolate(bin: &Path, vars: &[(&str, String)]) {
    alone::assert_in_child();
    for (name, _) in std::env::vars_os() {
        if !["HOME", "TMPDIR", "CI"].iter().any(|keep| name == *keep) {
            std::env::remove_var(name);
        }
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::env::set_var("PATH", bin);
    std::env::set_var("SPIN_AKS_ARM_DELAY_SCALE", "0");
    std::env::set_var(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        format!("http://{closed}"),
    );
    for (name, value) in vars {
        std::env::set_var(name, value);
    }
}

/// A fake vault and a sign-in (a fake `az` answering for the vault's scope) in this process; or
/// `None` when openssl (which signs in the fake) is missing.
async fn vault_signed_in_with_az() -> Option<(FakeKeyVault, tempfile::TempDir)> {
    support::tool("openssl")?;
    let kv = FakeKeyVault::start(KV_TOKEN).await;
    let bin = tempfile::tempdir().unwrap();
    write_scoped_az(bin.path(), &[(VAULT_SCOPE, KV_TOKEN)]);
    isolate(bin.path(), &[]);
    Some((kv, bin))
}

/// A certificate put into the fake vault: its PKI, the key URL and the version.
struct InVault {
    pki: Pki,
    key: KeyVaultKey,
    version: String,
}

/// Puts `pki` into `kv` as the certificate `name`. The backing secret holds the key, then the
/// root before the leaf: Key Vault keeps a merged chain in the order it was given, so the reader
/// must order it.
fn put(kv: &FakeKeyVault, dir: &Path, name: &str, pki: Pki) -> InVault {
    let key_file = dir.join(format!("{name}.key.pem"));
    std::fs::write(&key_file, &pki.key_pem).unwrap();
    let leaf_pem = pki.chain_pem.strip_suffix(&pki.root_pem).unwrap();
    let secret = format!("{}{}{leaf_pem}", pki.key_pem, pki.root_pem);
    let version = kv.add_certificate(name, &key_file, pki.chain_der[0].clone(), secret);
    let key = KeyVaultKey::parse(&format!("{}keys/{name}", kv.url)).unwrap();
    InVault { pki, key, version }
}

/// Every way a PFX of [`keyvault::pkcs12`] protects what it holds.
const ENCRYPTIONS: [PfxEncryption; 5] = [
    PfxEncryption::Plain,
    PfxEncryption::LegacyRc2,
    PfxEncryption::TripleDes,
    PfxEncryption::Aes,
    PfxEncryption::KeyInCamellia,
];

/// [`put`], then the backing secret made PKCS#12, as a certificate of Key Vault's default policy
/// keeps it: a PFX with an empty password holding the key, the leaf and the root, protected by
/// `encryption`. The chain is nowhere else.
fn put_pkcs12(
    kv: &FakeKeyVault,
    dir: &Path,
    name: &str,
    pki: Pki,
    encryption: PfxEncryption,
) -> InVault {
    let pfx = keyvault::pkcs12(&pki.key_pem, &pki.chain_pem, encryption, "");
    let cert = put(kv, dir, name, pki);
    kv.keep_as_pkcs12(name, &pfx);
    cert
}

fn subject_descriptor() -> Descriptor {
    Descriptor::new(
        spin_aks::oci::media_types::IMAGE_MANIFEST,
        Digest::of(b"a manifest signed in Key Vault"),
        1234,
    )
}

fn ders(pki: &Pki) -> Vec<CertificateDer<'static>> {
    pki.chain_der
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect()
}

/// The base64 lines of a PEM private key: none may appear in any message.
pub(crate) fn key_lines(key_pem: &str) -> Vec<&str> {
    key_pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .collect()
}

fn assert_no_secret(text: &str, key_pem: &str) {
    assert!(!text.contains(KV_TOKEN), "the token leaked: {text}");
    for line in key_lines(key_pem) {
        assert!(!text.contains(line), "key material leaked: {text}");
    }
}

#[tokio::test]
async fn key_vault_signs_with_rsa_and_ec_keys_and_the_chain_from_the_backing_secret() {
    if alone::ran_in_child() {
        return;
    }
    let Some((kv, bin)) = vault_signed_in_with_az().await else {
        return;
    };
    let subject = subject_descriptor();
    // signature-specification.md §Algorithm Selection: RSA → PS*, EC → ES* by key size.
    let cases = [
        (KeyKind::Rsa2048, Algorithm::Ps256),
        (KeyKind::Rsa3072, Algorithm::Ps384),
        (KeyKind::P256, Algorithm::Es256),
        (KeyKind::P384, Algorithm::Es384),
        (KeyKind::P521, Algorithm::Es512),
    ];
    for (i, (kind, algorithm)) in cases.into_iter().enumerate() {
        let name = format!("signer-{i}");
        let pki = test_pki::make("spin-aks test root", &Leaf::new(kind));
        let cert = put(&kv, bin.path(), &name, pki);
        // The newest version, and the version named in the URL.
        let versioned = KeyVaultKey::parse(&format!("{}/{}", cert.key, cert.version)).unwrap();
        for key in [&cert.key, &versioned] {
            let signer = KeyVaultSigner::connect(key, None).await.unwrap();
            assert_eq!(signer.algorithm(), algorithm, "{kind:?}");
            assert_eq!(signer.chain(), ders(&cert.pki), "{kind:?}: leaf, then root");
            assert_no_secret(&format!("{signer:?}"), &cert.pki.key_pem);
            let signature = notation::sign(&subject, &signer, SystemTime::now())
                .await
                .unwrap_or_else(|e| panic!("{kind:?}: {e:#}"));
            let verified = notation::verify(
                &signature.envelope,
                &subject,
                &policy(&cert.pki.root_pem, &signer_identity()),
                SystemTime::now(),
            )
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert_eq!(verified.algorithm, algorithm);
        }
        let version = &cert.version;
        assert_eq!(kv.count("GET", &format!("/certificates/{name}")), 1);
        assert_eq!(
            kv.count("GET", &format!("/certificates/{name}/{version}")),
            1
        );
        assert_eq!(kv.count("GET", &format!("/secrets/{name}/{version}")), 2);
        assert_eq!(
            kv.count("POST", &format!("/keys/{name}/{version}/sign")),
            2,
            "one sign per signature"
        );
    }

    // A self-signed certificate is its own chain: its backing secret is not read.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    for (kind, value) in [
        (rcgen::DnType::CountryName, "US"),
        (rcgen::DnType::StateOrProvinceName, "WA"),
        (rcgen::DnType::OrganizationName, "spin-aks tests"),
        (rcgen::DnType::CommonName, "self-signed signer"),
    ] {
        params.distinguished_name.push(kind, value);
    }
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2049, 12, 31);
    let cert = params.self_signed(&key).unwrap();
    let key_file = bin.path().join("self.key.pem");
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let version = kv.add_certificate("self", &key_file, cert.der().to_vec(), String::new());
    let signer = KeyVaultSigner::connect(
        &KeyVaultKey::parse(&format!("{}keys/self", kv.url)).unwrap(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(signer.chain(), [cert.der().clone()]);
    let signature = notation::sign(&subject, &signer, SystemTime::now())
        .await
        .unwrap();
    let trust = notation::TrustPolicy {
        roots: vec![cert.der().clone()],
        subject: Some(format!("{SUBJECT_BASE},CN=self-signed signer")),
    };
    notation::verify(&signature.envelope, &subject, &trust, SystemTime::now()).unwrap();
    assert_eq!(kv.count("GET", &format!("/secrets/self/{version}")), 0);
}

/// A CA-issued certificate whose chain is only in its PKCS#12 backing secret signs without
/// `--sign-cert`, whichever way the PFX protects its certificates; the key bag beside them is
/// never decrypted (`KeyInCamellia` holds it in a cipher spin-aks does not implement).
#[tokio::test]
async fn key_vault_reads_the_chain_from_a_pkcs12_backing_secret_in_every_encryption() {
    if alone::ran_in_child() {
        return;
    }
    let Some((kv, bin)) = vault_signed_in_with_az().await else {
        return;
    };
    let subject = subject_descriptor();
    for (i, encryption) in ENCRYPTIONS.into_iter().enumerate() {
        let (kind, algorithm) = match i % 2 {
            0 => (KeyKind::Rsa2048, Algorithm::Ps256),
            _ => (KeyKind::P256, Algorithm::Es256),
        };
        let name = format!("pfx-{i}");
        let pki = test_pki::make("spin-aks test root", &Leaf::new(kind));
        let cert = put_pkcs12(&kv, bin.path(), &name, pki, encryption);
        let signer = KeyVaultSigner::connect(&cert.key, None)
            .await
            .unwrap_or_else(|e| panic!("{encryption:?}: {e:#}"));
        assert_eq!(signer.algorithm(), algorithm, "{encryption:?}");
        assert_eq!(
            signer.chain(),
            ders(&cert.pki),
            "{encryption:?}: leaf, then root"
        );
        assert_no_secret(&format!("{signer:?}"), &cert.pki.key_pem);
        let signature = notation::sign(&subject, &signer, SystemTime::now())
            .await
            .unwrap_or_else(|e| panic!("{encryption:?}: {e:#}"));
        notation::verify(
            &signature.envelope,
            &subject,
            &policy(&cert.pki.root_pem, &signer_identity()),
            SystemTime::now(),
        )
        .unwrap_or_else(|e| panic!("{encryption:?}: {e}"));
        assert_eq!(
            kv.count("GET", &format!("/secrets/{name}/{}", cert.version)),
            1,
            "{encryption:?}: the backing secret read once"
        );
    }
}

#[tokio::test]
async fn sign_cert_replaces_the_vault_chain_and_must_begin_with_the_vault_certificate() {
    if alone::ran_in_child() {
        return;
    }
    let Some((kv, bin)) = vault_signed_in_with_az().await else {
        return;
    };
    let cert = put(
        &kv,
        bin.path(),
        "given-chain",
        test_pki::make("spin-aks test root", &Leaf::new(KeyKind::P256)),
    );
    let signer = KeyVaultSigner::connect(&cert.key, Some(ders(&cert.pki)))
        .await
        .unwrap();
    assert_eq!(signer.chain(), ders(&cert.pki));
    let subject = subject_descriptor();
    let signature = notation::sign(&subject, &signer, SystemTime::now())
        .await
        .unwrap();
    let trust = policy(&cert.pki.root_pem, &signer_identity());
    notation::verify(&signature.envelope, &subject, &trust, SystemTime::now()).unwrap();
    assert_eq!(
        kv.count("GET", &format!("/secrets/given-chain/{}", cert.version)),
        0,
        "--sign-cert gives the chain: the backing secret is not read"
    );

    // Another certificate first (the same CA, another key and name): bad input naming both.
    let other = test_pki::make(
        "spin-aks test root",
        &Leaf {
            common_name: "someone else".into(),
            ..Leaf::new(KeyKind::P256)
        },
    );
    let err = KeyVaultSigner::connect(&cert.key, Some(ders(&other)))
        .await
        .unwrap_err();
    assert_eq!(exit_code(&err), 2, "{err:#}");
    let message = err.to_string();
    for needle in [
        "--sign-cert",
        "CN=someone else",
        "CN=spin-aks test signer",
        &cert.key.to_string(),
    ] {
        assert!(message.contains(needle), "no `{needle}` in: {message}");
    }
}

/// What a refusal case sets up in the vault.
#[derive(Debug)]
enum Refused {
    NoCertificate,
    NoSuchVersion,
    Pkcs12NotBase64,
    Pkcs12NotPfx,
    Pkcs12BadMac,
    CertificateReadForbidden,
    SignForbidden,
    StaleToken,
}

#[tokio::test]
async fn refusals_name_the_key_url_the_role_or_the_fix_and_never_key_material() {
    if alone::ran_in_child() {
        return;
    }
    let Some((kv, bin)) = vault_signed_in_with_az().await else {
        return;
    };
    let cert = put(
        &kv,
        bin.path(),
        "refusals",
        test_pki::make("spin-aks test root", &Leaf::new(KeyKind::Rsa2048)),
    );
    let pem_value = kv.vault(|v| v.certificates["refusals"].secret_value.clone());
    // A PFX exported with a password: its MAC fails with the empty one Key Vault uses.
    let password_protected = keyvault::pkcs12(
        &cert.pki.key_pem,
        &cert.pki.chain_pem,
        PfxEncryption::Aes,
        "hunter2",
    );
    let absent = KeyVaultKey::parse(&format!("{}keys/absent", kv.url)).unwrap();
    let wrong_version = KeyVaultKey::parse(&format!(
        "{}keys/refusals/0123456789abcdef0123456789abcdef",
        kv.url
    ))
    .unwrap();
    let crypto_user = "Key Vault Crypto User role (12338af0-0e69-4776-bea7-57ae8d297424)";
    let certificate_user = "Key Vault Certificate User role (db79e9a7-68ee-4b58-9aeb-b90e7c24fcba)";
    let scope = "/providers/Microsoft.KeyVault/vaults/vault";
    #[rustfmt::skip]
    let cases: [(Refused, &KeyVaultKey, i32, &[&str]); 8] = [
        (Refused::NoCertificate, &absent, 2, &["--sign", "keys/absent", "no certificate of that name", "CertificateNotFound"]),
        (Refused::NoSuchVersion, &wrong_version, 2, &["keys/refusals/0123456789abcdef0123456789abcdef", "no certificate of that name (or version)"]),
        // A PKCS#12 backing secret that cannot be read: bad input naming the key and the fix.
        (Refused::Pkcs12NotBase64, &cert.key, 2, &["keys/refusals", "(application/x-pkcs12) is not base64", GIVE_PEM]),
        (Refused::Pkcs12NotPfx, &cert.key, 2, &["keys/refusals", "(application/x-pkcs12) is not a PKCS#12 file", GIVE_PEM]),
        (Refused::Pkcs12BadMac, &cert.key, 2, &["keys/refusals", "MAC that does not match the empty password", GIVE_PEM]),
        (Refused::CertificateReadForbidden, &cert.key, 1, &["may not read certificates in Key Vault vault", certificate_user, scope, "certificate Get", "ForbiddenByRbac"]),
        // The real 403 of keys/sign names the action; the fix names the role, its scope, and
        // the access-policy permission.
        (Refused::SignForbidden, &cert.key, 1, &["may not sign with keys", crypto_user, scope, "key Sign", "Microsoft.KeyVault/vaults/keys/sign/action"]),
        (Refused::StaleToken, &cert.key, 1, &["refused the sign-in token", "az login --tenant"]),
    ];
    let subject = subject_descriptor();
    for (case, key, code, needles) in cases {
        match case {
            Refused::Pkcs12NotBase64 => kv.certificate("refusals", |c| {
                c.content_type = "application/x-pkcs12".into()
            }),
            // The PEM the secret held, as bytes: base64 of something that is no PFX.
            Refused::Pkcs12NotPfx => kv.keep_as_pkcs12("refusals", pem_value.as_bytes()),
            Refused::Pkcs12BadMac => kv.keep_as_pkcs12("refusals", &password_protected),
            Refused::CertificateReadForbidden => kv.vault(|v| v.forbidden = true),
            Refused::SignForbidden => kv.certificate("refusals", |c| c.sign_forbidden = true),
            Refused::StaleToken => kv.vault(|v| v.token = "another-token".into()),
            Refused::NoCertificate | Refused::NoSuchVersion => {}
        }
        let err = match KeyVaultSigner::connect(key, None).await {
            Err(err) => err,
            Ok(signer) => notation::sign(&subject, &signer, SystemTime::now())
                .await
                .expect_err(&format!("{case:?}")),
        };
        assert_eq!(exit_code(&err), code, "{case:?}: {err:#}");
        // What the user sees without --verbose: the outermost message.
        let message = err.to_string();
        for needle in needles {
            assert!(
                message.contains(needle),
                "{case:?}: no `{needle}` in: {message}"
            );
        }
        assert_no_secret(&format!("{err:#} {err:?}"), &cert.pki.key_pem);
        kv.vault(|v| {
            v.forbidden = false;
            v.token = KV_TOKEN.into();
        });
        kv.certificate("refusals", |c| {
            c.secret_value = pem_value.clone();
            c.content_type = "application/x-pem-file".into();
            c.sign_forbidden = false;
        });
    }
}

/// A GitHub Actions job with a federated credential and no other sign-in: the job's OIDC token,
/// exchanged at Entra for the vault's scope, is the bearer token Key Vault sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_actions_job_signs_with_key_vault_through_its_oidc_token() {
    if alone::ran_in_child() {
        return;
    }
    if support::tool("openssl").is_none() {
        return;
    }
    let kv = FakeKeyVault::start(KV_TOKEN).await;
    let trust = Trust {
        tenant: TENANT.into(),
        client_id: CLIENT_ID.into(),
        issuer: GITHUB_ISSUER.into(),
        subject: GITHUB_SUBJECT.into(),
    };
    let jobs = Jobs {
        github_subject: GITHUB_SUBJECT.into(),
        ado_subject: "sc://org/project/unused".into(),
        ci_token_ttl: 300,
        entra_expires_in: 3599,
    };
    let oidc = CiOidc::start(trust, jobs, "acr-scope-token-unused".into()).await;
    oidc.grant(VAULT_SCOPE, KV_TOKEN);
    let empty = tempfile::tempdir().unwrap();
    let cert = put(
        &kv,
        empty.path(),
        "ci-signer",
        test_pki::make("spin-aks test root", &Leaf::new(KeyKind::P384)),
    );
    isolate(
        empty.path(),
        &[
            ("GITHUB_ACTIONS", "true".into()),
            ("ACTIONS_ID_TOKEN_REQUEST_URL", oidc.github_request_url()),
            (
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                GITHUB_REQUEST_TOKEN.into(),
            ),
            ("AZURE_CLIENT_ID", CLIENT_ID.into()),
            ("AZURE_TENANT_ID", TENANT.into()),
            ("AZURE_AUTHORITY_HOST", oidc.base.clone()),
            ("SSL_CERT_FILE", oidc.ca_file.display().to_string()),
        ],
    );
    let signer = KeyVaultSigner::connect(&cert.key, None).await.unwrap();
    let subject = subject_descriptor();
    let signature = notation::sign(&subject, &signer, SystemTime::now())
        .await
        .unwrap();
    let trust = policy(&cert.pki.root_pem, &signer_identity());
    let verified =
        notation::verify(&signature.envelope, &subject, &trust, SystemTime::now()).unwrap();
    assert_eq!(verified.algorithm, Algorithm::Es384);
    assert_eq!(
        oidc.take_requests(),
        [
            "GET /github/_apis/distributedtask/hubs/Actions/plans/1/jobs/2/idtoken".to_string(),
            format!("POST /{TENANT}/oauth2/v2.0/token"),
        ],
        "one CI token, one exchange, reused for the certificate, the chain and the signature"
    );
    assert_eq!(
        kv.count("POST", &format!("/keys/ci-signer/{}/sign", cert.version)),
        1
    );
}

/// The independent check: `notation verify` v1.3.2 accepts signatures Key Vault made, RSA and EC,
/// with the chain from a PEM or a PKCS#12 backing secret (each encryption), found through the
/// referrers tag schema on the test registry (as tests/it/notation.rs does for local keys).
#[test]
fn notation_verifies_signatures_made_by_key_vault() {
    if alone::ran_in_child() {
        return;
    }
    let (Some(binary), Some(registry), Some(_)) = (
        crate::notation::notation_binary(),
        Registry::open(),
        support::tool("openssl"),
    ) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let pushed = crate::notation::build_and_push(home.path(), &registry, "signed/key-vault");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let kv = runtime.block_on(FakeKeyVault::start(KV_TOKEN));
    let bin = tempfile::tempdir().unwrap();
    write_scoped_az(bin.path(), &[(VAULT_SCOPE, KV_TOKEN)]);
    // The chain in a PEM backing secret, then in a PKCS#12 one in each encryption.
    let cases = [
        (KeyKind::Rsa2048, None),
        (KeyKind::P256, None),
        (KeyKind::Rsa2048, Some(ENCRYPTIONS[0])),
        (KeyKind::P256, Some(ENCRYPTIONS[1])),
        (KeyKind::Rsa2048, Some(ENCRYPTIONS[2])),
        (KeyKind::P384, Some(ENCRYPTIONS[3])),
        (KeyKind::P256, Some(ENCRYPTIONS[4])),
    ];
    for (i, (kind, encryption)) in cases.into_iter().enumerate() {
        let name = format!("{kind:?}-{i}").to_ascii_lowercase();
        let pki = test_pki::make("spin-aks test root", &Leaf::new(kind));
        let cert = match encryption {
            None => put(&kv, bin.path(), &name, pki),
            Some(encryption) => put_pkcs12(&kv, bin.path(), &name, pki, encryption),
        };
        let kind = (kind, encryption);
        let saved: Vec<_> = std::env::vars_os().collect();
        isolate(bin.path(), &[]);
        let signature = runtime.block_on(async {
            let signer = KeyVaultSigner::connect(&cert.key, None).await.unwrap();
            notation::sign(&pushed.manifest, &signer, SystemTime::now())
                .await
                .unwrap()
        });
        // The notation binary, the registry and the image need the environment back.
        for (name, value) in saved {
            std::env::set_var(name, value);
        }
        crate::notation::attach(&pushed, &signature, &signature.envelope);
        let dir = home.path().join(&name);
        let config = crate::notation::notation_config(&dir, &cert.pki.root_pem, &signer_identity());
        let (ok, text, _) = crate::notation::notation_verify(&binary, &dir, &config, &pushed);
        assert!(
            ok,
            "{kind:?}: notation refused a Key Vault signature: {text}"
        );
        assert!(
            text.contains("Successfully verified signature"),
            "{kind:?}: {text}"
        );
    }
}

/// `spin-aks push` through the binary, signed in by a fake `az` (PATH holds nothing else).
fn push_with(
    home: &Path,
    bin: &Path,
    app: &Path,
    repository: &str,
    extra: &[&str],
) -> std::process::Output {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut cmd = support::spin_aks_std(home);
    cmd.env_clear()
        .env("PATH", bin)
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join("docker"))
        .env("SPIN_AKS_STATE_FILE", home.join("state"))
        .env("SPIN_AKS_CACHE_DIR", home.join("cache"))
        .env("SPIN_AKS_ARM_DELAY_SCALE", "0")
        .env(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://{closed}"),
        )
        .current_dir(home)
        .args(["--output", "json", "push", "--skip-spin-build", "-f"])
        .arg(app)
        .arg(repository)
        .args(extra);
    cmd.output().unwrap()
}

/// `spin-aks push --sign <Key Vault key URL>`: Key Vault signs the image and its provenance (the
/// chain from the certificate's backing secret), notation verifies both, the state remembers the
/// key's URL and nothing secret; a push the caller may not sign for pushes nothing.
#[test]
fn push_signs_with_a_key_vault_key_and_notation_verifies_it() {
    let (Some(binary), Some(registry), Some(_)) = (
        crate::notation::notation_binary(),
        Registry::open(),
        support::tool("openssl"),
    ) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let kv = runtime.block_on(FakeKeyVault::start(KV_TOKEN));
    let home = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    write_scoped_az(bin.path(), &[(VAULT_SCOPE, KV_TOKEN)]);
    let cert = put(
        &kv,
        bin.path(),
        "push-signer",
        test_pki::make("spin-aks test root", &Leaf::new(KeyKind::Rsa2048)),
    );
    let app = crate::support::apps::generated_app(home.path(), 2, 100);
    let repository = format!("{}/signed/key-vault-app", registry.host());
    let key_url = cert.key.to_string();
    let sign_path = format!("/keys/push-signer/{}/sign", cert.version);
    let checked = |output: &std::process::Output| {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_no_secret(&text, &cert.pki.key_pem);
        let state = std::fs::read_to_string(home.path().join("state")).unwrap_or_default();
        assert_no_secret(&state, &cert.pki.key_pem);
        (text, state)
    };

    let output = push_with(
        home.path(),
        bin.path(),
        &app,
        &repository,
        &["--sign", &key_url],
    );
    let (text, state) = checked(&output);
    assert!(output.status.success(), "{text}");
    assert!(state.contains(&key_url), "the key is remembered: {state}");
    let report = support::json_stdout(&output);
    let image: Digest = report["digest"].as_str().unwrap().parse().unwrap();
    let referrers = report["referrers"].as_array().unwrap();
    let provenance = referrers
        .iter()
        .find(|r| r["artifact_type"] == "application/vnd.in-toto+json")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        kv.count("POST", &sign_path),
        2,
        "the image and the provenance"
    );
    let config =
        crate::notation::notation_config(home.path(), &cert.pki.root_pem, &signer_identity());
    for digest in [image.to_string(), provenance] {
        let pushed = crate::notation::Pushed {
            repository: repository.clone(),
            manifest: Descriptor::new(
                spin_aks::oci::media_types::IMAGE_MANIFEST,
                digest.parse().unwrap(),
                0,
            ),
        };
        let (ok, text, _) =
            crate::notation::notation_verify(&binary, home.path(), &config, &pushed);
        assert!(ok, "notation verify {digest}: {text}");
    }

    // The remembered key, no flag: the signatures are there already, Key Vault signs nothing.
    let output = push_with(home.path(), bin.path(), &app, &repository, &[]);
    let (text, _) = checked(&output);
    assert!(output.status.success(), "{text}");
    assert_eq!(kv.count("POST", &sign_path), 2, "nothing signed again");

    // Another app whose caller lacks Key Vault Crypto User: exit 1 naming the role, nothing
    // pushed, no key remembered.
    kv.certificate("push-signer", |c| c.sign_forbidden = true);
    let other = tempfile::tempdir().unwrap();
    let app = crate::support::apps::generated_app(other.path(), 1, 100);
    let denied = format!("{}/signed/key-vault-denied", registry.host());
    let output = push_with(
        other.path(),
        bin.path(),
        &app,
        &denied,
        &["--sign", &key_url],
    );
    let (text, _) = checked(&output);
    let state = std::fs::read_to_string(other.path().join("state")).unwrap_or_default();
    assert!(!state.contains(&key_url), "{state}");
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Key Vault Crypto User role (12338af0-0e69-4776-bea7-57ae8d297424)"),
        "{text}"
    );
    let tags = runtime.block_on(async {
        reqwest::get(format!(
            "http://{}/v2/signed/key-vault-denied/tags/list",
            registry.host()
        ))
        .await
        .unwrap()
        .status()
    });
    assert_eq!(tags, 404, "nothing pushed to {denied}");
}
