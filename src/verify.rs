//! The verify step: an image's Notary Project signatures checked against trusted certificates, in
//! a registry (referrers API, else the tag schema) or offline in an oci-archive; SBOM and provenance listed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

use crate::attest::notation::{self, Refusal, TrustPolicy};
use crate::attest::{PROVENANCE_ARTIFACT_TYPE, SBOM_ARTIFACT_TYPE};
use crate::bad_input;
use crate::cache::{ContentCache, Hints};
use crate::context::AppContext;
use crate::oci::reference::{ImageRef, RegistryRef};
use crate::oci::{archive, media_types, Descriptor, Digest, ImageManifest, Layout};
use crate::output::Output;
use crate::push::RegistrySettings;
use crate::registry::push::tag_schema;
use crate::registry::RegistryClient;
use crate::state::VerifyTrust;

/// The largest signature envelope or provenance statement read (each is a few KiB).
const BLOB_LIMIT: u64 = 4 << 20;

/// The cache's hints: the provenance statements found about an image, by the image's digest.
const HINTS: &str = "referrers";

/// What `--trust-cert` files hold, as the refusal of one that holds none says.
const TRUST_CERT_HOLDS: &str = "the certificate(s) to trust: the signers' root or intermediate CA";

/// The image to verify.
#[derive(Clone, Debug)]
pub enum Subject {
    /// In a registry, named by tag or digest.
    Registry(RegistryRef),
    /// In an oci-archive as `export` writes it: the image of that name in it, else its one image.
    Archive {
        file: PathBuf,
        image: Option<String>,
    },
}

/// `--trust-cert` files and `--subject` (already checked by `notation::parse_subject`).
#[derive(Clone, Debug, Default)]
pub struct TrustSettings {
    pub certs: Vec<PathBuf>,
    pub subject: Option<String>,
}

/// `spin-aks verify`'s flags, validated (made by `cli`: `VerifyArgs::settings`).
#[derive(Clone, Debug)]
pub struct VerifySettings {
    pub subject: Subject,
    pub trust: TrustSettings,
    pub registry: RegistrySettings,
}

/// The verification `up` and `apply` are asked for: `--verify` (`Some(true)`), `--no-verify`
/// (`Some(false)`) or neither (what the app remembers), with the trust flags.
#[derive(Clone, Debug, Default)]
pub struct DeployVerify {
    pub verify: Option<bool>,
    pub trust: TrustSettings,
}

/// The outcome of one signature.
#[derive(Clone, Debug, Serialize)]
pub struct SignatureReport {
    /// The signature manifest's digest.
    pub digest: Digest,
    /// `verified`, a refusal (`untrusted-chain`, `wrong-identity`, `tampered-payload`,
    /// `expired`), or `unreadable` when the envelope could not be fetched or is not JWS.
    pub verdict: &'static str,
    /// The signing certificate's subject (as the envelope claims it, when refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// When the signer says it signed (RFC 3339), for a verified signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_time: Option<String>,
    /// Why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The check that let an image through `up --verify` or `apply --verify`, as their reports show it.
#[derive(Clone, Debug, Serialize)]
pub struct VerifiedImage {
    /// The image manifest's digest, the one applied.
    pub digest: Digest,
    /// The signature manifest that verified.
    pub signature: Digest,
    /// Its signing certificate's subject.
    pub signer: String,
    /// When it was signed (RFC 3339).
    pub signing_time: String,
}

/// An SBOM found beside the image.
#[derive(Clone, Debug, Serialize)]
pub struct ArtifactReport {
    pub digest: Digest,
    pub artifact_type: String,
}

/// A provenance statement found beside the image, and its own signatures.
#[derive(Clone, Debug, Serialize)]
pub struct ProvenanceReport {
    pub digest: Digest,
    pub artifact_type: String,
    /// The statement's subject digest (`sha256:…`), when it names one.
    pub subject: Option<String>,
    /// Whether that subject is the verified image.
    pub matches_image: bool,
    pub signatures: Vec<SignatureReport>,
}

/// What `verify` found: `spin-aks verify --output json` (docs/schemas/v1/verify.json).
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// The reference given, or the archive (with the image's name in it).
    pub image: String,
    /// `registry` or `archive`.
    pub source: &'static str,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// True when at least one signature of the image verified.
    pub verified: bool,
    pub signatures: Vec<SignatureReport>,
    pub sboms: Vec<ArtifactReport>,
    pub provenance: Vec<ProvenanceReport>,
}

