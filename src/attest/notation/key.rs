//! Defines what makes a signature: the [`Signer`] trait, and the local PEM key that implements it.
//! Loading a key checks that Notation signs with its kind and size and that its chain can sign.

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as lc, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::algorithm::Algorithm;
use super::certificates::{check_chain, key_algorithm, parse_cert, parse_chain};

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
