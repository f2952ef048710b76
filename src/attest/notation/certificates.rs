//! Reads X.509 certificates and checks a chain against Notation's certificate requirements.
//! It also gives a chain's thumbprints and the time helpers that signing and verification share.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature as lc;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use sha2::Digest as _;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;
use x509_parser::signature_algorithm::SignatureAlgorithm;

use super::algorithm::Algorithm;

/// The PEM certificates of a chain file, each a valid X.509 certificate; at least one.
pub fn parse_chain(pem: &[u8], name: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            crate::bad_input!(
                "the certificate chain {name} holds a CERTIFICATE block that is not valid base64"
            )
        })?;
    if chain.is_empty() {
        return Err(crate::bad_input!(
            "the certificate chain {name} holds no PEM certificate; give the signing certificate first, then its issuers up to the root, as `-----BEGIN CERTIFICATE-----` blocks"
        ));
    }
    for (i, cert) in chain.iter().enumerate() {
        if parse_cert(cert).is_none() {
            return Err(crate::bad_input!(
                "certificate {} in the chain {name} is not a valid X.509 certificate",
                i + 1
            ));
        }
    }
    Ok(chain)
}

pub(super) fn parse_cert<'a>(der: &'a [u8]) -> Option<X509Certificate<'a>> {
    X509Certificate::from_der(der)
        .ok()
        .filter(|(rest, _)| rest.is_empty())
        .map(|(_, cert)| cert)
}

/// The algorithm a certificate's public key signs with (signature-specification.md §Algorithm
/// Selection), or why it signs with none.
pub(super) fn key_algorithm(cert: &X509Certificate) -> Result<Algorithm, String> {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let modulus = rsa.modulus;
            let first = modulus
                .iter()
                .position(|b| *b != 0)
                .unwrap_or(modulus.len());
            match (modulus.len() - first) * 8 {
                2048 => Ok(Algorithm::Ps256),
                3072 => Ok(Algorithm::Ps384),
                4096 => Ok(Algorithm::Ps512),
                bits => Err(format!(
                    "has an RSA key of {bits} bits; Notation supports 2048, 3072 and 4096"
                )),
            }
        }
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => Ok(Algorithm::Es256),
                Some("1.3.132.0.34") => Ok(Algorithm::Es384),
                Some("1.3.132.0.35") => Ok(Algorithm::Es512),
                _ => Err(
                    "has an EC key on a curve Notation does not support (P-256, P-384, P-521 only)"
                        .into(),
                ),
            }
        }
        _ => Err("has a key that is neither RSA nor EC; Notation supports those only".into()),
    }
}

/// The algorithm the key of the DER certificate `der` signs with, or why it signs with none
/// (for a signer whose key is elsewhere, such as Key Vault's, and its certificate here).
pub fn certificate_algorithm(der: &[u8]) -> Result<Algorithm, String> {
    let cert = parse_cert(der).ok_or("is not a valid X.509 certificate")?;
    key_algorithm(&cert)
}

