//! Notary Project (Notation) signatures: a JWS envelope over a manifest descriptor (`notary.x509`
//! scheme) with its signature manifest, the local-key [`Signer`], and verification by Notation's rules.
//!
//! Specifications (notaryproject/specifications): `specs/signature-specification.md` (payload,
//! signature manifest, §Certificate Requirements), `specs/signature-envelope-jws.md` (headers,
//! signing input, `alg` values), `specs/trust-store-trust-policy.md` (verification steps). Where
//! the spec leaves room, this follows what notation v1.3.2 does (notation-go v1.3.2 `verifier`,
//! notation-core-go v1.3.0 `signature/jws` and `x509`).

mod algorithm;
mod certificates;
mod envelope;
mod identity;
mod key;
mod verification;

pub use self::algorithm::Algorithm;
pub use self::certificates::{certificate_algorithm, chain_valid_at, parse_chain, thumbprints};
pub use self::envelope::{
    sign, Signature, ARTIFACT_TYPE, CREATED_ANNOTATION, EMPTY_CONFIG, EMPTY_CONFIG_MEDIA_TYPE,
    ENVELOPE_MEDIA_TYPE, PAYLOAD_CONTENT_TYPE, SIGNING_AGENT, THUMBPRINT_ANNOTATION,
};
pub use self::identity::parse_subject;
pub use self::key::{LocalKey, Signer};
pub use self::verification::{claimed_signer, verify, Refusal, TrustPolicy, Verified};

#[cfg(test)]
pub(crate) mod test_pki;
#[cfg(test)]
mod tests;
