//! Sign, then verify by Notation's rules: every key type, each refusal, and bad signing input.

use super::test_pki::{self, KeyKind, Leaf, Pki, SUBJECT_BASE};
use super::*;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest as _;

use crate::oci::media_types::IMAGE_MANIFEST;
use crate::oci::{Descriptor, Digest};

/// 2025-01-01T00:00:00Z: inside the test certificates' validity.
fn at(epoch: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(epoch)
}
const SIGNED: u64 = 1_735_689_600;
const LATER: u64 = SIGNED + 86_400;

fn image() -> Descriptor {
    Descriptor::new(IMAGE_MANIFEST, Digest::of(b"an image manifest"), 17)
}

fn local_key(pki: &Pki) -> LocalKey {
    LocalKey::from_pem(
        pki.key_pem.as_bytes(),
        "key.pem",
        pki.chain_pem.as_bytes(),
        "chain.pem",
    )
    .unwrap_or_else(|e| panic!("{e:#}"))
}

fn trusting(pki: &Pki, subject: Option<&str>) -> TrustPolicy {
    TrustPolicy {
        roots: vec![CertificateDer::from_pem_slice(pki.root_pem.as_bytes()).unwrap()],
        subject: subject.map(str::to_string),
    }
}

fn signer_subject() -> String {
    format!("{SUBJECT_BASE},CN=spin-aks test signer")
}

fn sign_now(pki: &Pki, subject: &Descriptor, time: u64) -> Signature {
    let key = local_key(pki);
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(sign(subject, &key, at(time)))
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

fn decode_part(part: &serde_json::Value) -> serde_json::Value {
    json(&URL_SAFE_NO_PAD.decode(part.as_str().unwrap()).unwrap())
}

// signature-specification.md §Algorithm Selection: the key fixes the algorithm, RSA → PSS.
#[test]
fn every_key_type_signs_and_verifies_with_its_algorithm() {
    let expected = ["PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];
    for (kind, alg) in KeyKind::ALL.into_iter().zip(expected) {
        let pki = test_pki::make("root", &Leaf::new(kind));
        let signature = sign_now(&pki, &image(), SIGNED);
        let verified = verify(
            &signature.envelope,
            &image(),
            &trusting(&pki, Some(&signer_subject())),
            at(LATER),
        )
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(verified.algorithm.jws_name(), alg, "{kind:?}");
        assert_eq!(verified.signing_time, at(SIGNED));
        assert!(
            verified.signer.contains("CN=spin-aks test signer"),
            "{verified:?}"
        );
        assert!(verified.trusted.contains("CN=root"), "{verified:?}");
    }
}

// signature-envelope-jws.md §Protected Headers, §Unprotected Headers, §Signature Envelope;
// signature-specification.md §Payload and the signature manifest's properties.
#[test]
fn the_envelope_and_manifest_are_laid_out_as_the_specification_says() {
    let pki = test_pki::make("root", &Leaf::new(KeyKind::P256));
    let mut subject = image();
    subject
        .annotations
        .insert("org.example".into(), "kept".into());
    let signature = sign_now(&pki, &subject, SIGNED);

    let envelope = json(&signature.envelope);
    let keys: Vec<_> = envelope.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["header", "payload", "protected", "signature"]);
    assert_eq!(
        decode_part(&envelope["protected"]),
        serde_json::json!({
            "alg": "ES256",
            "crit": ["io.cncf.notary.signingScheme"],
            "cty": "application/vnd.cncf.notary.payload.v1+json",
            "io.cncf.notary.signingScheme": "notary.x509",
            "io.cncf.notary.signingTime": "2025-01-01T00:00:00Z",
        })
    );
    assert_eq!(
        decode_part(&envelope["payload"]),
        serde_json::json!({"targetArtifact": {
            "mediaType": IMAGE_MANIFEST,
            "digest": subject.digest.to_string(),
            "size": 17,
            "annotations": {"org.example": "kept"},
        }})
    );
    let x5c: Vec<Vec<u8>> = envelope["header"]["x5c"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| STANDARD.decode(c.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(x5c, pki.chain_der, "x5c: leaf first, then the root");
    assert_eq!(
        envelope["header"]["io.cncf.notary.signingAgent"],
        SIGNING_AGENT
    );
    // ES256 signatures are r ‖ s, 32 bytes each.
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(envelope["signature"].as_str().unwrap())
            .unwrap()
            .len(),
        64
    );

    let manifest = json(&signature.manifest);
    let thumbprints: Vec<String> = pki
        .chain_der
        .iter()
        .map(|c| hex::encode(sha2::Sha256::digest(c)))
        .collect();
    assert_eq!(
        manifest,
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": IMAGE_MANIFEST,
            "artifactType": "application/vnd.cncf.notary.signature",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                "size": 2,
                "data": "e30=",
            },
            "layers": [{
                "mediaType": "application/jose+json",
                "digest": Digest::of(&signature.envelope).to_string(),
                "size": signature.envelope.len(),
            }],
            "subject": {"mediaType": IMAGE_MANIFEST, "digest": subject.digest.to_string(), "size": 17},
            "annotations": {
                "io.cncf.notary.x509chain.thumbprint#S256": serde_json::to_string(&thumbprints).unwrap(),
                "org.opencontainers.image.created": "2025-01-01T00:00:00Z",
            },
        })
    );
    assert_eq!(
        signature.manifest,
        crate::oci::json::to_canonical_vec(&manifest).unwrap(),
        "canonical JSON"
    );
    assert_eq!(
        signature.manifest_descriptor.digest,
        Digest::of(&signature.manifest)
    );
    assert_eq!(signature.manifest_descriptor.annotations.len(), 2);
    assert_eq!(
        signature.envelope_descriptor.digest,
        Digest::of(&signature.envelope)
    );
}

