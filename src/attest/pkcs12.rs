//! The certificates of a PKCS#12 (PFX) file with an empty password, as Key Vault keeps the chain
//! of a certificate: the MAC checked, the certificate bags read, every key bag skipped unread.
//!
//! RFC 7292: a PFX holds an authenticated safe (§4.1) of SafeContents, each plain (`data`) or
//! password-encrypted (`encryptedData`) with the legacy PKCS#12 ciphers (Appendix C:
//! pbeWithSHAAnd3-KeyTripleDES-CBC, pbeWithSHAAnd40BitRC2-CBC, keys from the Appendix B KDF) or
//! PBES2 (RFC 8018 §6.2: PBKDF2 with AES-CBC, OpenSSL 3's default), and an HMAC over the safe
//! keyed from the password (Appendix B, ID 3). Certificates are only ever public: nothing here
//! decrypts a `pkcs8ShroudedKeyBag`, and a plain `keyBag` is dropped as it is found.

use std::fmt;

use cms::encrypted_data::EncryptedData;
use der::asn1::{ContextSpecific, ObjectIdentifier, OctetString};
use der::{Any, AnyRef, Decode};
use hmac::digest::core_api::BlockSizeUser;
use hmac::digest::{Digest, FixedOutputReset};
use hmac::{Mac, SimpleHmac};
use pkcs12::cert_type::CertBag;
use pkcs12::kdf::{derive_key, Pkcs12KeyType};
use pkcs12::mac_data::MacData;
use pkcs12::pbe_params::Pkcs12PbeParams;
use pkcs12::pfx::{Pfx, Version};
use pkcs12::safe_bag::SafeContents;
use rustls::pki_types::CertificateDer;
use zeroize::Zeroizing;

/// PKCS#7 `data` (RFC 5652 §4): a SafeContents in the clear.
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// PKCS#7 `encryptedData` (RFC 5652 §8): a SafeContents encrypted with the password.
const ID_ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
/// `x509Certificate` (RFC 7292 §4.2.3): a certificate bag holding DER X.509.
const X509_CERTIFICATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// The most key-derivation iterations taken: writers use 2048 (OpenSSL) or 2000 (.NET); a count
/// far beyond is a file made to keep the reader busy.
const MAX_ITERATIONS: u32 = 1_000_000;

/// The empty password as the PKCS#12 KDF takes it: a BMPString with its two-byte terminator (what
/// OpenSSL derives from `-passout pass:`); [`NULL_PASSWORD`] is the absent one (no bytes), which
/// other writers use for "no password". Both are tried, as OpenSSL's `PKCS12_parse` does.
const EMPTY_PASSWORD: &[u8] = &[0, 0];
const NULL_PASSWORD: &[u8] = &[];

/// Why a PFX gives no certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pkcs12Error {
    /// Not a PKCS#12 file this reader takes: what failed (never any of the file's bytes).
    Malformed(String),
    /// The MAC does not match with the empty password.
    Mac,
    /// Protected with an algorithm this reader does not implement: which one.
    Unsupported(String),
}

impl fmt::Display for Pkcs12Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkcs12Error::Malformed(what) => write!(f, "is not a PKCS#12 file ({what})"),
            Pkcs12Error::Mac => write!(
                f,
                "has a MAC that does not match the empty password (it was exported with a password)"
            ),
            Pkcs12Error::Unsupported(what) => {
                write!(f, "uses {what}, which spin-aks does not read")
            }
        }
    }
}

impl std::error::Error for Pkcs12Error {}

/// Where the DER fails, never what it holds (der's own message can quote a tag of the secret).
fn malformed(err: der::Error) -> Pkcs12Error {
    Pkcs12Error::Malformed(match err.position() {
        Some(at) => format!("its DER does not parse at byte {at}"),
        None => "its DER does not parse".into(),
    })
}