impl VerifyReport {
    /// Why the image does not verify (`None` when it does): unsigned, or each signature's verdict.
    pub fn refusal(&self) -> Option<String> {
        if self.verified {
            return None;
        }
        if self.signatures.is_empty() {
            return Some(Refusal::Unsigned.to_string());
        }
        let each: Vec<String> = (self.signatures.iter())
            .map(|s| format!("{}: {}", s.digest, s.reason.as_deref().unwrap_or(s.verdict)))
            .collect();
        Some(each.join("; "))
    }

    /// The error a refused image is: exit 1, naming the image and why.
    pub fn require(&self) -> anyhow::Result<VerifiedImage> {
        if let Some(why) = self.refusal() {
            anyhow::bail!("{} ({}) does not verify: {why}", self.image, self.digest);
        }
        let signature = (self.signatures.iter())
            .find(|s| s.verdict == "verified")
            .ok_or_else(|| anyhow::anyhow!("{} has no verified signature", self.image))?;
        Ok(VerifiedImage {
            digest: self.digest.clone(),
            signature: signature.digest.clone(),
            signer: signature.signer.clone().unwrap_or_default(),
            signing_time: signature.signing_time.clone().unwrap_or_default(),
        })
    }

    /// One summary line and a line per signature, SBOM and provenance statement.
    pub fn lines(&self) -> String {
        let verified = self.signatures.iter().filter(|s| s.verdict == "verified");
        let head = match self.verified {
            true => "verified",
            false => "NOT verified",
        };
        let mut lines = vec![format!(
            "{head} {} ({}): {} of {} signature(s) verify",
            self.image,
            self.digest,
            verified.count(),
            self.signatures.len()
        )];
        lines.extend(
            self.signatures
                .iter()
                .map(|s| signature_line("signature", s)),
        );
        lines.extend(
            self.sboms
                .iter()
                .map(|s| format!("  SBOM {} ({})", s.digest, s.artifact_type)),
        );
        for p in &self.provenance {
            let matches = if p.matches_image { "is" } else { "is NOT" };
            lines.push(format!(
                "  provenance {}: its subject {matches} this image",
                p.digest
            ));
            let signatures = p.signatures.iter();
            lines.extend(signatures.map(|s| signature_line("  provenance signature", s)));
        }
        lines.join("\n")
    }
}

fn signature_line(what: &str, s: &SignatureReport) -> String {
    let signer = s.signer.as_deref().unwrap_or("an unknown signer");
    match &s.reason {
        None => format!("  {what} {} verified: signed by {signer}", s.digest),
        Some(reason) => format!("  {what} {} refused ({}): {reason}", s.digest, s.verdict),
    }
}

