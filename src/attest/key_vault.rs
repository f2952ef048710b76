//! Signing with a key in Azure Key Vault: a key URL checked once into a typed [`KeyVaultKey`], and
//! [`KeyVaultSigner`], the Notation [`Signer`] whose private key never leaves the vault.
//!
//! As Azure's Notation plugin (Azure/notation-azure-kv, `KeyVaultClient.cs` and
//! `GenerateSignature.cs`) does: the key belongs to the Key Vault certificate of the same name,
//! whose `cer` is the signing certificate and whose `kid` is the key version that signs; the chain
//! comes from `--sign-cert`, else from the certificate's backing secret (`sid`, PEM or PKCS#12),
//! and a self-signed certificate is its own chain. The vault signs a digest (`keys/sign`, api-version 7.4).

use std::fmt;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::attest::notation::{certificate_algorithm, Algorithm, Signer};
use crate::azure::keyvault::KeyVault;
use crate::azure::vault::Vault;
use crate::bad_input;

/// A key in Key Vault: `https://<vault>.vault.azure.net/keys/<name>[/<version>]` (a sovereign
/// cloud's vault domain as [`Vault::parse`] takes them; a loopback `http://` URL for tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyVaultKey {
    pub vault: Vault,
    /// The key's (and its certificate's) name.
    pub name: String,
    /// A version to sign with; the newest when absent.
    pub version: Option<String>,
}

