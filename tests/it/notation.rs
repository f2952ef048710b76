//! spin-aks's Notation signatures checked by the independent verifier: `notation` v1.3.2 (built by
//! scripts/build-notation.sh) verifies them on the test registry, which has no referrers API, so
//! the signature is found through the referrers tag schema (`sha256-<hex>` → an image index).
//! Each refusal is one `notation verify` also refuses, with `attest::notation::verify`'s verdict.
//! The registry, attach and `notation verify` helpers serve key_vault_sign.rs too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::json;
use spin_aks::attest::notation::{
    self, LocalKey, Refusal, Signature, TrustPolicy, ARTIFACT_TYPE, EMPTY_CONFIG,
};
use spin_aks::oci::{Descriptor, Digest};

use crate::support::apps::generated_app;
use crate::support::registry::Registry;
use crate::support::{self, json_stdout, spin_aks};

#[path = "../../src/attest/notation/test_pki.rs"]
pub(crate) mod test_pki;
use test_pki::{KeyKind, Leaf, Pki, SUBJECT_BASE};

/// The notation binary scripts/build-notation.sh built, or a skip (a failure under CI).
pub(crate) fn notation_binary() -> Option<PathBuf> {
    support::built_tool("build-notation.sh", "notation")
}

/// An app image pushed to the registry: its repository reference and manifest descriptor.
pub(crate) struct Pushed {
    pub(crate) repository: String,
    pub(crate) manifest: Descriptor,
}

pub(crate) fn build_and_push(home: &Path, registry: &Registry, repository: &str) -> Pushed {
    let app = generated_app(home, 3, 300);
    let layout = home.join("layout");
    let output = spin_aks(home)
        .args(["--output", "json", "build", "--skip-spin-build", "-f"])
        .arg(&app)
        .arg("--layout")
        .arg(&layout)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let repository = format!("{}/{repository}", registry.host());
    let output = spin_aks(home)
        .args(["--output", "json", "push", &repository, "--from-layout"])
        .arg(&layout)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let digest: Digest = json_stdout(&output)["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let size = std::fs::metadata(layout.join("blobs/sha256").join(digest.hex()))
        .unwrap()
        .len();
    Pushed {
        repository,
        manifest: Descriptor::new(spin_aks::oci::media_types::IMAGE_MANIFEST, digest, size),
    }
}

/// Attaches `signature` to `pushed` as the tag schema lays it out: the blobs, the signature
/// manifest by digest, and the `sha256-<hex>` index listing it (OCI distribution-spec
/// §Referrers Tag Schema). The lead's referrers plumbing replaces this in the product.
pub(crate) fn attach(pushed: &Pushed, signature: &Signature, envelope: &[u8]) {
    let (host, name) = pushed.repository.split_once('/').unwrap();
    let base = format!("http://{host}/v2/{name}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        for blob in [EMPTY_CONFIG, envelope] {
            let started = http
                .post(format!("{base}/blobs/uploads/"))
                .send()
                .await
                .unwrap();
            assert_eq!(started.status(), 202);
            let location = started.headers()["location"].to_str().unwrap().to_string();
            let location = if location.starts_with('/') {
                format!("http://{host}{location}")
            } else {
                location
            };
            let separator = if location.contains('?') { '&' } else { '?' };
            let put = http
                .put(format!("{location}{separator}digest={}", Digest::of(blob)))
                .body(blob.to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(put.status(), 201, "{}", put.text().await.unwrap());
        }
        let mut entry = serde_json::to_value(&signature.manifest_descriptor).unwrap();
        entry["artifactType"] = ARTIFACT_TYPE.into();
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": spin_aks::oci::media_types::IMAGE_INDEX,
            "manifests": [entry],
        }))
        .unwrap();
        let tag = format!("sha256-{}", pushed.manifest.digest.hex());
        for (reference, media_type, body) in [
            (
                signature.manifest_descriptor.digest.to_string(),
                spin_aks::oci::media_types::IMAGE_MANIFEST,
                signature.manifest.clone(),
            ),
            (tag, spin_aks::oci::media_types::IMAGE_INDEX, index),
        ] {
            let put = http
                .put(format!("{base}/manifests/{reference}"))
                .header("content-type", media_type)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(put.status(), 201, "{}", put.text().await.unwrap());
        }
    });
}