/// Verifies `subject` under `policy`: its manifest as the registry (or archive) holds it, every
/// Notation signature referring to it, its SBOMs, and its provenance with that one's signatures.
/// A registry is reached as `registry` says; an archive needs no network.
pub async fn verify(
    subject: &Subject,
    policy: &TrustPolicy,
    registry: &RegistrySettings,
    out: &Output,
) -> anyhow::Result<VerifyReport> {
    // Keeps an unpacked archive until the report is made.
    let mut _unpacked = None;
    let mut early = BTreeMap::new();
    let (store, descriptor, image, source) = match subject {
        Subject::Registry(reference) => {
            let (client, _) = crate::push::registry_client(reference, registry, None, out).await?;
            let mut client = client.pull_only();
            let digest = pinned_or_resolved(&mut client, reference).await?;
            let store = Store::Registry(
                Box::new(client),
                ContentCache::open("content"),
                OnceLock::new(),
            );
            // The image's manifest and the list of what is about it, asked for at once; with
            // them, the lists about the provenance statements an earlier run found, guessing
            // the registry has no referrers API (a guess only: what the image's list names now,
            // and whether the registry answered its API, decide which are used).
            let hinted = (Hints::open(HINTS).map(|h| h.get(&digest))).unwrap_or_default();
            let guessed = join_all(hinted.iter().map(|d| store.tag_schema_list(d)));
            let (descriptor, referrers, guessed) =
                futures_util::join!(store.descriptor(&digest), store.referrers(&digest), guessed);
            if store.has_referrers_api() == Some(false) {
                early = (hinted.into_iter().zip(guessed))
                    .filter_map(|(d, found)| Some((d, found.ok()?)))
                    .collect();
            }
            let image = reference.to_string();
            (store, (descriptor?, Some(referrers?)), image, "registry")
        }
        Subject::Archive { file, image } => {
            let dir = crate::interrupt::temp_dir()?;
            let layout = archive::unpack(file, dir.path())?;
            _unpacked = Some(dir);
            let name = match image {
                Some(name) => Some(name.clone()),
                None => crate::push::image_and_carried(&layout)?.0,
            };
            let (descriptor, _) = layout.image(name.as_deref())?;
            let descriptor =
                Descriptor::new(&descriptor.media_type, descriptor.digest, descriptor.size);
            let shown = match image {
                Some(name) => format!("{}:{name}", file.display()),
                None => file.display().to_string(),
            };
            (Store::Layout(layout), (descriptor, None), shown, "archive")
        }
    };
    let (descriptor, referrers) = descriptor;
    let referrers = match referrers {
        Some(found) => found,
        None => store.referrers(&descriptor.digest).await?,
    };
    let now = SystemTime::now();
    let of_type = |kind: &str| -> Vec<Descriptor> {
        let wanted = |d: &&Descriptor| d.artifact_type.as_deref() == Some(kind);
        referrers.iter().filter(wanted).cloned().collect()
    };
    let signed = of_type(notation::ARTIFACT_TYPE);
    let signatures = signatures(&store, &signed, &descriptor, policy, now);
    let statements = of_type(PROVENANCE_ARTIFACT_TYPE);
    if let (Store::Registry(..), Some(hints)) = (&store, Hints::open(HINTS)) {
        let found: Vec<Digest> = statements.iter().map(|d| d.digest.clone()).collect();
        hints.put(&descriptor.digest, &found);
    }
    let provenance = join_all(statements.into_iter().map(|statement| {
        let known = early.remove(&statement.digest);
        provenance(&store, statement, known, &descriptor, policy, now)
    }));
    let (signatures, provenance) = futures_util::join!(signatures, provenance);
    Ok(VerifyReport {
        image,
        source,
        verified: signatures.iter().any(|s| s.verdict == "verified"),
        digest: descriptor.digest,
        media_type: descriptor.media_type,
        size: descriptor.size,
        signatures,
        sboms: (of_type(SBOM_ARTIFACT_TYPE).into_iter())
            .map(|d| ArtifactReport {
                digest: d.digest,
                artifact_type: SBOM_ARTIFACT_TYPE.into(),
            })
            .collect(),
        provenance: provenance.into_iter().collect::<anyhow::Result<_>>()?,
    })
}