#[test]
fn signing_twice_changes_only_the_random_signature() {
    for kind in [KeyKind::Rsa2048, KeyKind::P256] {
        let pki = test_pki::make("root", &Leaf::new(kind));
        let (a, b) = (
            sign_now(&pki, &image(), SIGNED),
            sign_now(&pki, &image(), SIGNED),
        );
        let (a, b) = (json(&a.envelope), json(&b.envelope));
        assert_eq!(a["protected"], b["protected"], "{kind:?}");
        assert_eq!(a["payload"], b["payload"], "{kind:?}");
        assert_eq!(a["header"], b["header"], "{kind:?}");
        assert_ne!(
            a["signature"], b["signature"],
            "{kind:?}: PSS salt / ECDSA nonce"
        );
    }
}

/// The envelope with its base64url `part` replaced by `f` of the decoded JSON.
fn rewrite(envelope: &[u8], part: &str, f: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let mut envelope = json(envelope);
    let mut decoded = decode_part(&envelope[part]);
    f(&mut decoded);
    envelope[part] = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&decoded).unwrap())
        .into();
    serde_json::to_vec(&envelope).unwrap()
}

/// A name, an envelope, what it is checked against, the policy, the time, and what must result.
type RefusalCase<'a> = (
    &'a str,
    Vec<u8>,
    Descriptor,
    TrustPolicy,
    u64,
    Verdict,
    &'a str,
);
/// A distinguished name's attributes, in name order.
type Attributes = &'static [(&'static str, &'static str)];

#[derive(Debug, PartialEq)]
enum Verdict {
    Untrusted,
    Identity,
    Tampered,
    Expired,
}

fn verdict(refusal: &Refusal) -> Verdict {
    match refusal {
        Refusal::UntrustedChain(_) => Verdict::Untrusted,
        Refusal::WrongIdentity(_) => Verdict::Identity,
        Refusal::TamperedPayload(_) => Verdict::Tampered,
        Refusal::Expired(_) => Verdict::Expired,
        Refusal::Unsigned => panic!("verify has an envelope"),
    }
}

