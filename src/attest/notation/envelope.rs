//! Writes a Notation signature: the JWS envelope over a manifest descriptor, and its signature
//! manifest. It holds the media types, headers and annotations that the format fixes.

use std::collections::BTreeMap;
use std::time::SystemTime;

use aws_lc_rs::signature as lc;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::json;

use super::certificates::{check_chain, epoch, key_algorithm, parse_cert, rfc3339, thumbprints};
use super::key::Signer;
use crate::oci::media_types::IMAGE_MANIFEST;
use crate::oci::{Descriptor, Digest};

/// The signature manifest's `artifactType` (signature-specification.md §Storage).
pub const ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
/// The media type of the one layer: the JWS envelope (signature-envelope-jws.md §OCI Signature Storage).
pub const ENVELOPE_MEDIA_TYPE: &str = "application/jose+json";
/// The payload's content type, the protected header `cty`.
pub const PAYLOAD_CONTENT_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
/// The config of a manifest with an `artifactType`: the empty descriptor.
pub const EMPTY_CONFIG_MEDIA_TYPE: &str = crate::oci::media_types::EMPTY_JSON;
/// The empty config's bytes; a registry needs this blob before it takes the manifest.
pub const EMPTY_CONFIG: &[u8] = crate::oci::layout::EMPTY_JSON_BYTES;
/// The signature manifest annotation listing the chain's SHA-256 fingerprints.
pub const THUMBPRINT_ANNOTATION: &str = "io.cncf.notary.x509chain.thumbprint#S256";
/// The signature manifest annotation holding the signing time.
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";
/// The unprotected `io.cncf.notary.signingAgent` header.
pub const SIGNING_AGENT: &str = concat!("spin-aks/", env!("CARGO_PKG_VERSION"));

pub(super) const SIGNING_SCHEME: &str = "notary.x509";
pub(super) const HEADER_SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
const HEADER_SIGNING_TIME: &str = "io.cncf.notary.signingTime";
pub(super) const HEADER_AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
pub(super) const HEADER_EXPIRY: &str = "io.cncf.notary.expiry";

/// A signature of one manifest, ready to attach as its referrer.
#[derive(Clone, Debug)]
pub struct Signature {
    /// The JWS envelope (JSON), the signature manifest's one layer.
    pub envelope: Vec<u8>,
    /// The signature manifest (canonical JSON): `artifactType`, empty config, the envelope, `subject`.
    pub manifest: Vec<u8>,
    /// The manifest's descriptor, with its annotations, as a referrers index lists it (with
    /// `artifactType` [`ARTIFACT_TYPE`]).
    pub manifest_descriptor: Descriptor,
    /// The envelope's descriptor (media type [`ENVELOPE_MEDIA_TYPE`]).
    pub envelope_descriptor: Descriptor,
}

/// Signs `subject` (a manifest's descriptor) with `signer` at `signing_time` (to the second).
///
/// The payload, headers and manifest layout are the same bytes for the same inputs; the
/// signature itself is not: RSASSA-PSS salts and ECDSA nonces are random, so each call gives a
/// new envelope and a new signature manifest digest (a caller that wants an unchanged push to
/// write nothing checks for an existing signature by the same chain first).
/// A chain that Notation would refuse, or a signature that the leaf certificate does not
/// verify (a key and certificate that do not belong together), is bad input.
pub async fn sign(
    subject: &Descriptor,
    signer: &dyn Signer,
    signing_time: SystemTime,
) -> anyhow::Result<Signature> {
    let algorithm = signer.algorithm();
    let chain = signer.chain();
    let parsed: Vec<_> = chain
        .iter()
        .enumerate()
        .map(|(i, c)| {
            parse_cert(c).ok_or_else(|| {
                crate::bad_input!(
                    "certificate {} of the signing chain is not a valid X.509 certificate",
                    i + 1
                )
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let time = epoch(signing_time);
    check_chain(&parsed, Some(time), true)
        .map_err(|e| crate::bad_input!("the signing certificate chain cannot sign: {e}"))?;
    let leaf_algorithm =
        key_algorithm(&parsed[0]).map_err(|e| crate::bad_input!("the signing certificate {e}"))?;
    if leaf_algorithm != algorithm {
        return Err(crate::bad_input!(
            "the signing key signs {} but its certificate \"{}\" holds a {} key; give the key's own certificate",
            algorithm.jws_name(),
            parsed[0].subject(),
            leaf_algorithm.key_name()
        ));
    }
    let signing_time = rfc3339(time);
    let protected = crate::oci::json::to_canonical_vec(&json!({
        "alg": algorithm.jws_name(),
        "crit": [HEADER_SIGNING_SCHEME],
        "cty": PAYLOAD_CONTENT_TYPE,
        HEADER_SIGNING_SCHEME: SIGNING_SCHEME,
        HEADER_SIGNING_TIME: signing_time,
    }))?;
    let payload = crate::oci::json::to_canonical_vec(&json!({ "targetArtifact": subject }))?;
    let protected = URL_SAFE_NO_PAD.encode(protected);
    let payload = URL_SAFE_NO_PAD.encode(payload);
    let signing_input = format!("{protected}.{payload}");
    let signature = signer.sign(signing_input.as_bytes()).await?;
    let leaf_key = &parsed[0].public_key().subject_public_key.data;
    if lc::UnparsedPublicKey::new(algorithm.verification(), leaf_key)
        .verify(signing_input.as_bytes(), &signature)
        .is_err()
    {
        return Err(crate::bad_input!(
            "the signature made with the signing key does not verify with the certificate \"{}\": the key and the certificate do not belong together",
            parsed[0].subject()
        ));
    }
    let envelope = crate::oci::json::to_canonical_vec(&json!({
        "payload": payload,
        "protected": protected,
        "header": {
            "x5c": chain.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>(),
            "io.cncf.notary.signingAgent": SIGNING_AGENT,
        },
        "signature": URL_SAFE_NO_PAD.encode(&signature),
    }))?;
    let envelope_descriptor = Descriptor::new(
        ENVELOPE_MEDIA_TYPE,
        Digest::of(&envelope),
        envelope.len() as u64,
    );
    let annotations = BTreeMap::from([
        (THUMBPRINT_ANNOTATION.to_string(), thumbprints(chain)),
        (CREATED_ANNOTATION.to_string(), signing_time),
    ]);
    let manifest = crate::oci::json::to_canonical_vec(&json!({
        "schemaVersion": 2,
        "mediaType": IMAGE_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {
            "mediaType": EMPTY_CONFIG_MEDIA_TYPE,
            "digest": Digest::of(EMPTY_CONFIG),
            "size": EMPTY_CONFIG.len(),
            "data": STANDARD.encode(EMPTY_CONFIG),
        },
        "layers": [envelope_descriptor],
        "subject": Descriptor::new(&subject.media_type, subject.digest.clone(), subject.size),
        "annotations": annotations,
    }))?;
    let mut manifest_descriptor =
        Descriptor::new(IMAGE_MANIFEST, Digest::of(&manifest), manifest.len() as u64);
    manifest_descriptor.annotations = annotations;
    Ok(Signature {
        envelope,
        manifest,
        manifest_descriptor,
        envelope_descriptor,
    })
}