/// Each Notation signature among `found` checked as the signature of `subject`.
async fn signatures(
    store: &Store,
    found: &[Descriptor],
    subject: &Descriptor,
    policy: &TrustPolicy,
    now: SystemTime,
) -> Vec<SignatureReport> {
    join_all(found.iter().map(|signature| async move {
        let (verdict, signer, signing_time, reason) = match store.envelope(signature).await {
            Err(e) => ("unreadable", None, None, Some(format!("{e:#}"))),
            Ok(envelope) => match notation::verify(&envelope, subject, policy, now) {
                Ok(ok) => {
                    let seconds = ok
                        .signing_time
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default();
                    let time = crate::build::assemble::rfc3339(seconds.as_secs());
                    ("verified", Some(ok.signer), Some(time), None)
                }
                Err(refusal) => {
                    let signer = notation::claimed_signer(&envelope);
                    (verdict(&refusal), signer, None, Some(refusal.to_string()))
                }
            },
        };
        SignatureReport {
            digest: signature.digest.clone(),
            verdict,
            signer,
            signing_time,
            reason,
        }
    }))
    .await
}

/// A provenance statement about `image`: the subject it names, and its own signatures (from
/// `known`, its referrer list when already fetched in this run).
async fn provenance(
    store: &Store,
    statement: Descriptor,
    known: Option<Vec<Descriptor>>,
    image: &Descriptor,
    policy: &TrustPolicy,
    now: SystemTime,
) -> anyhow::Result<ProvenanceReport> {
    #[derive(Deserialize)]
    struct Statement {
        #[serde(default)]
        subject: Vec<StatementSubject>,
    }
    #[derive(Deserialize)]
    struct StatementSubject {
        #[serde(default)]
        digest: std::collections::BTreeMap<String, String>,
    }
    let about = Descriptor::new(
        media_types::IMAGE_MANIFEST,
        statement.digest.clone(),
        statement.size,
    );
    // What the statement is about, and who signed it: two chains of requests, run at once.
    let subject = async {
        let manifest = store.manifest(&statement).await?;
        let Some(layer) = manifest.layers.first() else {
            return anyhow::Ok(None);
        };
        let bytes = store.blob(layer).await?;
        let parsed: Option<Statement> = serde_json::from_slice(&bytes).ok();
        let first = parsed.and_then(|s| s.subject.into_iter().next());
        Ok(first.and_then(|s| s.digest.get("sha256").map(|hex| format!("sha256:{hex}"))))
    };
    let signed = async {
        let found = match known {
            Some(found) => found,
            None => store.referrers(&statement.digest).await?,
        };
        let found: Vec<Descriptor> = (found.into_iter())
            .filter(|d| d.artifact_type.as_deref() == Some(notation::ARTIFACT_TYPE))
            .collect();
        anyhow::Ok(signatures(store, &found, &about, policy, now).await)
    };
    let (subject, signatures) = futures_util::join!(subject, signed);
    let subject = subject?;
    Ok(ProvenanceReport {
        matches_image: subject.as_deref() == Some(image.digest.to_string().as_str()),
        subject,
        signatures: signatures?,
        digest: statement.digest,
        artifact_type: PROVENANCE_ARTIFACT_TYPE.into(),
    })
}

/// A refusal's verdict as the report names it.
fn verdict(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::Unsigned => "unsigned",
        Refusal::UntrustedChain(_) => "untrusted-chain",
        Refusal::WrongIdentity(_) => "wrong-identity",
        Refusal::TamperedPayload(_) => "tampered-payload",
        Refusal::Expired(_) => "expired",
    }
}

/// The digest of the image `reference` names: the one it pins, else the one its tag names now
/// (a HEAD, which also settles whether a loopback registry speaks HTTPS).
async fn pinned_or_resolved(
    client: &mut RegistryClient,
    reference: &RegistryRef,
) -> anyhow::Result<Digest> {
    if let Some(digest) = reference.digest().filter(|_| !client.probes_scheme()) {
        return Ok(digest.clone());
    }
    let wanted = match (reference.digest(), reference.tag()) {
        (Some(digest), _) => digest.to_string(),
        (None, tag) => tag.unwrap_or("latest").to_string(),
    };
    client
        .first_manifest_digest(&wanted)
        .await?
        .ok_or_else(|| anyhow::anyhow!("{} has no image {wanted}", reference.repository_name()))
}

