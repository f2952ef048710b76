//! Verifies a signature envelope by Notation's trust rules, in Notation's order. A refusal
//! carries the verdict that `notation verify` gives, with its reason.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature as lc;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rustls::pki_types::CertificateDer;
use x509_parser::prelude::X509Certificate;

use super::algorithm::Algorithm;
use super::certificates::{check_chain, epoch, key_algorithm, parse_cert, rfc3339, validity};
use super::envelope::{
    HEADER_AUTHENTIC_SIGNING_TIME, HEADER_EXPIRY, HEADER_SIGNING_SCHEME, PAYLOAD_CONTENT_TYPE,
    SIGNING_SCHEME,
};
use super::identity::{parse_subject, subject_attributes};
use crate::oci::Descriptor;

/// What verification trusts: certificates (roots or intermediates; a signature verifies when its
/// chain holds one of them, byte for byte, as in Notation's trust store) and, optionally, the
/// signing identity in Notation's `x509.subject` form (`C=US,ST=WA,O=Example,CN=Signer`): every
/// attribute given must equal the leaf certificate's.
#[derive(Clone, Debug, Default)]
pub struct TrustPolicy {
    pub roots: Vec<CertificateDer<'static>>,
    pub subject: Option<String>,
}

/// A signature that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The leaf certificate's subject (RFC 4514).
    pub signer: String,
    /// The subject of the trusted certificate the chain holds.
    pub trusted: String,
    pub algorithm: Algorithm,
    /// The signer's (unauthenticated) `io.cncf.notary.signingTime`.
    pub signing_time: SystemTime,
}

/// Why a signature does not verify: the verdicts `notation verify` gives, each with its reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No Notation signature refers to the artifact.
    #[error("the artifact is unsigned: no Notary Project signature refers to it")]
    Unsigned,
    /// The chain holds no trusted certificate, or is not a valid code-signing chain.
    #[error("untrusted chain: {0}")]
    UntrustedChain(String),
    /// The leaf's subject is not the identity the policy requires.
    #[error("wrong identity: {0}")]
    WrongIdentity(String),
    /// The signature does not cover these bytes: a changed envelope, a bad signature, or a
    /// payload naming another digest, size or media type.
    #[error("tampered payload: {0}")]
    TamperedPayload(String),
    /// A certificate of the chain is outside its validity now, or the signature's expiry passed.
    #[error("expired: {0}")]
    Expired(String),
}

#[derive(serde::Deserialize)]
struct Envelope {
    payload: String,
    protected: String,
    header: UnprotectedHeader,
    signature: String,
}

#[derive(serde::Deserialize)]
struct UnprotectedHeader {
    #[serde(default)]
    x5c: Vec<String>,
}

#[derive(serde::Deserialize)]
struct ProtectedHeader {
    alg: String,
    #[serde(default)]
    cty: String,
    #[serde(default)]
    crit: Vec<String>,
    #[serde(rename = "io.cncf.notary.signingScheme", default)]
    signing_scheme: String,
    #[serde(rename = "io.cncf.notary.signingTime")]
    signing_time: Option<String>,
    #[serde(rename = "io.cncf.notary.authenticSigningTime")]
    authentic_signing_time: Option<String>,
    #[serde(rename = "io.cncf.notary.expiry")]
    expiry: Option<String>,
}

#[derive(serde::Deserialize)]
struct Payload {
    #[serde(rename = "targetArtifact")]
    target_artifact: Target,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    media_type: String,
    digest: String,
    size: u64,
}

