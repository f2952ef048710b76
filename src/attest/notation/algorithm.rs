//! Lists the signature algorithms Notation allows, each tied to one key type and size. It names
//! them as JWS does and says how each one hashes and checks a signature.

use aws_lc_rs::signature as lc;
use sha2::Digest as _;

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
    pub(super) fn verification(self) -> &'static dyn lc::VerificationAlgorithm {
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
    pub(super) fn key_name(self) -> &'static str {
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