/// The descriptors an index listing the artifacts about `subject` holds.
fn parse_index(subject: &Digest, index: &[u8]) -> anyhow::Result<Vec<Descriptor>> {
    #[derive(Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<Descriptor>,
    }
    let index: Index = serde_json::from_slice(index).map_err(|e| {
        anyhow::anyhow!(
            "the registry's list of the artifacts about {subject} is not an image index: {e}"
        )
    })?;
    Ok(index.manifests)
}

/// The bytes `cache` keeps for `digest`, else what `fetch` gets (checked against `digest` by
/// the client), kept for next time.
async fn kept_or(
    cache: Option<&ContentCache>,
    digest: &Digest,
    fetch: impl std::future::Future<Output = anyhow::Result<Vec<u8>>>,
) -> anyhow::Result<Vec<u8>> {
    if let Some(bytes) = cache.and_then(|c| c.get(digest)) {
        return Ok(bytes);
    }
    let bytes = fetch.await?;
    if let Some(cache) = cache {
        cache.put(digest, &bytes);
    }
    Ok(bytes)
}

/// Where manifests and blobs are read from.
enum Store {
    /// A registry; what it served by digest is kept in the cache (it cannot change), so a
    /// verification asks again only for the lists of what is about the image. The last part is
    /// whether the registry has the referrers API, once its first answer said so.
    Registry(Box<RegistryClient>, Option<ContentCache>, OnceLock<bool>),
    /// An unpacked archive.
    Layout(Layout),
}

impl Store {
    /// The artifacts about `subject`: the referrers API, else the tag schema's index; or the
    /// layout's index.
    async fn referrers(&self, subject: &Digest) -> anyhow::Result<Vec<Descriptor>> {
        let (client, api) = match self {
            Store::Layout(layout) => {
                let found = layout.referrers(subject)?;
                return Ok(found.into_iter().map(|(d, _)| d).collect());
            }
            Store::Registry(client, _, api) => (client, api),
        };
        let tag = tag_schema(subject);
        let by_tag = || async {
            let found = client.find_manifest(&tag).await?;
            anyhow::Ok(found.map(|(index, _)| index))
        };
        let index = match api.get() {
            Some(true) => client.referrers(subject).await?,
            Some(false) => by_tag().await?,
            // Until the registry has said whether it has the API, both are asked at once: a
            // registry without it (distribution 2.8) costs no extra round trip, one with it an
            // unused tag look-up.
            None => {
                let (listed, tagged) = futures_util::join!(client.referrers(subject), by_tag());
                let listed = listed?;
                let _ = api.set(listed.is_some());
                match listed {
                    Some(index) => Some(index),
                    None => tagged?,
                }
            }
        };
        match index {
            Some(index) => parse_index(subject, &index),
            None => Ok(Vec::new()),
        }
    }

    /// Whether the registry has the referrers API, once a list was asked for.
    fn has_referrers_api(&self) -> Option<bool> {
        match self {
            Store::Registry(_, _, api) => api.get().copied(),
            Store::Layout(_) => None,
        }
    }

    /// The artifacts about `subject` the referrers tag schema lists (nothing else is asked).
    async fn tag_schema_list(&self, subject: &Digest) -> anyhow::Result<Vec<Descriptor>> {
        let Store::Registry(client, _, _) = self else {
            return self.referrers(subject).await;
        };
        match client.find_manifest(&tag_schema(subject)).await? {
            Some((index, _)) => parse_index(subject, &index),
            None => Ok(Vec::new()),
        }
    }