/// Checks that `issuer`'s key made `cert`'s signature (no SHA-1: signature-specification.md
/// §Other requirements).
fn signed_by(cert: &X509Certificate, issuer: &X509Certificate) -> bool {
    let ec =
        |curve: Option<Algorithm>, hash: u16| -> Option<&'static dyn lc::VerificationAlgorithm> {
            Some(match (curve?, hash) {
                (Algorithm::Es256, 256) => &lc::ECDSA_P256_SHA256_ASN1,
                (Algorithm::Es256, 384) => &lc::ECDSA_P256_SHA384_ASN1,
                (Algorithm::Es256, 512) => &lc::ECDSA_P256_SHA512_ASN1,
                (Algorithm::Es384, 256) => &lc::ECDSA_P384_SHA256_ASN1,
                (Algorithm::Es384, 384) => &lc::ECDSA_P384_SHA384_ASN1,
                (Algorithm::Es384, 512) => &lc::ECDSA_P384_SHA512_ASN1,
                (Algorithm::Es512, 256) => &lc::ECDSA_P521_SHA256_ASN1,
                (Algorithm::Es512, 384) => &lc::ECDSA_P521_SHA384_ASN1,
                (Algorithm::Es512, 512) => &lc::ECDSA_P521_SHA512_ASN1,
                _ => return None,
            })
        };
    let issuer_algorithm = key_algorithm(issuer).ok();
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    let algorithm: Option<&'static dyn lc::VerificationAlgorithm> = match oid.as_str() {
        "1.2.840.113549.1.1.11" => Some(&lc::RSA_PKCS1_2048_8192_SHA256),
        "1.2.840.113549.1.1.12" => Some(&lc::RSA_PKCS1_2048_8192_SHA384),
        "1.2.840.113549.1.1.13" => Some(&lc::RSA_PKCS1_2048_8192_SHA512),
        "1.2.840.113549.1.1.10" => match SignatureAlgorithm::try_from(&cert.signature_algorithm) {
            Ok(SignatureAlgorithm::RSASSA_PSS(params)) => {
                match params.hash_algorithm_oid().to_id_string().as_str() {
                    "2.16.840.1.101.3.4.2.1" => Some(&lc::RSA_PSS_2048_8192_SHA256),
                    "2.16.840.1.101.3.4.2.2" => Some(&lc::RSA_PSS_2048_8192_SHA384),
                    "2.16.840.1.101.3.4.2.3" => Some(&lc::RSA_PSS_2048_8192_SHA512),
                    _ => None,
                }
            }
            _ => None,
        },
        "1.2.840.10045.4.3.2" => ec(issuer_algorithm, 256),
        "1.2.840.10045.4.3.3" => ec(issuer_algorithm, 384),
        "1.2.840.10045.4.3.4" => ec(issuer_algorithm, 512),
        _ => None,
    };
    algorithm.is_some_and(|algorithm| {
        lc::UnparsedPublicKey::new(algorithm, &issuer.public_key().subject_public_key.data)
            .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
            .is_ok()
    })
}

fn issued_by(cert: &X509Certificate, issuer: &X509Certificate) -> bool {
    cert.issuer().as_raw() == issuer.subject().as_raw() && signed_by(cert, issuer)
}

/// Notation's certificate requirements for a code-signing chain (signature-specification.md
/// §Certificate Requirements; notation-core-go `x509.ValidateCodeSigningCertChain`): ordered leaf
/// to a self-signed root (or one self-signed certificate), CA and leaf constraints, key usage,
/// the excluded extended key usages, a supported key, and validity at `signing_time` when given.
/// `signing` (making a signature, not checking one) also wants the code-signing EKU when the
/// leaf has an extended key usage at all.
pub(super) fn check_chain(
    chain: &[X509Certificate],
    signing_time: Option<i64>,
    signing: bool,
) -> Result<(), String> {
    let Some(leaf) = chain.first() else {
        return Err("the certificate chain is empty".into());
    };
    for cert in chain {
        if let Some(time) = signing_time {
            let (from, to) = validity(cert);
            if time < from || time > to {
                return Err(format!(
                    "certificate with subject \"{}\" was invalid at signing time of {}. Certificate is valid from [{}] to [{}]",
                    cert.subject(),
                    rfc3339(time),
                    rfc3339(from),
                    rfc3339(to)
                ));
            }
        }
    }
    if chain.len() == 1 {
        if !issued_by(leaf, leaf) {
            return Err(format!(
                "a chain of one certificate must be self-signed, and \"{}\" is not; give the signing certificate, then its issuers up to the root",
                leaf.subject()
            ));
        }
        return check_leaf(leaf, signing);
    }
    let last = chain.len() - 1;
    for (i, cert) in chain.iter().enumerate() {
        if i == last {
            if !issued_by(cert, cert) {
                return Err(format!(
                    "root certificate with subject \"{}\" is not self-signed. Certificate chain must end with a valid self-signed root certificate",
                    cert.subject()
                ));
            }
        } else {
            if issued_by(cert, cert) {
                let which = if i == 0 { "leaf" } else { "intermediate" };
                return Err(format!(
                    "{which} certificate with subject \"{}\" is self-signed. Certificate chain must not contain self-signed {which} certificate",
                    cert.subject()
                ));
            }
            if !issued_by(cert, &chain[i + 1]) {
                return Err(format!(
                    "certificate with subject \"{}\" is not issued by \"{}\"; order the chain leaf first, each certificate followed by its issuer",
                    cert.subject(),
                    chain[i + 1].subject()
                ));
            }
        }
        if i == 0 {
            check_leaf(cert, signing)?;
        } else {
            check_ca(cert, i - 1)?;
        }
    }
    Ok(())
}

pub(super) fn validity(cert: &X509Certificate) -> (i64, i64) {
    let v = cert.validity();
    (v.not_before.timestamp(), v.not_after.timestamp())
}