/// Verifies a JWS envelope as the signature of `subject` under `policy` at `now`, in Notation's
/// order (trust-store-trust-policy.md §Signature Verification; notation-go `verifier.Verify`):
/// integrity (the envelope, its signature by the leaf, the chain's code-signing requirements),
/// authenticity (a trusted certificate in the chain, then the identity), the certificates'
/// validity now (no timestamp authority: `notary.x509` without a countersignature), expiry, and
/// last the payload's descriptor against `subject` (media type, digest, size).
pub fn verify(
    envelope: &[u8],
    subject: &Descriptor,
    policy: &TrustPolicy,
    now: SystemTime,
) -> Result<Verified, Refusal> {
    let tampered = |why: String| Refusal::TamperedPayload(why);
    let envelope: Envelope = serde_json::from_slice(envelope).map_err(|e| {
        tampered(format!(
            "unable to parse the digital signature, error : {e}"
        ))
    })?;
    let certs: Vec<Vec<u8>> = envelope
        .header
        .x5c
        .iter()
        .map(|c| STANDARD.decode(c))
        .collect::<Result<_, _>>()
        .map_err(|_| tampered("the certificate chain (x5c) is not base64".into()))?;
    if certs.is_empty() {
        return Err(tampered("certificate chain is not present".into()));
    }
    let chain: Vec<X509Certificate> = certs
        .iter()
        .map(|c| parse_cert(c))
        .collect::<Option<_>>()
        .ok_or_else(|| tampered("malformed certificate in the chain (x5c)".into()))?;
    let protected_bytes = URL_SAFE_NO_PAD.decode(&envelope.protected).map_err(|e| {
        tampered(format!(
            "jws envelope protected header can't be decoded: {e}"
        ))
    })?;
    let protected: ProtectedHeader = serde_json::from_slice(&protected_bytes).map_err(|e| {
        tampered(format!(
            "jws envelope protected header can't be decoded: {e}"
        ))
    })?;
    let algorithm = Algorithm::from_jws_name(&protected.alg).ok_or_else(|| {
        tampered(format!(
            "signature algorithm \"{}\" is not supported",
            protected.alg
        ))
    })?;
    let signature = URL_SAFE_NO_PAD
        .decode(&envelope.signature)
        .map_err(|e| tampered(format!("signature is not base64url: {e}")))?;
    let signing_input = format!("{}.{}", envelope.protected, envelope.payload);
    lc::UnparsedPublicKey::new(
        algorithm.verification(),
        &chain[0].public_key().subject_public_key.data,
    )
    .verify(signing_input.as_bytes(), &signature)
    .map_err(|_| tampered("signature is invalid. Error: the signature does not match the signed header and payload".into()))?;
    let signing_time = check_protected_header(&protected, &protected_bytes).map_err(tampered)?;
    check_chain(&chain, None, false)
        .map_err(|e| Refusal::UntrustedChain(format!("certificate-chain is invalid, {e}")))?;
    let leaf_algorithm = key_algorithm(&chain[0])
        .map_err(|e| Refusal::UntrustedChain(format!("the signing certificate {e}")))?;
    if leaf_algorithm != algorithm {
        return Err(tampered(format!(
            "mismatch between signature algorithm derived from signing certificate ({}) and signing algorithm specified ({})",
            leaf_algorithm.jws_name(),
            algorithm.jws_name()
        )));
    }
    let payload_bytes = URL_SAFE_NO_PAD
        .decode(&envelope.payload)
        .map_err(|e| tampered(format!("payload error: {e}")))?;

    let trusted = certs
        .iter()
        .zip(&chain)
        .find(|(der, _)| {
            policy
                .roots
                .iter()
                .any(|root| root.as_ref() == der.as_slice())
        })
        .map(|(_, cert)| cert.subject().to_string())
        .ok_or_else(|| {
            Refusal::UntrustedChain(
                "the signature's certificate chain does not contain any trusted certificate".into(),
            )
        })?;
    if let Some(identity) = &policy.subject {
        let wanted = parse_subject(identity).map_err(Refusal::WrongIdentity)?;
        let leaf = subject_attributes(&chain[0]);
        if wanted.iter().any(|(k, v)| leaf.get(k) != Some(v)) {
            return Err(Refusal::WrongIdentity(format!(
                "signing certificate from the digital signature (subject \"{}\") does not match the X.509 trusted identity \"{identity}\"",
                chain[0].subject()
            )));
        }
    }

    let now = epoch(now);
    for cert in &chain {
        let (from, to) = validity(cert);
        if now < from {
            return Err(Refusal::Expired(format!(
                "verification time is before certificate \"{}\" validity period, it will be valid from \"{}\"",
                cert.subject(),
                rfc3339(from)
            )));
        }
        if now > to {
            return Err(Refusal::Expired(format!(
                "verification time is after certificate \"{}\" validity period, it was expired at \"{}\"",
                cert.subject(),
                rfc3339(to)
            )));
        }
    }
    if let Some(expiry) = &protected.expiry {
        let expiry = parse_time(expiry).map_err(tampered)?;
        if now > expiry {
            return Err(Refusal::Expired(format!(
                "digital signature has expired on \"{}\"",
                rfc3339(expiry)
            )));
        }
    }

    let payload: Payload = serde_json::from_slice(&payload_bytes)
        .map_err(|e| tampered(format!("the payload is not a Notary Project payload: {e}")))?;
    let target = payload.target_artifact;
    if target.media_type != subject.media_type
        || target.digest != subject.digest.to_string()
        || target.size != subject.size
    {
        return Err(tampered(format!(
            "content descriptor mismatch: the signature covers {} ({}, {} bytes), not {} ({}, {} bytes)",
            target.digest, target.media_type, target.size, subject.digest, subject.media_type, subject.size
        )));
    }
    Ok(Verified {
        signer: chain[0].subject().to_string(),
        trusted,
        algorithm,
        signing_time: UNIX_EPOCH + std::time::Duration::from_secs(signing_time.max(0) as u64),
    })
}