    /// The descriptor of the registry's image manifest `digest`: the media type it answers with
    /// (else the manifest's own, else OCI's), the digest and size of its bytes.
    async fn descriptor(&self, digest: &Digest) -> anyhow::Result<Descriptor> {
        let Store::Registry(client, cache, _) = self else {
            anyhow::bail!("an archive's image is described by its index");
        };
        let declared = |bytes: &[u8]| {
            serde_json::from_slice::<ImageManifest>(bytes)
                .ok()
                .and_then(|m| m.media_type)
        };
        // A kept manifest that names its own media type is described without a request.
        let kept = cache.as_ref().and_then(|c| c.get(digest));
        if let Some((bytes, media_type)) = kept.and_then(|b| declared(&b).map(|t| (b, t))) {
            return Ok(Descriptor::new(
                &media_type,
                digest.clone(),
                bytes.len() as u64,
            ));
        }
        let (bytes, served) = client
            .get_manifest(&digest.to_string(), Some(digest))
            .await?;
        if let Some(cache) = cache {
            cache.put(digest, &bytes);
        }
        let declared = declared(&bytes);
        let media_type = served
            .map(|t| t.split(';').next().unwrap_or_default().trim().to_string())
            .filter(|t| !t.is_empty())
            .or(declared)
            .unwrap_or_else(|| media_types::IMAGE_MANIFEST.to_string());
        Ok(Descriptor::new(
            &media_type,
            digest.clone(),
            bytes.len() as u64,
        ))
    }

    /// The manifest `descriptor` points at, checked against its digest.
    async fn manifest(&self, descriptor: &Descriptor) -> anyhow::Result<ImageManifest> {
        let bytes = match self {
            Store::Registry(client, cache, _) => {
                let digest = &descriptor.digest;
                let fetch = async {
                    Ok(client
                        .get_manifest(&digest.to_string(), Some(digest))
                        .await?
                        .0)
                };
                kept_or(cache.as_ref(), digest, fetch).await?
            }
            Store::Layout(layout) => read_blob(layout, descriptor)?,
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "the manifest {} is not an image manifest: {e}",
                descriptor.digest
            )
        })
    }

    /// A small blob, checked against its digest.
    async fn blob(&self, descriptor: &Descriptor) -> anyhow::Result<Vec<u8>> {
        match self {
            Store::Registry(client, cache, _) => {
                let digest = &descriptor.digest;
                let fetch = client.get_small_blob(digest, BLOB_LIMIT);
                kept_or(cache.as_ref(), digest, fetch).await
            }
            Store::Layout(layout) => read_blob(layout, descriptor),
        }
    }

    /// The JWS envelope of the signature manifest `signature`.
    async fn envelope(&self, signature: &Descriptor) -> anyhow::Result<Vec<u8>> {
        let manifest = self.manifest(signature).await?;
        let layer = match manifest.layers.as_slice() {
            [one] if one.media_type == notation::ENVELOPE_MEDIA_TYPE => one,
            [one] => anyhow::bail!(
                "its envelope is {}, and spin-aks verifies JWS envelopes ({}) only",
                one.media_type,
                notation::ENVELOPE_MEDIA_TYPE
            ),
            layers => anyhow::bail!(
                "the signature manifest has {} layers, not the one envelope",
                layers.len()
            ),
        };
        self.blob(layer).await
    }
}

/// A blob of the layout, refused past [`BLOB_LIMIT`] or when its bytes are not its digest's.
fn read_blob(layout: &Layout, descriptor: &Descriptor) -> anyhow::Result<Vec<u8>> {
    let path = layout.blob_path(&descriptor.digest);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    if size > BLOB_LIMIT {
        anyhow::bail!(
            "the blob {} is {size} bytes, too large to be a signature or statement",
            descriptor.digest
        );
    }
    let bytes = std::fs::read(&path)
        .map_err(|e| anyhow::anyhow!("the archive lacks blob {} ({e})", descriptor.digest))?;
    if Digest::of(&bytes) != descriptor.digest {
        anyhow::bail!(
            "the archive's blob {} does not match its digest",
            descriptor.digest
        );
    }
    Ok(bytes)
}

