//! Notary Project (Notation) signatures: a JWS envelope over a manifest descriptor (`notary.x509`
//! scheme) with its signature manifest, the local-key [`Signer`], and verification by Notation's rules.
//!
//! Specifications (notaryproject/specifications): `specs/signature-specification.md` (payload,
//! signature manifest, §Certificate Requirements), `specs/signature-envelope-jws.md` (headers,
//! signing input, `alg` values), `specs/trust-store-trust-policy.md` (verification steps). Where
//! the spec leaves room, this follows what notation v1.3.2 does (notation-go v1.3.2 `verifier`,
//! notation-core-go v1.3.0 `signature/jws` and `x509`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as lc, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use sha2::Digest as _;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;
use x509_parser::signature_algorithm::SignatureAlgorithm;

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

const SIGNING_SCHEME: &str = "notary.x509";
const HEADER_SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
const HEADER_SIGNING_TIME: &str = "io.cncf.notary.signingTime";
const HEADER_AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
const HEADER_EXPIRY: &str = "io.cncf.notary.expiry";

/// The signature algorithms Notation allows, each tied to one key type and size
/// (signature-specification.md §Algorithm Selection; RSA signs with RSASSA-PSS only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
}

impl Algorithm {
    /// The JWS `alg` name (also Key Vault's `alg` for its `sign` operation).
    pub fn jws_name(self) -> &'static str {
        match self {
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::Es512 => "ES512",
        }
    }

    /// The algorithm a JWS `alg` names, if Notation allows it.
    pub fn from_jws_name(name: &str) -> Option<Self> {
        ALGORITHMS.into_iter().find(|a| a.jws_name() == name)
    }

    /// The digest the algorithm signs: what a signer that takes digests (Key Vault) is given.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Algorithm::Ps256 | Algorithm::Es256 => sha2::Sha256::digest(data).to_vec(),
            Algorithm::Ps384 | Algorithm::Es384 => sha2::Sha384::digest(data).to_vec(),
            Algorithm::Ps512 | Algorithm::Es512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// How a JWS signature of this algorithm is checked (ECDSA as JWS writes it: r ‖ s).
    fn verification(self) -> &'static dyn lc::VerificationAlgorithm {
        match self {
            Algorithm::Ps256 => &lc::RSA_PSS_2048_8192_SHA256,
            Algorithm::Ps384 => &lc::RSA_PSS_2048_8192_SHA384,
            Algorithm::Ps512 => &lc::RSA_PSS_2048_8192_SHA512,
            Algorithm::Es256 => &lc::ECDSA_P256_SHA256_FIXED,
            Algorithm::Es384 => &lc::ECDSA_P384_SHA384_FIXED,
            Algorithm::Es512 => &lc::ECDSA_P521_SHA512_FIXED,
        }
    }

    /// What the key is, for messages.
    fn key_name(self) -> &'static str {
        match self {
            Algorithm::Ps256 => "RSA 2048",
            Algorithm::Ps384 => "RSA 3072",
            Algorithm::Ps512 => "RSA 4096",
            Algorithm::Es256 => "EC P-256",
            Algorithm::Es384 => "EC P-384",
            Algorithm::Es512 => "EC P-521",
        }
    }
}

const ALGORITHMS: [Algorithm; 6] = [
    Algorithm::Ps256,
    Algorithm::Ps384,
    Algorithm::Ps512,
    Algorithm::Es256,
    Algorithm::Es384,
    Algorithm::Es512,
];