/// A Notation configuration (XDG_CONFIG_HOME) trusting `root_pem` for `identity`.
pub(crate) fn notation_config(dir: &Path, root_pem: &str, identity: &str) -> PathBuf {
    let config = dir.join("xdg");
    let store = config.join("notation/truststore/x509/ca/spin-aks-test");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join("root.pem"), root_pem).unwrap();
    // trust-store-trust-policy.md §Trust Policy (notation v1.3.2 reads `trustpolicy.json` only).
    let policy = json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": "spin-aks-test",
            "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:spin-aks-test"],
            "trustedIdentities": [format!("x509.subject: {identity}")],
        }],
    });
    std::fs::write(
        config.join("notation/trustpolicy.json"),
        serde_json::to_vec_pretty(&policy).unwrap(),
    )
    .unwrap();
    config
}

/// `notation verify` of the pushed image: (success, stdout + stderr, how long it took).
pub(crate) fn notation_verify(
    binary: &Path,
    home: &Path,
    config: &Path,
    pushed: &Pushed,
) -> (bool, String, Duration) {
    let started = Instant::now();
    let output = Command::new(binary)
        .args(["verify", "--insecure-registry", "--verbose"])
        .arg(format!("{}@{}", pushed.repository, pushed.manifest.digest))
        .env("XDG_CONFIG_HOME", config)
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join("docker"))
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text, elapsed)
}

pub(crate) fn signer_identity() -> String {
    format!("{SUBJECT_BASE},CN=spin-aks test signer")
}

pub(crate) fn sign(pki: &Pki, subject: &Descriptor, at: SystemTime) -> Signature {
    let key = LocalKey::from_pem(
        pki.key_pem.as_bytes(),
        "key.pem",
        pki.chain_pem.as_bytes(),
        "chain.pem",
    )
    .unwrap();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(notation::sign(subject, &key, at))
        .unwrap()
}

pub(crate) fn policy(root_pem: &str, identity: &str) -> TrustPolicy {
    TrustPolicy {
        roots: vec![CertificateDer::from_pem_slice(root_pem.as_bytes()).unwrap()],
        subject: Some(identity.to_string()),
    }
}

#[test]
fn notation_verifies_signatures_of_every_key_type_and_ours_agrees() {
    let (Some(binary), Some(registry)) = (notation_binary(), Registry::open()) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let pushed = build_and_push(home.path(), &registry, "signed/every-key");
    for kind in KeyKind::ALL {
        let dir = home.path().join(format!("{kind:?}"));
        let pki = test_pki::make("spin-aks test root", &Leaf::new(kind));
        let signature = sign(&pki, &pushed.manifest, SystemTime::now());
        // A fresh repository state per key: the tag-schema index lists this signature only.
        attach(&pushed, &signature, &signature.envelope);
        let config = notation_config(&dir, &pki.root_pem, &signer_identity());
        let (ok, text, notation_time) = notation_verify(&binary, &dir, &config, &pushed);
        assert!(ok, "{kind:?}: notation refused: {text}");
        assert!(
            text.contains("Successfully verified signature"),
            "{kind:?}: {text}"
        );
        let started = Instant::now();
        let verified = notation::verify(
            &signature.envelope,
            &pushed.manifest,
            &policy(&pki.root_pem, &signer_identity()),
            SystemTime::now(),
        )
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        eprintln!(
            "{kind:?} ({}): notation verify {notation_time:?}, attest::notation::verify {:?}",
            verified.algorithm.jws_name(),
            started.elapsed()
        );
    }
}

#[derive(Debug)]
enum Case {
    TamperedHeader,
    OtherArtifact,
    UntrustedRoot,
    WrongSubject,
    Expired,
    TlsLeaf,
}