// trust-store-trust-policy.md §Signature Verification: integrity, authenticity (trust store,
// identity), authentic timestamp (validity now, without a TSA), expiry; then the descriptor.
#[test]
fn each_refusal_gives_notations_verdict() {
    let pki = test_pki::make("root", &Leaf::new(KeyKind::P384));
    let good = sign_now(&pki, &image(), SIGNED).envelope;
    let other_root = test_pki::make("another root", &Leaf::new(KeyKind::P256));
    let expired = test_pki::make(
        "root",
        &Leaf {
            valid: ((2020, 1, 1), (2021, 1, 1)),
            ..Leaf::new(KeyKind::P256)
        },
    );
    let expired_envelope = sign_now(&expired, &image(), 1_590_969_600 /* 2020-06-01 */).envelope;
    // The same key certified again for TLS servers (no code signing): the signature still
    // verifies with the leaf's key, but the chain is not a code-signing chain
    // (signature-specification.md §Leaf Certificates, Extended Key Usage).
    let tls = test_pki::make(
        "root",
        &Leaf {
            extended_key_usages: vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth],
            key_pem: Some(pki.key_pem.clone()),
            ..Leaf::new(KeyKind::P384)
        },
    );
    let mut swapped = json(&good);
    swapped["header"]["x5c"] = tls
        .chain_der
        .iter()
        .map(|c| STANDARD.encode(c))
        .collect::<Vec<_>>()
        .into();
    let swapped = serde_json::to_vec(&swapped).unwrap();
    let mut bigger = image();
    bigger.size += 1;
    let mut index = image();
    index.media_type = crate::oci::media_types::IMAGE_INDEX.into();

    let subject = signer_subject();
    #[rustfmt::skip]
    let cases: Vec<RefusalCase> = vec![
        ("payload names another digest", rewrite(&good, "payload", |p| p["targetArtifact"]["digest"] = Digest::of(b"x").to_string().into()),
            image(), trusting(&pki, None), LATER, Verdict::Tampered, "signature is invalid"),
        ("signing time changed", rewrite(&good, "protected", |p| p["io.cncf.notary.signingTime"] = "2025-01-02T00:00:00Z".into()),
            image(), trusting(&pki, None), LATER, Verdict::Tampered, "signature is invalid"),
        ("another artifact", good.clone(), Descriptor::new(IMAGE_MANIFEST, Digest::of(b"other"), 17),
            trusting(&pki, None), LATER, Verdict::Tampered, "content descriptor mismatch"),
        ("another size", good.clone(), bigger, trusting(&pki, None), LATER, Verdict::Tampered, "content descriptor mismatch"),
        ("another media type", good.clone(), index, trusting(&pki, None), LATER, Verdict::Tampered, "content descriptor mismatch"),
        ("not JSON", b"{".to_vec(), image(), trusting(&pki, None), LATER, Verdict::Tampered, "unable to parse"),
        ("untrusted root", good.clone(), image(), trusting(&other_root, None), LATER, Verdict::Untrusted,
            "does not contain any trusted certificate"),
        ("nothing trusted", good.clone(), image(), TrustPolicy::default(), LATER, Verdict::Untrusted,
            "does not contain any trusted certificate"),
        ("wrong identity", good.clone(), image(), trusting(&pki, Some(&format!("{SUBJECT_BASE},CN=someone else"))), LATER,
            Verdict::Identity, "does not match the X.509 trusted identity"),
        ("wrong organisation", good.clone(), image(), trusting(&pki, Some("C=US,ST=WA,O=Other")), LATER,
            Verdict::Identity, "does not match"),
        ("identity Notation would refuse", good.clone(), image(), trusting(&pki, Some("CN=spin-aks test signer")), LATER,
            Verdict::Identity, "has no C"),
        ("expired certificate", expired_envelope.clone(), image(), trusting(&expired, None), LATER, Verdict::Expired,
            "validity period, it was expired at \"2021-01-01T00:00:00Z\""),
        ("not yet valid", good.clone(), image(), trusting(&pki, None), 1_500_000_000, Verdict::Expired, "will be valid from"),
        ("leaf for TLS servers", swapped, image(), trusting(&tls, None), LATER, Verdict::Untrusted,
            "extended key usage must not contain ServerAuth"),
    ];
    for (name, envelope, target, policy, now, expected, message) in cases {
        let refusal = verify(&envelope, &target, &policy, at(now)).expect_err(name);
        assert_eq!(verdict(&refusal), expected, "{name}: {refusal}");
        assert!(refusal.to_string().contains(message), "{name}: {refusal}");
    }
    // The expired signature was good while its certificate was.
    verify(
        &expired_envelope,
        &image(),
        &trusting(&expired, Some(&subject)),
        at(1_600_000_000),
    )
    .unwrap();
    // An identity given with only some attributes (and S for ST) matches, as in Notation.
    verify(
        &good,
        &image(),
        &trusting(&pki, Some("S=WA,C=US,O=spin-aks tests")),
        at(LATER),
    )
    .unwrap();
}