/// What makes a signature: a key (local, or remote as in Key Vault) and its certificate chain.
///
/// `sign` receives the JWS signing input itself, not a digest: a local key hashes as it signs,
/// and a signer whose service takes a digest (Key Vault's `keys/sign`) hashes with
/// [`Algorithm::digest`]. RSA signatures are RSASSA-PSS (salt length = hash length); ECDSA
/// signatures are r ‖ s, each as long as the curve's order (JWS's form, and Key Vault's).
#[async_trait::async_trait]
pub trait Signer: Send + Sync {
    /// The algorithm, fixed by the leaf certificate's key type and size.
    fn algorithm(&self) -> Algorithm;
    /// The certificate chain, leaf first, ending with the root (or one self-signed certificate).
    fn chain(&self) -> &[CertificateDer<'static>];
    /// Signs `signing_input` with [`Signer::algorithm`].
    async fn sign(&self, signing_input: &[u8]) -> anyhow::Result<Vec<u8>>;
}

/// A private key read from a PEM file, with its certificate chain.
pub struct LocalKey {
    key: LocalKeyPair,
    algorithm: Algorithm,
    chain: Vec<CertificateDer<'static>>,
}

enum LocalKeyPair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

impl std::fmt::Debug for LocalKey {
    /// Never the key: only what it is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKey")
            .field("algorithm", &self.algorithm)
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl LocalKey {
    /// Reads a PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC) and a PEM chain (leaf first).
    /// Every problem is bad input naming the file; no message holds key material.
    pub fn load(key_file: &Path, chain_file: &Path) -> anyhow::Result<Self> {
        let read = |path: &Path, what: &str| {
            std::fs::read(path)
                .map_err(|e| crate::bad_input!("cannot read the {what} {}: {e}", path.display()))
        };
        let key = read(key_file, "signing key")?;
        let chain = read(chain_file, "certificate chain")?;
        Self::from_pem(
            &key,
            &key_file.display().to_string(),
            &chain,
            &chain_file.display().to_string(),
        )
    }

    /// [`LocalKey::load`] from bytes already read; `key_name` and `chain_name` name them in messages.
    pub fn from_pem(
        key_pem: &[u8],
        key_name: &str,
        chain_pem: &[u8],
        chain_name: &str,
    ) -> anyhow::Result<Self> {
        let key = parse_private_key(key_pem, key_name)?;
        let chain = parse_chain(chain_pem, chain_name)?;
        let leaf = parse_cert(&chain[0]).expect("parse_chain parsed it");
        let algorithm = key_algorithm(&leaf).map_err(|e| {
            crate::bad_input!(
                "the first certificate in {chain_name} ({}) {e}",
                leaf.subject()
            )
        })?;
        let (public, own_algorithm) = match &key {
            LocalKeyPair::Rsa(k) => (k.public_key().as_ref(), rsa_algorithm(k)),
            LocalKeyPair::Ec(k) => (k.public_key().as_ref(), ec_algorithm(k)),
        };
        if own_algorithm != algorithm
            || public != leaf.public_key().subject_public_key.data.as_ref()
        {
            return Err(crate::bad_input!(
                "the first certificate in {chain_name} ({}) is not the certificate of the key {key_name}: their public keys differ; give the key's certificate first, then its issuers up to the root",
                leaf.subject()
            ));
        }
        let parsed: Vec<_> = chain
            .iter()
            .map(|c| parse_cert(c).expect("parse_chain parsed it"))
            .collect();
        check_chain(&parsed, None, true).map_err(|e| {
            crate::bad_input!("the certificate chain {chain_name} cannot sign: {e}")
        })?;
        Ok(LocalKey {
            key,
            algorithm,
            chain,
        })
    }
}

#[async_trait::async_trait]
impl Signer for LocalKey {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    async fn sign(&self, signing_input: &[u8]) -> anyhow::Result<Vec<u8>> {
        let rng = SystemRandom::new();
        match &self.key {
            LocalKeyPair::Rsa(key) => {
                let padding: &'static dyn lc::RsaEncoding = match self.algorithm {
                    Algorithm::Ps256 => &lc::RSA_PSS_SHA256,
                    Algorithm::Ps384 => &lc::RSA_PSS_SHA384,
                    _ => &lc::RSA_PSS_SHA512,
                };
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(padding, &rng, signing_input, &mut signature)
                    .map_err(|_| anyhow::anyhow!("the RSA key could not sign"))?;
                Ok(signature)
            }
            LocalKeyPair::Ec(key) => Ok(key
                .sign(&rng, signing_input)
                .map_err(|_| anyhow::anyhow!("the EC key could not sign"))?
                .as_ref()
                .to_vec()),
        }
    }
}

/// The private key of a PEM file, as one of the key types Notation signs with.
fn parse_private_key(pem: &[u8], name: &str) -> anyhow::Result<LocalKeyPair> {
    if memchr::memmem::find(pem, b"-----BEGIN ENCRYPTED PRIVATE KEY-----").is_some() {
        return Err(crate::bad_input!(
            "the signing key {name} is encrypted; give it unencrypted (`openssl pkey -in {name} -out PLAIN.pem`) and keep that file private"
        ));
    }
    let der = PrivateKeyDer::from_pem_slice(pem).map_err(|_| {
        crate::bad_input!(
            "the signing key {name} holds no PEM private key; give an RSA (2048, 3072 or 4096 bits) or EC (P-256, P-384, P-521) key as PKCS#8 (`BEGIN PRIVATE KEY`), PKCS#1 (`BEGIN RSA PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`)"
        )
    })?;
    let unsupported = || {
        crate::bad_input!(
            "the signing key {name} is not an RSA or EC (P-256, P-384, P-521) private key; Notation signs with those only"
        )
    };
    let ec = |parse: &dyn Fn(&'static lc::EcdsaSigningAlgorithm) -> Option<EcdsaKeyPair>| {
        [
            &lc::ECDSA_P256_SHA256_FIXED_SIGNING,
            &lc::ECDSA_P384_SHA384_FIXED_SIGNING,
            &lc::ECDSA_P521_SHA512_FIXED_SIGNING,
        ]
        .into_iter()
        .find_map(parse)
        .map(LocalKeyPair::Ec)
    };
    let rsa = |parsed: Result<RsaKeyPair, aws_lc_rs::error::KeyRejected>| {
        match parsed {
        Ok(key) => match rsa_size(&key) {
            2048 | 3072 | 4096 => Ok(Some(LocalKeyPair::Rsa(key))),
            bits => Err(crate::bad_input!(
                "the signing key {name} is an RSA key of {bits} bits; Notation signs with RSA keys of 2048, 3072 or 4096 bits only"
            )),
        },
        Err(e) if e.to_string().to_ascii_lowercase().contains("small") => Err(crate::bad_input!(
            "the signing key {name} is an RSA key smaller than 2048 bits; Notation signs with RSA keys of 2048, 3072 or 4096 bits only"
        )),
        Err(_) => Ok(None),
    }
    };
    let key = match &der {
        PrivateKeyDer::Pkcs8(k) => match rsa(RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()))? {
            Some(key) => Some(key),
            None => ec(&|alg| EcdsaKeyPair::from_pkcs8(alg, k.secret_pkcs8_der()).ok()),
        },
        PrivateKeyDer::Pkcs1(k) => rsa(RsaKeyPair::from_der(k.secret_pkcs1_der()))?,
        PrivateKeyDer::Sec1(k) => {
            ec(&|alg| EcdsaKeyPair::from_private_key_der(alg, k.secret_sec1_der()).ok())
        }
        _ => None,
    };
    key.ok_or_else(unsupported)
}