/// The X.509 certificates of the PFX `der` (with the empty password), in the order of its bags.
pub fn certificates(der: &[u8]) -> Result<Vec<CertificateDer<'static>>, Pkcs12Error> {
    let pfx = Pfx::from_der(der).map_err(malformed)?;
    if pfx.version != Version::V3 {
        return Err(Pkcs12Error::Malformed("its version is not 3".into()));
    }
    if pfx.auth_safe.content_type != ID_DATA {
        let oid = pfx.auth_safe.content_type;
        return Err(Pkcs12Error::Unsupported(format!(
            "public-key integrity (content type {oid})"
        )));
    }
    let safe = pfx
        .auth_safe
        .content
        .decode_as::<OctetString>()
        .map_err(malformed)?;
    let password = match &pfx.mac_data {
        Some(mac) => {
            let mut matching = None;
            for password in [EMPTY_PASSWORD, NULL_PASSWORD] {
                if mac_matches(mac, password, safe.as_bytes())? {
                    matching = Some(password);
                    break;
                }
            }
            matching.ok_or(Pkcs12Error::Mac)?
        }
        None => EMPTY_PASSWORD,
    };
    let infos = pkcs12::authenticated_safe::AuthenticatedSafe::from_der(safe.as_bytes())
        .map_err(malformed)?;
    let mut certificates = Vec::new();
    for info in infos {
        let contents = match info.content_type {
            ID_DATA => Zeroizing::new(
                info.content
                    .decode_as::<OctetString>()
                    .map_err(malformed)?
                    .into_bytes(),
            ),
            ID_ENCRYPTED_DATA => {
                let data = info
                    .content
                    .decode_as::<EncryptedData>()
                    .map_err(malformed)?;
                let encrypted = data.enc_content_info;
                let Some(ciphertext) = encrypted.encrypted_content else {
                    continue;
                };
                decrypt(
                    encrypted.content_enc_alg.oid,
                    encrypted.content_enc_alg.parameters.as_ref(),
                    ciphertext.as_bytes(),
                    password,
                )?
            }
            other => {
                return Err(Pkcs12Error::Unsupported(format!(
                    "a SafeContents of content type {other} (public-key privacy)"
                )))
            }
        };
        for bag in SafeContents::from_der(&contents).map_err(malformed)? {
            // Key bags, shrouded or not, CRL, secret and nested bags: skipped, never decoded.
            if bag.bag_id != pkcs12::PKCS_12_CERT_BAG_OID {
                continue;
            }
            let cert = ContextSpecific::<CertBag>::from_der(&bag.bag_value)
                .map_err(malformed)?
                .value;
            if cert.cert_id == X509_CERTIFICATE {
                certificates.push(CertificateDer::from(cert.cert_value.into_bytes()));
            }
        }
    }
    Ok(certificates)
}

/// A KDF iteration count within 1..=[`MAX_ITERATIONS`].
fn iterations(count: i64) -> Result<i32, Pkcs12Error> {
    match i32::try_from(count) {
        Ok(n) if n >= 1 && n as u32 <= MAX_ITERATIONS => Ok(n),
        _ => Err(Pkcs12Error::Malformed(format!(
            "an iteration count of {count}, outside 1 to {MAX_ITERATIONS}"
        ))),
    }
}

/// Whether the PFX's MAC over `safe` matches `password` (RFC 7292 Appendix B.4: HMAC keyed from
/// the password by the KDF with ID 3 and the MAC's digest).
fn mac_matches(mac: &MacData, password: &[u8], safe: &[u8]) -> Result<bool, Pkcs12Error> {
    let rounds = iterations(mac.iterations.into())?;
    let (salt, expected) = (mac.mac_salt.as_bytes(), mac.mac.digest.as_bytes());
    let matches = match mac.mac.algorithm.oid {
        SHA1 => hmac_matches::<sha1::Sha1>,
        SHA256 => hmac_matches::<sha2::Sha256>,
        SHA384 => hmac_matches::<sha2::Sha384>,
        SHA512 => hmac_matches::<sha2::Sha512>,
        other => {
            return Err(Pkcs12Error::Unsupported(format!(
                "a MAC with the digest {other}"
            )))
        }
    };
    Ok(matches(password, salt, rounds, safe, expected))
}

fn hmac_matches<D>(password: &[u8], salt: &[u8], rounds: i32, safe: &[u8], expected: &[u8]) -> bool
where
    D: Digest + FixedOutputReset + BlockSizeUser,
{
    let key = Zeroizing::new(derive_key::<D>(
        password,
        salt,
        Pkcs12KeyType::Mac,
        rounds,
        <D as Digest>::output_size(),
    ));
    let Ok(mut hmac) = SimpleHmac::<D>::new_from_slice(&key) else {
        return false;
    };
    hmac.update(safe);
    hmac.verify_slice(expected).is_ok()
}