#[test]
fn any_certificate_of_the_chain_in_the_trust_store_is_enough() {
    let pki = test_pki::make("root", &Leaf::new(KeyKind::P256));
    let signature = sign_now(&pki, &image(), SIGNED);
    let leaf_trusted = TrustPolicy {
        roots: vec![CertificateDer::from(pki.chain_der[0].clone())],
        subject: None,
    };
    let verified = verify(&signature.envelope, &image(), &leaf_trusted, at(LATER)).unwrap();
    assert!(verified.trusted.contains("CN=spin-aks test signer"));
}

// Bad input at load: exit 2, the file named, and never the key itself.
#[test]
fn a_key_and_chain_notation_could_not_use_are_refused_naming_the_file() {
    let rsa = test_pki::make("root", &Leaf::new(KeyKind::Rsa2048));
    let ec = test_pki::make("root", &Leaf::new(KeyKind::P256));
    let tls = test_pki::make(
        "root",
        &Leaf {
            extended_key_usages: vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth],
            ..Leaf::new(KeyKind::P256)
        },
    );
    let ed25519 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
        .unwrap()
        .serialize_pem();
    let reversed = {
        let mut parts: Vec<&str> = ec
            .chain_pem
            .split_inclusive("-----END CERTIFICATE-----\n")
            .collect();
        parts.reverse();
        parts.concat()
    };
    let no_code_signing = test_pki::make(
        "root",
        &Leaf {
            extended_key_usages: vec![rcgen::ExtendedKeyUsagePurpose::Other(vec![
                1, 3, 6, 1, 4, 1, 99999,
            ])],
            ..Leaf::new(KeyKind::P256)
        },
    );
    #[rustfmt::skip]
    let cases: Vec<(&str, String, String, &str)> = vec![
        ("not a key", "hello".into(), ec.chain_pem.clone(), "key.pem holds no PEM private key"),
        ("a certificate as the key", ec.chain_pem.clone(), ec.chain_pem.clone(), "key.pem holds no PEM private key"),
        ("an Ed25519 key", ed25519, ec.chain_pem.clone(), "key.pem is not an RSA or EC"),
        ("an encrypted key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n".into(),
            ec.chain_pem.clone(), "key.pem is encrypted"),
        ("the chain of another key", ec.key_pem.clone(), rsa.chain_pem.clone(), "is not the certificate of the key key.pem"),
        ("the chain of another EC key", ec.key_pem.clone(), tls.chain_pem.clone(), "is not the certificate of the key key.pem"),
        ("no certificate", ec.key_pem.clone(), String::new(), "chain.pem holds no PEM certificate"),
        ("root first", ec.key_pem.clone(), reversed, "is not the certificate of the key"),
        ("a TLS server certificate", tls.key_pem.clone(), tls.chain_pem.clone(), "must not contain ServerAuth"),
        ("an EKU without code signing", no_code_signing.key_pem.clone(), no_code_signing.chain_pem.clone(),
            "without code signing"),
        ("the leaf without its root", ec.key_pem.clone(), ec.chain_pem.split_inclusive("-----END CERTIFICATE-----\n").next().unwrap().into(),
            "must be self-signed"),
    ];
    for (name, key, chain, message) in cases {
        let err = LocalKey::from_pem(key.as_bytes(), "key.pem", chain.as_bytes(), "chain.pem")
            .expect_err(name);
        let text = format!("{err:#}");
        assert_eq!(crate::error::exit_code(&err), 2, "{name}: {text}");
        assert!(text.contains(message), "{name}: {text}");
        let body = key.lines().nth(1).unwrap_or("");
        assert!(
            body.len() < 8 || !text.contains(body),
            "{name}: key material in {text}"
        );
    }
}

