//! Signing an image in its layout before it is pushed: a Notation signature of the image and of its
//! provenance statement, made once per signing chain and kept while its certificate is valid.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::notation::{self, LocalKey, Signer, THUMBPRINT_ANNOTATION};
use super::PROVENANCE_ARTIFACT_TYPE;
use crate::oci::{Descriptor, Layout};
use crate::state::SigningKeyState;

/// What `--sign` names: a PEM private key file, or an Azure Key Vault key
/// (`https://NAME.vault.azure.net/keys/KEY[/VERSION]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigningKey {
    File(PathBuf),
    KeyVault(String),
}

/// What a push does about signing (`--sign`): sign with the key given (and remember it), sign
/// with the key remembered for the app (no flag), or stop signing (`--sign none`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signing {
    Remembered,
    Off,
    With(SignSettings),
}

impl Signing {
    /// The key to sign with now, given what the app remembers, and what to remember after.
    pub fn resolve(
        &self,
        remembered: Option<&SigningKeyState>,
    ) -> anyhow::Result<(Option<SignSettings>, Option<SigningKeyState>)> {
        match self {
            Signing::Off => Ok((None, None)),
            Signing::With(settings) => Ok((Some(settings.clone()), Some(settings.state()))),
            Signing::Remembered => match remembered {
                None => Ok((None, None)),
                Some(state) => {
                    let settings = SignSettings::new(&state.key, state.cert.clone())
                        .map_err(|e| e.context("the signing key remembered for this app (give --sign KEY, or --sign none)"))?;
                    Ok((Some(settings), Some(state.clone())))
                }
            },
        }
    }
}

/// The `--sign` and `--sign-cert` flags, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignSettings {
    pub key: SigningKey,
    /// The PEM chain, leaf first; else the key file's own certificates, or Key Vault's.
    pub cert: Option<PathBuf>,
}

impl SignSettings {
    /// `--sign KEY [--sign-cert FILE]`: a URL is a Key Vault key, anything else a key file,
    /// which must exist (its contents are read when signing, never shown).
    pub fn new(key: &str, cert: Option<PathBuf>) -> anyhow::Result<SignSettings> {
        let key = if key.starts_with("https://") || key.starts_with("http://") {
            crate::attest::key_vault::KeyVaultKey::parse(key).map_err(|why| {
                crate::bad_input!("--sign `{key}` is not a Key Vault key URL: {why}")
            })?;
            SigningKey::KeyVault(key.to_string())
        } else {
            let path = std::path::absolute(key).unwrap_or_else(|_| PathBuf::from(key));
            if !path.is_file() {
                return Err(crate::bad_input!(
                    "--sign {} {}; give a PEM private key file or a Key Vault key URL (https://NAME.vault.azure.net/keys/KEY)",
                    path.display(),
                    not_a_file(&path)
                ));
            }
            SigningKey::File(path)
        };
        if let Some(cert) = cert.as_ref().filter(|c| !c.is_file()) {
            return Err(crate::bad_input!(
                "--sign-cert {} {}; give the PEM certificate chain of the signing key, leaf first",
                cert.display(),
                not_a_file(cert)
            ));
        }
        let cert = cert.map(|c| std::path::absolute(&c).unwrap_or(c));
        Ok(SignSettings { key, cert })
    }

    /// What the state file keeps of it: where the key is, never the key.
    pub fn state(&self) -> SigningKeyState {
        SigningKeyState {
            key: match &self.key {
                SigningKey::File(path) => path.display().to_string(),
                SigningKey::KeyVault(url) => url.clone(),
            },
            cert: self.cert.clone(),
        }
    }
}

/// Why `path` is no file to read: "does not exist", or "is a directory, not a file".
fn not_a_file(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(meta) => format!(
            "is {}, not a file",
            crate::file_kind::describe(meta.file_type())
        ),
        Err(_) => "does not exist".to_string(),
    }
}

/// The signer `settings` names: the key file with its chain, or the Key Vault key (whose
/// private key never leaves the vault) with its certificate's chain.
pub async fn signer(settings: &SignSettings) -> anyhow::Result<Box<dyn Signer>> {
    match &settings.key {
        SigningKey::File(key) => {
            // Without --sign-cert the key file holds the chain too (one PEM with both).
            let chain = settings.cert.as_deref().unwrap_or(key);
            Ok(Box::new(LocalKey::load(key, chain)?))
        }
        SigningKey::KeyVault(url) => {
            let key = crate::attest::key_vault::KeyVaultKey::parse(url)
                .map_err(|why| crate::bad_input!("--sign `{url}`: {why}"))?;
            let chain = match &settings.cert {
                Some(file) => Some(read_chain(file)?),
                None => None,
            };
            let signer = crate::attest::key_vault::KeyVaultSigner::connect(&key, chain).await?;
            Ok(Box::new(signer))
        }
    }
}

/// The certificates of a PEM file, for a chain given beside a Key Vault key.
fn read_chain(file: &Path) -> anyhow::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    let bytes = std::fs::read(file)
        .map_err(|e| crate::bad_input!("cannot read --sign-cert {}: {e}", file.display()))?;
    notation::parse_chain(&bytes, &file.display().to_string())
}

/// Signs the layout's image and its provenance statement with `signer`, unless a signature by
/// the same chain is there already and its leaf certificate is still valid: an unchanged `up`
/// signs nothing. Returns the signatures made.
pub async fn sign_layout(
    layout: &Layout,
    image: &Descriptor,
    signer: &dyn Signer,
) -> anyhow::Result<Vec<Descriptor>> {
    let mut subjects = vec![plain(image)];
    for (descriptor, _) in layout.referrers(&image.digest)? {
        if descriptor.artifact_type.as_deref() == Some(PROVENANCE_ARTIFACT_TYPE) {
            subjects.push(plain(&descriptor));
        }
    }
    let chain = notation::thumbprints(signer.chain());
    let now = SystemTime::now();
    let mut made = Vec::new();
    for subject in subjects {
        let signed = layout
            .referrers(&subject.digest)?
            .into_iter()
            .any(|(d, _)| {
                d.artifact_type.as_deref() == Some(notation::ARTIFACT_TYPE)
                    && d.annotations.get(THUMBPRINT_ANNOTATION) == Some(&chain)
            });
        if signed && notation::chain_valid_at(signer.chain(), now) {
            continue;
        }
        let signature = notation::sign(&subject, signer, now).await?;
        layout.write_blob(&signature.envelope)?;
        made.push(layout.add_referrer_manifest(&signature.manifest)?);
    }
    Ok(made)
}

/// A descriptor as a signature's subject names it: no annotations, no artifact type.
fn plain(descriptor: &Descriptor) -> Descriptor {
    Descriptor::new(
        &descriptor.media_type,
        descriptor.digest.clone(),
        descriptor.size,
    )
}