impl KeyVaultKey {
    /// Parses a key URL; the error names the value and the expected form. A certificate URL
    /// (`…/certificates/<name>[/<version>]`, what Notation's Azure plugin takes as `--id`) names
    /// the same key.
    pub fn parse(url: &str) -> Result<KeyVaultKey, String> {
        let refuse = || {
            format!("`{url}` is not a Key Vault key URL; use https://<vault>.vault.azure.net/keys/<key>[/<version>]")
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(refuse)?;
        let (host, path) = rest.split_once('/').ok_or_else(refuse)?;
        let vault = Vault::parse(&format!("{scheme}://{host}/")).map_err(|_| refuse())?;
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let (name, version) = match segments.as_slice() {
            ["keys" | "certificates", name] => (*name, None),
            ["keys" | "certificates", name, version] => (*name, Some(*version)),
            _ => return Err(refuse()),
        };
        // Key Vault object names: 1–127 of letters, digits and `-`; versions are 32 hex digits.
        let valid_name = (1..=127).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let valid_version =
            version.is_none_or(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !valid_name || !valid_version {
            return Err(refuse());
        }
        Ok(KeyVaultKey {
            vault,
            name: name.to_string(),
            version: version.map(str::to_string),
        })
    }
}

impl fmt::Display for KeyVaultKey {
    /// The key URL in its one form: `<vault url>keys/<name>[/<version>]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}keys/{}", self.vault.url, self.name)?;
        if let Some(version) = &self.version {
            write!(f, "/{version}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for KeyVaultKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for KeyVaultKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let url = String::deserialize(deserializer)?;
        KeyVaultKey::parse(&url).map_err(serde::de::Error::custom)
    }
}

/// A Notation signer whose key stays in Key Vault: each signature is one `keys/sign` call on the
/// digest of the signing input.
pub struct KeyVaultSigner {
    vault: KeyVault,
    /// The key version that signs: the certificate's `kid`.
    kid: String,
    algorithm: Algorithm,
    chain: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for KeyVaultSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultSigner")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl KeyVaultSigner {
    /// Signs in through the credential chain and reads the certificate of `key`; `chain` (from
    /// `--sign-cert`, leaf first) replaces the chain Key Vault keeps. Bad input (exit 2): no such
    /// certificate or version, a `--sign-cert` whose first certificate is not the vault's, a chain
    /// that cannot be read or does not reach a root, a key Notation does not sign with.
    pub async fn connect(
        key: &KeyVaultKey,
        chain: Option<Vec<CertificateDer<'static>>>,
    ) -> anyhow::Result<KeyVaultSigner> {
        let vault = KeyVault::from_env(key.vault.clone())?;
        let named = |err: anyhow::Error| match err.downcast_ref::<crate::error::BadInput>() {
            Some(_) => bad_input!("--sign {key}: {err}"),
            None => err,
        };
        let bundle = vault
            .certificate(&key.name, key.version.as_deref())
            .await
            .map_err(named)?;
        if let Some(version) = &key.version {
            if bundle.kid.rsplit('/').next() != Some(version.as_str()) {
                anyhow::bail!(
                    "Key Vault answered the certificate {}/{version} with the key {}; refusing to sign with another version than the one asked for",
                    key.name,
                    bundle.kid
                );
            }
        }
        let leaf = CertificateDer::from(bundle.cer);
        let leaf_subject = subject(&leaf).ok_or_else(|| {
            bad_input!("--sign {key}: the certificate Key Vault keeps for this key is not a valid X.509 certificate")
        })?;
        let algorithm = certificate_algorithm(&leaf).map_err(|e| {
            bad_input!("--sign {key}: the certificate \"{leaf_subject}\" {e}; create the Key Vault certificate with an RSA (2048, 3072, 4096) or EC (P-256, P-384, P-521) key")
        })?;
        let chain = match chain {
            Some(given) => {
                if given.first() != Some(&leaf) {
                    let first = given.first().and_then(subject).unwrap_or_default();
                    return Err(bad_input!(
                        "the first certificate of --sign-cert (\"{first}\") is not the certificate of the Key Vault key {key} (\"{leaf_subject}\"); give that certificate first, then its issuers up to the root"
                    ));
                }
                given
            }
            None if self_signed(&leaf) => vec![leaf],
            None => {
                let secret = vault.secret_at(&bundle.sid).await.map_err(named)?;
                let found = backing_certificates(
                    key,
                    secret.content_type.as_deref(),
                    secret.value.expose(),
                )?;
                let chain = order_chain(leaf, found);
                let last = chain.last().expect("the leaf");
                if !self_signed(last) {
                    return Err(bad_input!(
                        "--sign {key}: the chain Key Vault keeps for this certificate ends with \"{}\", which is not a self-signed root; merge the issuers into the Key Vault certificate, or give the chain with --sign-cert",
                        subject(last).unwrap_or_default()
                    ));
                }
                chain
            }
        };
        Ok(KeyVaultSigner {
            vault,
            kid: bundle.kid,
            algorithm,
            chain,
        })
    }
}

#[async_trait::async_trait]
impl Signer for KeyVaultSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    async fn sign(&self, signing_input: &[u8]) -> anyhow::Result<Vec<u8>> {
        let digest = self.algorithm.digest(signing_input);
        self.vault
            .sign(&self.kid, self.algorithm.jws_name(), &digest)
            .await
    }
}

/// The certificates a Key Vault certificate's backing secret holds, in any order: the CERTIFICATE
/// blocks of PEM, or the certificate bags of PKCS#12 (Key Vault's default content type). As
/// Azure's Notation plugin reads them (Azure/notation-azure-kv, KeyVaultClient.cs:202-240 and
/// Certificate/Pkcs12.cs:17-50): the PKCS#12 value is the base64 of a PFX whose MAC matches no
/// password, and only its certificate bags are taken. The private key beside them is never read.
fn backing_certificates(
    key: &KeyVaultKey,
    content_type: Option<&str>,
    value: &str,
) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    const GIVE_PEM: &str =
        "give the chain as PEM with --sign-cert (the certificate first, then its issuers up to the root)";
    match content_type {
        Some("application/x-pem-file") => CertificateDer::pem_slice_iter(value.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                bad_input!("--sign {key}: the certificate's backing secret holds a CERTIFICATE block that is not valid PEM; {GIVE_PEM}")
            }),
        Some("application/x-pkcs12") => {
            use base64::Engine;
            let pfx = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map(zeroize::Zeroizing::new)
                .map_err(|_| {
                    bad_input!("--sign {key}: the certificate's backing secret (application/x-pkcs12) is not base64; {GIVE_PEM}")
                })?;
            crate::attest::pkcs12::certificates(&pfx).map_err(|why| {
                bad_input!("--sign {key}: the certificate's backing secret (application/x-pkcs12) {why}; {GIVE_PEM}")
            })
        }
        other => Err(bad_input!(
            "--sign {key}: the certificate's backing secret has the content type {}, neither application/x-pem-file nor application/x-pkcs12; {GIVE_PEM}",
            other.unwrap_or("(none)")
        )),
    }
}