fn check_key_usage_present(
    cert: &X509Certificate,
) -> Result<x509_parser::extensions::KeyUsage, String> {
    match cert.key_usage() {
        Ok(Some(ku)) if ku.critical => Ok(*ku.value),
        Ok(Some(_)) => Err(format!(
            "certificate with subject \"{}\": key usage extension must be marked critical",
            cert.subject()
        )),
        _ => Err(format!(
            "certificate with subject \"{}\": key usage extension must be present",
            cert.subject()
        )),
    }
}

fn check_ca(cert: &X509Certificate, below: usize) -> Result<(), String> {
    match cert.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => {
            if let Some(max) = bc.value.path_len_constraint {
                if (max as usize) < below {
                    return Err(format!(
                        "certificate with subject \"{}\": expected path length of {below} but certificate has path length {max} instead",
                        cert.subject()
                    ));
                }
            }
        }
        _ => {
            return Err(format!(
                "certificate with subject \"{}\": ca field in basic constraints must be present, critical, and set to true",
                cert.subject()
            ))
        }
    }
    if !check_key_usage_present(cert)?.key_cert_sign() {
        return Err(format!(
            "certificate with subject \"{}\": key usage must have the bit positions for key cert sign set",
            cert.subject()
        ));
    }
    Ok(())
}

fn check_leaf(cert: &X509Certificate, signing: bool) -> Result<(), String> {
    let subject = cert.subject();
    if let Ok(Some(bc)) = cert.basic_constraints() {
        if bc.value.ca {
            return Err(format!("certificate with subject \"{subject}\": if the basic constraints extension is present, the ca field must be set to false"));
        }
    }
    let ku = check_key_usage_present(cert)?;
    if !ku.digital_signature() {
        return Err(format!("the certificate with subject \"{subject}\" is invalid. The key usage must have the bit positions for \"Digital Signature\" set"));
    }
    let forbidden: Vec<&str> = [
        (ku.key_encipherment(), "\"KeyEncipherment\""),
        (ku.data_encipherment(), "\"DataEncipherment\""),
        (ku.key_agreement(), "\"KeyAgreement\""),
        (ku.key_cert_sign(), "\"CertSign\""),
        (ku.crl_sign(), "\"CRLSign\""),
        (ku.encipher_only(), "\"EncipherOnly\""),
        (ku.decipher_only(), "\"DecipherOnly\""),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    if !forbidden.is_empty() {
        return Err(format!(
            "the certificate with subject \"{subject}\" is invalid. The key usage must be \"Digital Signature\" only, but found {}",
            forbidden.join(", ")
        ));
    }
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        let eku = eku.value;
        for (set, name) in [
            (eku.server_auth, "ServerAuth"),
            (eku.client_auth, "ClientAuth"),
            (eku.email_protection, "EmailProtection"),
            (eku.time_stamping, "Timestamping"),
            (eku.ocsp_signing, "OCSPSigning"),
        ] {
            if set {
                return Err(format!("certificate with subject \"{subject}\": extended key usage must not contain {name} eku; use a code-signing certificate (extended key usage 1.3.6.1.5.5.7.3.3)"));
            }
        }
        if signing && !eku.code_signing {
            return Err(format!("certificate with subject \"{subject}\" has an extended key usage without code signing (1.3.6.1.5.5.7.3.3); use a code-signing certificate"));
        }
    }
    key_algorithm(cert)
        .map(|_| ())
        .map_err(|e| format!("certificate with subject \"{subject}\" {e}"))
}

pub(super) fn rfc3339(epoch: i64) -> String {
    crate::build::assemble::rfc3339(epoch.max(0) as u64)
}

/// The value of [`THUMBPRINT_ANNOTATION`](super::THUMBPRINT_ANNOTATION) for `chain`: the SHA-256
/// of each certificate, leaf first, as a JSON array of hex strings.
pub fn thumbprints(chain: &[CertificateDer<'static>]) -> String {
    let hexes: Vec<String> = chain
        .iter()
        .map(|c| hex::encode(sha2::Sha256::digest(c)))
        .collect();
    serde_json::Value::from(hexes).to_string()
}

/// Whether every certificate of `chain` is within its validity at `time` (a signature made with
/// it earlier still verifies then).
pub fn chain_valid_at(chain: &[CertificateDer<'static>], time: SystemTime) -> bool {
    let now = epoch(time);
    chain.iter().all(|der| {
        parse_cert(der).is_some_and(|cert| {
            let (from, to) = validity(&cert);
            from <= now && now <= to
        })
    })
}

pub(super) fn epoch(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}