/// The plaintext of an `encryptedData` SafeContents.
fn decrypt(
    algorithm: ObjectIdentifier,
    parameters: Option<&Any>,
    ciphertext: &[u8],
    password: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Pkcs12Error> {
    let parameters = parameters
        .ok_or_else(|| Pkcs12Error::Malformed(format!("{algorithm} without parameters")))?;
    match algorithm {
        pkcs12::PKCS_12_PBE_WITH_SHAAND3_KEY_TRIPLE_DES_CBC => {
            legacy::<des::TdesEde3>(parameters, ciphertext, password, 24)
        }
        pkcs12::PKCS_12_PBEWITH_SHAAND40_BIT_RC2_CBC => {
            legacy::<rc2::Rc2>(parameters, ciphertext, password, 5)
        }
        pkcs5::pbes2::PBES2_OID => {
            let params =
                pkcs5::pbes2::Parameters::try_from(AnyRef::from(parameters)).map_err(|e| {
                    Pkcs12Error::Unsupported(format!("PBES2 parameters it cannot take ({e})"))
                })?;
            match &params.kdf {
                pkcs5::pbes2::Kdf::Pbkdf2(kdf) => {
                    iterations(kdf.iteration_count.into())?;
                }
                _ => return Err(Pkcs12Error::Unsupported("PBES2 with scrypt".into())),
            }
            // PBES2 takes the password as UTF-8: empty, with no terminator.
            params
                .decrypt(b"", ciphertext)
                .map(Zeroizing::new)
                .map_err(|_| {
                    Pkcs12Error::Malformed(
                        "a SafeContents that does not decrypt with the empty password".into(),
                    )
                })
        }
        other => Err(Pkcs12Error::Unsupported(format!("the encryption {other}"))),
    }
}

/// RFC 7292 Appendix C: CBC with a key and IV from the PKCS#12 KDF over SHA-1.
fn legacy<C>(
    parameters: &Any,
    ciphertext: &[u8],
    password: &[u8],
    key_len: usize,
) -> Result<Zeroizing<Vec<u8>>, Pkcs12Error>
where
    C: cbc::cipher::BlockDecryptMut + cbc::cipher::BlockCipher + cbc::cipher::KeyInit,
{
    use cbc::cipher::block_padding::Pkcs7;
    use cbc::cipher::{BlockDecryptMut, KeyIvInit};
    let params = parameters
        .decode_as::<Pkcs12PbeParams>()
        .map_err(malformed)?;
    let rounds = iterations(params.iterations.into())?;
    let salt = params.salt.as_bytes();
    let key = Zeroizing::new(derive_key::<sha1::Sha1>(
        password,
        salt,
        Pkcs12KeyType::EncryptionKey,
        rounds,
        key_len,
    ));
    let iv = derive_key::<sha1::Sha1>(password, salt, Pkcs12KeyType::Iv, rounds, 8);
    let decryptor = cbc::Decryptor::<C>::new_from_slices(&key, &iv)
        .map_err(|_| Pkcs12Error::Malformed("a key or IV of the wrong length".into()))?;
    decryptor
        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
        .map(Zeroizing::new)
        .map_err(|_| {
            Pkcs12Error::Malformed(
                "a SafeContents that does not decrypt with the empty password".into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept fuzz corpus: PFX files of a leaf and its root (and the leaf's key) made by
    /// `openssl pkcs12 -export -passout pass:` in each encryption, with and without a MAC.
    fn seeds() -> Vec<(String, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/pkcs12");
        let mut seeds: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                (path.display().to_string(), std::fs::read(&path).unwrap())
            })
            .collect();
        seeds.sort();
        assert!(seeds.len() >= 8, "{seeds:?}");
        seeds
    }

    #[test]
    fn every_seed_gives_the_leaf_and_its_root() {
        for (name, pfx) in seeds() {
            let certificates = certificates(&pfx).unwrap_or_else(|e| panic!("{name}: {e}"));
            let subjects: Vec<String> = certificates
                .iter()
                .map(|c| {
                    let (_, cert) = x509_parser::parse_x509_certificate(c).unwrap();
                    cert.subject().to_string()
                })
                .collect();
            assert_eq!(subjects, ["CN=fuzz leaf", "CN=fuzz root"], "{name}");
        }
    }

    #[test]
    fn a_changed_or_cut_pfx_is_an_error_or_certificates_never_a_panic() {
        for (name, pfx) in seeds() {
            for at in 0..pfx.len() {
                let mut changed = pfx.clone();
                changed[at] ^= 0x5a;
                // A change the MAC covers is caught by it; elsewhere the structure or the
                // padding gives way, or the change lands inside a certificate's bytes.
                if let Err(err) = certificates(&changed) {
                    assert!(!err.to_string().is_empty(), "{name}");
                }
                assert!(certificates(&pfx[..at]).is_err(), "{name}: cut at {at}");
            }
        }
    }

    #[test]
    fn what_is_no_pfx_is_malformed_and_quotes_none_of_it() {
        for bad in [
            &b""[..],
            b"-----BEGIN CERTIFICATE-----",
            b"\x30\x03\x02\x01\x03",
        ] {
            match certificates(bad) {
                Err(Pkcs12Error::Malformed(what)) => {
                    assert!(what.starts_with("its DER does not parse"), "{what}");
                    assert!(!what.contains("0x"), "{what}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn iteration_counts_outside_one_to_a_million_are_refused() {
        for count in [0, -1, 1_000_001, i64::from(i32::MAX) + 1] {
            assert!(iterations(count).is_err(), "{count}");
        }
        assert_eq!(iterations(2048), Ok(2048));
        assert_eq!(iterations(1_000_000), Ok(1_000_000));
    }
}