/// The certificates of `--trust-cert` files and the `--subject` to require.
pub fn trust_policy(trust: &TrustSettings) -> anyhow::Result<TrustPolicy> {
    let mut roots = Vec::new();
    for file in &trust.certs {
        roots.extend(crate::tls::certificate_file(
            file,
            "--trust-cert",
            TRUST_CERT_HOLDS,
        )?);
    }
    Ok(TrustPolicy {
        roots,
        subject: trust.subject.clone(),
    })
}

/// The trust `up` or `apply` verifies with: the flags given, else what the app remembers
/// (`--verify` alone takes the remembered certificates; `--no-verify` forgets them). What is
/// given is remembered, so a later `up` with no flags verifies again. `None`: no verification.
/// Checked before anything is built, pushed or applied.
pub fn deploy_policy(
    ctx: &mut AppContext,
    given: &DeployVerify,
    out: &Output,
) -> anyhow::Result<Option<TrustPolicy>> {
    let remembered = ctx.remembered().verify.clone();
    let wanted = match (given.verify, &remembered) {
        (Some(false), None) | (None, None) => return Ok(None),
        (Some(false), Some(_)) => {
            ctx.remember(out, |app| app.verify = None)?;
            return Ok(None);
        }
        (None, Some(remembered)) => remembered.clone(),
        (Some(true), _) if !given.trust.certs.is_empty() => {
            // Read first: a refusal names the file as given.
            trust_policy(&given.trust)?;
            let certs = (given.trust.certs.iter()).map(|c| absolute(c)).collect::<anyhow::Result<_>>()?;
            VerifyTrust { trust_certs: certs, subject: given.trust.subject.clone() }
        }
        (Some(true), Some(remembered)) => VerifyTrust {
            subject: given.trust.subject.clone().or(remembered.subject.clone()),
            ..remembered.clone()
        },
        (Some(true), None) => return Err(bad_input!(
            "--verify needs the certificates to trust: give --trust-cert FILE (the signers' root or intermediate CA certificate, PEM or DER; repeatable)"
        )),
    };
    let trust = TrustSettings {
        certs: wanted.trust_certs.clone(),
        subject: wanted.subject.clone(),
    };
    let policy = trust_policy(&trust).map_err(|e| match given.trust.certs.is_empty() {
        true => bad_input!("{e:#} (remembered from an earlier --verify: give --trust-cert again, or --no-verify to stop verifying)"),
        false => e,
    })?;
    if remembered.as_ref() != Some(&wanted) {
        ctx.remember(out, |app| app.verify = Some(wanted))?;
    }
    Ok(Some(policy))
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(path)
        .map_err(|e| bad_input!("cannot read the --trust-cert {}: {e}", path.display()))
}

/// Verifies `image` before a deploy, its registry reached as `registry` says: the image pinned by
/// the digest that verified (what is then applied), or an error (exit 1) naming why not.
pub async fn require(
    image: &ImageRef,
    policy: &TrustPolicy,
    registry: &RegistrySettings,
    out: &Output,
) -> anyhow::Result<(ImageRef, VerifiedImage)> {
    let reference = RegistryRef::parse(&image.to_string()).map_err(|_| {
        bad_input!("--verify needs the image's registry, and `{image}` names none: give --image REGISTRY/REPOSITORY@sha256:…")
    })?;
    let report = verify(&Subject::Registry(reference.clone()), policy, registry, out).await?;
    let verified = report.require()?;
    out.info(report.lines());
    Ok((ImageRef::from(reference.pinned(&report.digest)), verified))
}

/// [`require`] when `policy` asks for verification, else `image` as it is.
pub async fn require_if(
    policy: Option<&TrustPolicy>,
    image: ImageRef,
    registry: &RegistrySettings,
    out: &Output,
) -> anyhow::Result<(ImageRef, Option<VerifiedImage>)> {
    match policy {
        Some(policy) => {
            let (image, verified) = require(&image, policy, registry, out).await?;
            Ok((image, Some(verified)))
        }
        None => Ok((image, None)),
    }
}