fn parsed(der: &[u8]) -> Option<X509Certificate<'_>> {
    X509Certificate::from_der(der).ok().map(|(_, cert)| cert)
}

fn subject(der: &CertificateDer) -> Option<String> {
    parsed(der).map(|cert| cert.subject().to_string())
}

/// Whether the certificate names itself as its issuer (its signature is checked when signing).
fn self_signed(der: &CertificateDer) -> bool {
    parsed(der).is_some_and(|cert| cert.subject().as_raw() == cert.issuer().as_raw())
}

/// `leaf`, then from `found` (in any order, the leaf possibly among them) the issuer of each
/// certificate in turn, until a self-signed one or no issuer is found.
fn order_chain(
    leaf: CertificateDer<'static>,
    found: Vec<CertificateDer<'static>>,
) -> Vec<CertificateDer<'static>> {
    let mut rest: Vec<_> = found.into_iter().filter(|c| *c != leaf).collect();
    let mut chain = vec![leaf];
    loop {
        let last = chain.last().expect("the leaf");
        if self_signed(last) {
            return chain;
        }
        let Some(issuer) = parsed(last).map(|c| c.issuer().as_raw().to_vec()) else {
            return chain;
        };
        let next = rest.iter().position(|c| {
            parsed(c).is_some_and(|cert| cert.subject().as_raw() == issuer.as_slice())
        });
        match next {
            Some(i) => chain.push(rest.remove(i)),
            None => return chain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_urls_name_the_vault_the_key_and_the_version() {
        let key = KeyVaultKey::parse("https://shop-kv.vault.azure.net/keys/signer").unwrap();
        assert_eq!(key.vault.url, "https://shop-kv.vault.azure.net/");
        assert_eq!(key.name, "signer");
        assert_eq!(key.version, None);
        let key = KeyVaultKey::parse(
            "https://gov1.vault.usgovcloudapi.net/keys/signer/0123456789abcdef0123456789abcdef/",
        )
        .unwrap();
        assert_eq!(key.vault.name, "gov1");
        assert_eq!(
            key.version.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(
            key.vault.token_scope(),
            "https://vault.usgovcloudapi.net/.default"
        );
        let key = KeyVaultKey::parse("https://cn1.vault.azure.cn/certificates/signer").unwrap();
        assert_eq!(key.to_string(), "https://cn1.vault.azure.cn/keys/signer");
        let key = KeyVaultKey::parse("http://127.0.0.1:8443/keys/signer/v1").unwrap();
        assert_eq!(key.to_string(), "http://127.0.0.1:8443/keys/signer/v1");
        let json = serde_json::to_value(&key).unwrap();
        assert_eq!(json, "http://127.0.0.1:8443/keys/signer/v1");
        assert_eq!(serde_json::from_value::<KeyVaultKey>(json).unwrap(), key);
    }

    #[test]
    fn other_urls_are_refused_naming_the_value() {
        for bad in [
            "signer.pem",
            "https://shop-kv.vault.azure.net/",
            "https://shop-kv.vault.azure.net/keys",
            "https://shop-kv.vault.azure.net/keys/",
            "https://shop-kv.vault.azure.net/secrets/signer",
            "https://shop-kv.vault.azure.net/keys/signer/v1/sign",
            "https://shop-kv.vault.azure.net/keys/sign_er",
            "https://shop-kv.vault.azure.net/keys/signer?api-version=7.4",
            "http://shop-kv.vault.azure.net/keys/signer",
            "https://example.com/keys/signer",
            "https://shop.vault.microsoftazure.de/keys/signer",
            "http://10.0.0.1:8443/keys/signer",
        ] {
            let err = KeyVaultKey::parse(bad).unwrap_err();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
            assert!(err.contains("/keys/<key>[/<version>]"), "{err}");
        }
    }
}