fn rsa_size(key: &RsaKeyPair) -> usize {
    key.public_modulus_len() * 8
}

fn rsa_algorithm(key: &RsaKeyPair) -> Algorithm {
    match rsa_size(key) {
        2048 => Algorithm::Ps256,
        3072 => Algorithm::Ps384,
        _ => Algorithm::Ps512,
    }
}

fn ec_algorithm(key: &EcdsaKeyPair) -> Algorithm {
    match key.public_key().as_ref().len() {
        65 => Algorithm::Es256,
        97 => Algorithm::Es384,
        _ => Algorithm::Es512,
    }
}

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

fn parse_cert<'a>(der: &'a [u8]) -> Option<X509Certificate<'a>> {
    X509Certificate::from_der(der)
        .ok()
        .filter(|(rest, _)| rest.is_empty())
        .map(|(_, cert)| cert)
}

/// The algorithm a certificate's public key signs with (signature-specification.md §Algorithm
/// Selection), or why it signs with none.
fn key_algorithm(cert: &X509Certificate) -> Result<Algorithm, String> {
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
fn check_chain(
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

fn validity(cert: &X509Certificate) -> (i64, i64) {
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

fn rfc3339(epoch: i64) -> String {
    crate::build::assemble::rfc3339(epoch.max(0) as u64)
}

/// The value of [`THUMBPRINT_ANNOTATION`] for `chain`: the SHA-256 of each certificate, leaf
/// first, as a JSON array of hex strings.
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

fn epoch(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

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

/// The attribute names Go's `pkix.Name.String()` writes, which Notation matches identities on.
const DN_NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.17", "POSTALCODE"),
    ("2.5.4.5", "SERIALNUMBER"),
];

fn subject_attributes(cert: &X509Certificate) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::new();
    for rdn in cert.subject().iter_rdn() {
        for attribute in rdn.iter() {
            let oid = attribute.attr_type().to_id_string();
            let name = DN_NAMES
                .iter()
                .find(|(o, _)| *o == oid)
                .map_or(oid.clone(), |(_, n)| n.to_string());
            if let Ok(value) = attribute.as_str() {
                attributes.insert(name, value.to_string());
            }
        }
    }
    attributes
}

/// Parses an identity in Notation's `x509.subject` form (RFC 4514: `C=US,ST=WA,O=Example`) by
/// Notation's rules (notation-go `internal/pkix.ParseDistinguishedName`): single-valued RDNs, no
/// attribute twice, `S` for `ST`, and `C`, `ST` and `O` present. The error says what is wrong.
pub fn parse_subject(dn: &str) -> Result<BTreeMap<String, String>, String> {
    let syntax = |why: &str| {
        format!("the distinguished name \"{dn}\" {why}; write it as Notation's x509.subject does, e.g. \"C=US,ST=WA,O=Example,CN=Signer\" (RFC 4514, C, ST and O at least)")
    };
    if dn.contains("=#") {
        return Err(syntax(
            "has a hex-encoded (=#) value, which Notation does not support",
        ));
    }
    let mut attributes = BTreeMap::new();
    let mut rest = dn.chars().peekable();
    loop {
        let mut key = String::new();
        for c in rest.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        let key = key.trim().to_ascii_uppercase();
        if key.is_empty() {
            return Err(syntax("has an attribute without a name"));
        }
        let mut value = String::new();
        let mut end = None;
        while let Some(c) = rest.next() {
            match c {
                '\\' => match rest.next() {
                    Some(h) if h.is_ascii_hexdigit() => {
                        let l = rest
                            .next()
                            .filter(char::is_ascii_hexdigit)
                            .ok_or_else(|| syntax("has a bad escape"))?;
                        let byte = u8::from_str_radix(&format!("{h}{l}"), 16).expect("hex digits");
                        value.push(byte as char);
                    }
                    Some(c) => value.push(c),
                    None => return Err(syntax("ends in a lone backslash")),
                },
                ',' | ';' | '+' => {
                    end = Some(c);
                    break;
                }
                c => value.push(c),
            }
        }
        if end == Some('+') {
            return Err(syntax(
                "has a multi-valued RDN (`+`), which Notation does not support",
            ));
        }
        let key = if key == "S" { "ST".to_string() } else { key };
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err(syntax(&format!("gives {key} no value")));
        }
        if attributes.insert(key.clone(), value).is_some() {
            return Err(syntax(&format!("gives {key} twice")));
        }
        if end.is_none() {
            break;
        }
    }
    for mandatory in ["C", "ST", "O"] {
        if !attributes.contains_key(mandatory) {
            return Err(syntax(&format!("has no {mandatory}")));
        }
    }
    Ok(attributes)
}

#[cfg(test)]
pub(crate) mod test_pki;
#[cfg(test)]
mod tests;