/// The subject of the leaf certificate an envelope carries, unverified: who a signature claims to
/// be from, for reporting a signature that [`verify`] refused.
pub fn claimed_signer(envelope: &[u8]) -> Option<String> {
    let envelope: Envelope = serde_json::from_slice(envelope).ok()?;
    let leaf = STANDARD.decode(envelope.header.x5c.first()?).ok()?;
    parse_cert(&leaf).map(|cert| cert.subject().to_string())
}

/// The protected header's rules (signature-envelope-jws.md §Protected Headers; notation-core-go
/// `jws.validateProtectedHeaders`): the `notary.x509` scheme with a signing time, `crit` naming
/// the scheme (and the expiry when there is one) and nothing this verifier does not process,
/// the Notary payload type. Returns the signing time.
fn check_protected_header(protected: &ProtectedHeader, raw: &[u8]) -> Result<i64, String> {
    if protected.signing_scheme != SIGNING_SCHEME {
        return Err(format!(
            "unsupported SigningScheme: `{}` (spin-aks verifies `{SIGNING_SCHEME}`)",
            protected.signing_scheme
        ));
    }
    if protected.authentic_signing_time.is_some() {
        return Err(format!(
            "\"{HEADER_AUTHENTIC_SIGNING_TIME}\" header must not be present for {SIGNING_SCHEME} signing scheme"
        ));
    }
    if protected.crit.is_empty() {
        return Err("missing \"crit\" header".into());
    }
    let mut must = vec![HEADER_SIGNING_SCHEME];
    if protected.expiry.is_some() {
        must.push(HEADER_EXPIRY);
    }
    for header in &must {
        if !protected.crit.iter().any(|c| c == header) {
            return Err(format!(
                "these required headers are not marked as critical: [{header}]"
            ));
        }
    }
    let all: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(raw).map_err(|e| e.to_string())?;
    for critical in &protected.crit {
        if !must.contains(&critical.as_str()) {
            return Err(if all.contains_key(critical) {
                format!("critical header \"{critical}\" is not processed by this verifier")
            } else {
                format!("\"{critical}\" header is marked critical but not present")
            });
        }
    }
    if protected.cty != PAYLOAD_CONTENT_TYPE {
        return Err(format!(
            "payload content type \"{}\" not supported",
            protected.cty
        ));
    }
    let time = protected
        .signing_time
        .as_deref()
        .ok_or_else(|| "signing-time not present".to_string())?;
    let time = parse_time(time)?;
    if let Some(expiry) = &protected.expiry {
        if parse_time(expiry)? <= time {
            return Err("expiry cannot be equal or before the signing time".into());
        }
    }
    Ok(time)
}

fn parse_time(text: &str) -> Result<i64, String> {
    humantime::parse_rfc3339_weak(text)
        .or_else(|_| humantime::parse_rfc3339(text))
        .map(epoch)
        .map_err(|_| format!("\"{text}\" is not an RFC 3339 time"))
}