#[test]
fn notation_and_ours_refuse_the_same_bad_signatures() {
    let (Some(binary), Some(registry)) = (notation_binary(), Registry::open()) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let good = test_pki::make("spin-aks test root", &Leaf::new(KeyKind::P256));
    let other = test_pki::make("another root", &Leaf::new(KeyKind::P256));
    let expired = test_pki::make(
        "spin-aks test root",
        &Leaf {
            valid: ((2020, 1, 1), (2021, 1, 1)),
            ..Leaf::new(KeyKind::Rsa2048)
        },
    );
    let tls = test_pki::make(
        "spin-aks test root",
        &Leaf {
            extended_key_usages: vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth],
            key_pem: Some(good.key_pem.clone()),
            ..Leaf::new(KeyKind::P256)
        },
    );
    let june_2020 = UNIX_EPOCH + Duration::from_secs(1_590_969_600);
    // Notation's reasons (with --verbose), from notation-core-go and notation-go's verifier.
    #[rustfmt::skip]
    let cases = [
        (Case::TamperedHeader, "tampered payload", "signature is invalid"),
        // The signature of another artifact attached to this one.
        (Case::OtherArtifact, "tampered payload", "content descriptor mismatch"),
        (Case::UntrustedRoot, "untrusted chain", "does not contain any trusted certificate"),
        (Case::WrongSubject, "wrong identity", "does not match the X.509 trusted identities"),
        (Case::Expired, "expired", "validity period, it was expired at"),
        (Case::TlsLeaf, "untrusted chain", "extended key usage must not contain ServerAuth"),
    ];
    for (i, (case, ours, theirs)) in cases.into_iter().enumerate() {
        let dir = home.path().join(format!("case-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let pushed = build_and_push(&dir, &registry, &format!("refused/case-{i}"));
        let now = SystemTime::now();
        let (pki, signed_for, at) = match case {
            Case::Expired => (&expired, pushed.manifest.clone(), june_2020),
            Case::OtherArtifact => {
                let mut other = pushed.manifest.clone();
                other.digest = Digest::of(b"another manifest");
                (&good, other, now)
            }
            _ => (&good, pushed.manifest.clone(), now),
        };
        let signature = sign(pki, &signed_for, at);
        let envelope = match case {
            Case::TamperedHeader => tamper_signing_time(&signature.envelope),
            Case::TlsLeaf => swap_chain(&signature.envelope, &tls),
            _ => signature.envelope.clone(),
        };
        // The manifest must list the envelope it carries: rebuild it around the changed bytes.
        let signature = with_envelope(&signature, &envelope);
        attach(&pushed, &signature, &envelope);
        let (root, identity) = match case {
            Case::UntrustedRoot => (&other.root_pem, signer_identity()),
            Case::WrongSubject => (&good.root_pem, format!("{SUBJECT_BASE},CN=someone else")),
            Case::TlsLeaf => (&tls.root_pem, signer_identity()),
            _ => (&pki.root_pem, signer_identity()),
        };
        let config = notation_config(&dir, root, &identity);
        let (ok, text, _) = notation_verify(&binary, &dir, &config, &pushed);
        assert!(!ok, "{case:?}: notation accepted it: {text}");
        assert!(text.contains(theirs), "{case:?}: {text}");
        let refusal = notation::verify(&envelope, &pushed.manifest, &policy(root, &identity), now)
            .expect_err(&format!("{case:?}"));
        assert!(refusal.to_string().starts_with(ours), "{case:?}: {refusal}");
        eprintln!("{case:?}: notation: {}\n  ours: {refusal}", text.trim());
        assert_ne!(refusal, Refusal::Unsigned);
    }
}

/// The envelope with its signing time changed after signing.
pub(crate) fn tamper_signing_time(envelope: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut value: serde_json::Value = serde_json::from_slice(envelope).unwrap();
    let mut protected: serde_json::Value =
        serde_json::from_slice(&b64.decode(value["protected"].as_str().unwrap()).unwrap()).unwrap();
    protected["io.cncf.notary.signingTime"] = "2024-01-01T00:00:00Z".into();
    value["protected"] = b64.encode(serde_json::to_vec(&protected).unwrap()).into();
    serde_json::to_vec(&value).unwrap()
}

/// The envelope with `pki`'s chain (the same key, certified again) in `x5c`.
fn swap_chain(envelope: &[u8], pki: &Pki) -> Vec<u8> {
    use base64::Engine as _;
    let mut value: serde_json::Value = serde_json::from_slice(envelope).unwrap();
    value["header"]["x5c"] = pki
        .chain_der
        .iter()
        .map(|c| base64::engine::general_purpose::STANDARD.encode(c))
        .collect::<Vec<_>>()
        .into();
    serde_json::to_vec(&value).unwrap()
}

/// `signature` with its manifest's one layer replaced by `envelope`.
fn with_envelope(signature: &Signature, envelope: &[u8]) -> Signature {
    let mut manifest: serde_json::Value = serde_json::from_slice(&signature.manifest).unwrap();
    manifest["layers"][0]["digest"] = Digest::of(envelope).to_string().into();
    manifest["layers"][0]["size"] = envelope.len().into();
    let manifest = spin_aks::oci::json::to_canonical_vec(&manifest).unwrap();
    let mut manifest_descriptor = signature.manifest_descriptor.clone();
    manifest_descriptor.digest = Digest::of(&manifest);
    manifest_descriptor.size = manifest.len() as u64;
    Signature {
        envelope: envelope.to_vec(),
        manifest,
        manifest_descriptor,
        envelope_descriptor: signature.envelope_descriptor.clone(),
    }
}

/// `push --sign KEY --sign-cert CHAIN` signs the image and its provenance statement as it pushes
/// them; notation verifies both. The key is remembered: the next push, with no flag, finds the
/// signatures in the layout and signs nothing new; `--sign none` forgets it.
#[test]
fn push_signs_the_image_and_its_provenance_and_notation_verifies_them() {
    let (Some(binary), Some(registry)) = (notation_binary(), Registry::open()) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let pki = test_pki::make("spin-aks push root", &Leaf::new(KeyKind::P256));
    std::fs::write(home.path().join("key.pem"), &pki.key_pem).unwrap();
    std::fs::write(home.path().join("chain.pem"), &pki.chain_pem).unwrap();
    let app = generated_app(home.path(), 2, 100);
    let repository = format!("{}/signed/app", registry.host());
    let push = |extra: &[&str]| {
        let output = spin_aks(home.path())
            .current_dir(home.path())
            .args(["--output", "json", "push", "--skip-spin-build", "-f"])
            .arg(&app)
            .arg(&repository)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        json_stdout(&output)
    };
    let first = push(&["--sign", "key.pem", "--sign-cert", "chain.pem"]);
    let referrers = first["referrers"].as_array().unwrap();
    let of_type = |t: &str| -> Vec<&serde_json::Value> {
        referrers
            .iter()
            .filter(|r| r["artifact_type"] == t)
            .collect()
    };
    assert_eq!(
        of_type(ARTIFACT_TYPE).len(),
        2,
        "the image and the provenance: {first}"
    );
    let provenance = of_type("application/vnd.in-toto+json")[0];
    let image_digest: Digest = first["digest"].as_str().unwrap().parse().unwrap();
    let signed: Vec<&str> = of_type(ARTIFACT_TYPE)
        .iter()
        .map(|r| r["subject"].as_str().unwrap())
        .collect();
    assert!(
        signed.contains(&image_digest.to_string().as_str()),
        "{signed:?}"
    );
    assert!(
        signed.contains(&provenance["digest"].as_str().unwrap()),
        "{signed:?}"
    );

    let config = notation_config(home.path(), &pki.root_pem, &signer_identity());
    for digest in [
        image_digest.to_string(),
        provenance["digest"].as_str().unwrap().to_string(),
    ] {
        let pushed = Pushed {
            repository: repository.clone(),
            manifest: Descriptor::new(
                spin_aks::oci::media_types::IMAGE_MANIFEST,
                digest.parse().unwrap(),
                0,
            ),
        };
        let (ok, text, _) = notation_verify(&binary, home.path(), &config, &pushed);
        assert!(ok, "notation verify {digest}: {text}");
    }

    let state = std::fs::read_to_string(home.path().join("state")).unwrap();
    assert!(
        state.contains("key.pem") && !state.contains("PRIVATE KEY"),
        "{state}"
    );
    let again = push(&[]);
    assert!(
        again["referrers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["pushed"] == false),
        "nothing new signed or sent: {again}"
    );
    push(&["--sign", "none"]);
    let state = std::fs::read_to_string(home.path().join("state")).unwrap();
    assert!(
        !state.contains("key.pem"),
        "--sign none forgets the key: {state}"
    );
}