/// The key-type-specific body of a PKCS#8 PEM key (its privateKey OCTET STRING: PKCS#1 for
/// RSA, SEC1 for EC) as PEM with `label`.
fn inner_key_pem(pkcs8_pem: &str, label: &str) -> String {
    let der = PrivateKeyDer::from_pem_slice(pkcs8_pem.as_bytes()).unwrap();
    let (_, info) = x509_parser::der_parser::der::parse_der_sequence(der.secret_der()).unwrap();
    let body = STANDARD.encode(info.as_sequence().unwrap()[2].as_slice().unwrap());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[test]
fn a_key_of_every_pem_form_signs() {
    let ec = test_pki::make("root", &Leaf::new(KeyKind::P384));
    let rsa = test_pki::make("root", &Leaf::new(KeyKind::Rsa2048));
    let forms = [
        ("PKCS#8 EC", ec.key_pem.clone(), &ec),
        ("SEC1 EC", inner_key_pem(&ec.key_pem, "EC PRIVATE KEY"), &ec),
        ("PKCS#8 RSA", rsa.key_pem.clone(), &rsa),
        (
            "PKCS#1 RSA",
            inner_key_pem(&rsa.key_pem, "RSA PRIVATE KEY"),
            &rsa,
        ),
    ];
    for (name, key_pem, pki) in forms {
        assert_ne!(&key_pem, &pki.key_pem.replace("PRIVATE KEY", "X"), "{name}");
        let key = LocalKey::from_pem(
            key_pem.as_bytes(),
            "key.pem",
            pki.chain_pem.as_bytes(),
            "chain.pem",
        )
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let signature = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(sign(&image(), &key, at(SIGNED)))
            .unwrap();
        verify(
            &signature.envelope,
            &image(),
            &trusting(pki, None),
            at(LATER),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            !format!("{key:?}").contains(key_pem.lines().nth(1).unwrap()),
            "{name}"
        );
    }
}

#[test]
fn a_chain_valid_now_but_not_at_the_signing_time_cannot_sign() {
    let pki = test_pki::make("root", &Leaf::new(KeyKind::P256));
    let key = local_key(&pki);
    let err = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(sign(&image(), &key, at(1_500_000_000)))
        .unwrap_err();
    assert_eq!(crate::error::exit_code(&err), 2);
    assert!(
        format!("{err:#}").contains("was invalid at signing time of 2017-07-14T02:40:00Z"),
        "{err:#}"
    );
}

#[test]
fn identities_follow_notations_distinguished_name_rules() {
    #[rustfmt::skip]
    let cases: &[(&str, Result<Attributes, &str>)] = &[
        ("C=US,ST=WA,O=Example", Ok(&[("C", "US"), ("O", "Example"), ("ST", "WA")])),
        ("C=US, S=WA, O=Example\\, Inc., CN=a\\2Cb", Ok(&[("C", "US"), ("CN", "a,b"), ("O", "Example, Inc."), ("ST", "WA")])),
        ("C=US,ST=WA", Err("has no O")),
        ("C=US,ST=WA,O=A,O=B", Err("gives O twice")),
        ("C=US+ST=WA,O=A", Err("multi-valued")),
        ("C=US,ST=WA,O=#0403", Err("hex-encoded")),
        ("C=US,ST=WA,O=", Err("gives O no value")),
    ];
    for (dn, expected) in cases {
        let got = parse_subject(dn);
        match expected {
            Ok(pairs) => {
                let want: BTreeMap<String, String> = pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                assert_eq!(got.as_ref(), Ok(&want), "{dn}");
            }
            Err(message) => {
                let err = got.expect_err(dn);
                assert!(err.contains(message), "{dn}: {err}");
            }
        }
    }
}
