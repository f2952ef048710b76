//! An OCI image layout on disk (`oci-layout`, `index.json`, `blobs/sha256/`): blobs are hashed
//! while they are written and renamed into place; the index is replaced atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::media_types::{EMPTY_JSON, IMAGE_INDEX, IMAGE_MANIFEST, REF_NAME_ANNOTATION};
use super::{json, Digest, HashingWriter};

const OCI_LAYOUT_FILE: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// The file in a layout a build holds locked while it writes (and its push reads): it holds the
/// holder's process id, for the message of a build that waits. Not part of the image.
pub const LOCK_FILE: &str = ".spin-aks.lock";

/// An OCI content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// What an artifact manifest holds (a signature, an SBOM), on the descriptor that points at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }

    /// The descriptor of the empty JSON blob `{}`, an artifact manifest's config.
    pub fn empty_json() -> Self {
        Descriptor::new(
            EMPTY_JSON,
            Digest::of(EMPTY_JSON_BYTES),
            EMPTY_JSON_BYTES.len() as u64,
        )
    }
}

/// The bytes of the empty JSON blob.
pub const EMPTY_JSON_BYTES: &[u8] = b"{}";

/// An OCI image manifest. `media_type` is optional because Spin's artifact omits it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// An artifact's type (OCI 1.1): a signature, an SBOM, a provenance statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// The manifest this one is about (OCI 1.1 referrers): what a signature signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// Every blob the manifest references: config first, then the layers.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        std::iter::once(&self.config).chain(&self.layers)
    }

    /// An artifact about `subject`: `artifact_type`, the empty config and `layers`.
    pub fn artifact(
        artifact_type: &str,
        subject: &Descriptor,
        layers: Vec<Descriptor>,
        annotations: BTreeMap<String, String>,
    ) -> Self {
        let mut subject = subject.clone();
        subject.annotations.clear();
        ImageManifest {
            schema_version: 2,
            media_type: Some(IMAGE_MANIFEST.to_string()),
            artifact_type: Some(artifact_type.to_string()),
            config: Descriptor::empty_json(),
            layers,
            subject: Some(subject),
            annotations,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    manifests: Vec<Descriptor>,
}

/// `root`'s `blobs/sha256/`, made absolute when the working directory can be read.
fn blobs_dir(root: &Path) -> PathBuf {
    let blobs = root.join("blobs").join("sha256");
    std::path::absolute(&blobs).unwrap_or(blobs)
}

/// A directory holding an OCI image layout.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
    /// `blobs/sha256/`, absolute: a temporary blob created there costs no lookup of the
    /// working directory (one per file of a build).
    blobs: PathBuf,
    /// Whether it already held an image when opened: a rebuild, whose blobs mostly exist.
    rebuild: bool,
    /// The lock of [`Layout::create_exclusive`], released when the last clone drops.
    lock: Option<Arc<File>>,
}

impl Layout {
    /// Opens `root` as a layout, creating the directory structure if it is not one yet.
    pub fn create(root: &Path) -> anyhow::Result<Self> {
        let layout = Layout {
            root: root.to_path_buf(),
            blobs: blobs_dir(root),
            rebuild: root.join("index.json").is_file(),
            lock: None,
        };
        fs::create_dir_all(layout.blobs_dir()).with_context(|| {
            format!("cannot create the OCI layout directory {}", root.display())
        })?;
        let marker = root.join("oci-layout");
        if !marker.exists() {
            write_atomically(&marker, OCI_LAYOUT_FILE.as_bytes(), FileAccess::Shared)?;
        }
        Ok(layout)
    }

    /// Opens an existing layout, failing (as bad input) when `root` does not hold one.
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        if !root.join("oci-layout").is_file() || !root.join("index.json").is_file() {
            return Err(crate::bad_input!(
                "{} is not an OCI image layout (no oci-layout or index.json); run `spin-aks build` to write one",
                root.display()
            ));
        }
        Ok(Layout {
            root: root.to_path_buf(),
            blobs: blobs_dir(root),
            rebuild: true,
            lock: None,
        })
    }

    /// [`Layout::create`] for a build: first waits until no other spin-aks writes into `root`
    /// (`waiting` is told once, naming the layout and the process), then keeps others out until
    /// this layout and its clones are dropped, so a build's blobs are never swept by another's.
    pub fn create_exclusive(root: &Path, waiting: impl FnOnce(String)) -> anyhow::Result<Self> {
        fs::create_dir_all(root).with_context(|| {
            format!("cannot create the OCI layout directory {}", root.display())
        })?;
        let path = root.join(LOCK_FILE);
        let cannot = |e: io::Error| {
            anyhow::Error::new(e).context(format!("cannot lock the OCI layout {}", root.display()))
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(cannot)?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim().parse::<u32>() {
                    Ok(pid) => format!("spin-aks (pid {pid})"),
                    Err(_) => "another spin-aks".to_string(),
                };
                waiting(format!(
                    "waiting for the OCI layout {}: {holder} is writing into it",
                    root.display()
                ));
                fs4::FileExt::lock(&file).map_err(cannot)?;
            }
            Err(fs4::TryLockError::Error(e)) => return Err(cannot(e)),
        }
        file.set_len(0).map_err(cannot)?;
        file.rewind().map_err(cannot)?;
        write!(file, "{}", std::process::id()).map_err(cannot)?;
        let mut layout = Layout::create(root)?;
        layout.lock = Some(Arc::new(file));
        Ok(layout)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.blobs.clone()
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// Starts a blob; bytes are hashed as they are written and the blob is named on `commit`.
    pub fn blob_writer(&self) -> anyhow::Result<BlobWriter> {
        let file = crate::interrupt::shared_temp_file_in(&self.blobs_dir())
            .context("cannot create a temporary blob in the OCI layout")?;
        Ok(BlobWriter {
            writer: HashingWriter::new(BufWriter::new(file)),
            blobs_dir: self.blobs_dir(),
        })
    }

    /// Whether the layout held an image before this build started.
    pub fn is_rebuild(&self) -> bool {
        self.rebuild
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Copies `file`, whose digest the caller has just computed, into the blob `digest`.
    /// File-to-file, so `io::copy` lets the kernel copy (copy_file_range) without a user buffer.
    pub fn copy_blob(&self, file: &mut File, digest: &Digest) -> anyhow::Result<()> {
        let mut temp = crate::interrupt::shared_temp_file_in(&self.blobs_dir())
            .context("cannot create a temporary blob in the OCI layout")?;
        io::copy(file, temp.as_file_mut())?;
        let path = self.blob_path(digest);
        temp.persist(&path)
            .with_context(|| format!("cannot write blob {}", path.display()))?;
        Ok(())
    }

    /// Writes a small in-memory blob (manifests, configs) and returns its digest and size.
    pub fn write_blob(&self, bytes: &[u8]) -> anyhow::Result<(Digest, u64)> {
        let digest = Digest::of(bytes);
        let path = self.blob_path(&digest);
        if !path.exists() {
            write_atomically(&path, bytes, FileAccess::Shared)?;
        }
        Ok((digest, bytes.len() as u64))
    }

    /// Writes `manifest` canonically and makes it the layout's only image, named `tag`.
    pub fn set_image(&self, manifest: &ImageManifest, tag: &str) -> anyhow::Result<Descriptor> {
        let bytes = json::to_canonical_vec(manifest)?;
        let (digest, _) = self.write_blob(&bytes)?;
        // Artifacts about this very image (and about those) stay: an unchanged rebuild keeps its
        // SBOM and its signature, and writes nothing.
        let kept = match read_json::<Index>(&self.root.join("index.json")) {
            Ok(index) => self.about(index.manifests, &digest)?,
            Err(_) => Vec::new(),
        };
        self.put_image(manifest, tag, kept)
    }

    /// The artifacts among `manifests` that are about `image`, or about such an artifact.
    fn about(&self, manifests: Vec<Descriptor>, image: &Digest) -> anyhow::Result<Vec<Descriptor>> {
        let mut candidates = Vec::new();
        for descriptor in manifests {
            if let Some(subject) = self.subject_of(&descriptor)? {
                candidates.push((descriptor, subject));
            }
        }
        let mut wanted: BTreeSet<Digest> = BTreeSet::from([image.clone()]);
        loop {
            let before = wanted.len();
            for (descriptor, subject) in &candidates {
                if wanted.contains(subject) {
                    wanted.insert(descriptor.digest.clone());
                }
            }
            if wanted.len() == before {
                break;
            }
        }
        Ok(candidates
            .into_iter()
            .filter(|(descriptor, _)| wanted.contains(&descriptor.digest))
            .map(|(descriptor, _)| descriptor)
            .collect())
    }

    /// Writes `manifest` canonically and adds it to the layout's images as `tag` (replacing an
    /// image of that name): `export --with-deploy` puts the deploy artifact beside the image.
    pub fn add_image(&self, manifest: &ImageManifest, tag: &str) -> anyhow::Result<Descriptor> {
        let index: Index = read_json(&self.root.join("index.json"))?;
        let others = (index.manifests.into_iter())
            .filter(|d| d.annotations.get(REF_NAME_ANNOTATION).map(String::as_str) != Some(tag))
            .collect();
        self.put_image(manifest, tag, others)
    }

    /// Writes the manifest and an index of it, named `tag`, and `others`.
    fn put_image(
        &self,
        manifest: &ImageManifest,
        tag: &str,
        mut others: Vec<Descriptor>,
    ) -> anyhow::Result<Descriptor> {
        let bytes = json::to_canonical_vec(manifest)?;
        let (digest, size) = self.write_blob(&bytes)?;
        let mut descriptor = Descriptor::new(IMAGE_MANIFEST, digest, size);
        descriptor
            .annotations
            .insert(REF_NAME_ANNOTATION.to_string(), tag.to_string());
        // Images first, in the order they came; artifacts after them.
        let at = others
            .iter()
            .position(|d| d.artifact_type.is_some())
            .unwrap_or(others.len());
        others.insert(at, descriptor.clone());
        self.write_index(others)?;
        Ok(descriptor)
    }

    /// The names (`org.opencontainers.image.ref.name`) of the layout's images, in index order.
    pub fn tags(&self) -> anyhow::Result<Vec<String>> {
        let index: Index = read_json(&self.root.join("index.json"))?;
        Ok(index
            .manifests
            .iter()
            .filter(|d| d.artifact_type.is_none())
            .filter_map(|d| d.annotations.get(REF_NAME_ANNOTATION).cloned())
            .collect())
    }

    /// The image named `tag` (or the only image when `tag` is `None`) and its parsed manifest.
    pub fn image(&self, tag: Option<&str>) -> anyhow::Result<(Descriptor, ImageManifest)> {
        let index: Index = read_json(&self.root.join("index.json"))?;
        let named = |d: &&Descriptor| {
            d.artifact_type.is_none()
                && tag.is_none_or(|t| {
                    d.annotations.get(REF_NAME_ANNOTATION).map(String::as_str) == Some(t)
                })
        };
        let candidates: Vec<&Descriptor> = index.manifests.iter().filter(named).collect();
        let descriptor = match candidates.as_slice() {
            [one] => (*one).clone(),
            [] => bail!(crate::error::BadInput(format!(
                "the OCI layout {} has no image{}",
                self.root.display(),
                tag.map(|t| format!(" tagged `{t}`")).unwrap_or_default()
            ))),
            _ => bail!(crate::error::BadInput(format!(
                "the OCI layout {} holds several images; name one by its tag",
                self.root.display()
            ))),
        };
        let manifest: ImageManifest = read_json(&self.blob_path(&descriptor.digest))?;
        Ok((descriptor, manifest))
    }

    /// Adds `manifest`, an artifact about an image of the layout (its `subject`), to the index
    /// without a name, replacing an artifact of the same type about the same subject: a rebuilt
    /// SBOM or a new signature takes the old one's place. Its blobs must be written already.
    pub fn add_referrer(&self, manifest: &ImageManifest) -> anyhow::Result<Descriptor> {
        self.add_referrer_manifest(&json::to_canonical_vec(manifest)?)
    }

    /// [`Layout::add_referrer`] of a manifest's exact bytes (a signature manifest made elsewhere,
    /// whose digest must not change). Its layers must be written already.
    pub fn add_referrer_manifest(&self, bytes: &[u8]) -> anyhow::Result<Descriptor> {
        let manifest: ImageManifest = serde_json::from_slice(bytes)
            .context("an artifact's manifest is not an OCI image manifest")?;
        let (Some(subject), Some(artifact_type)) = (&manifest.subject, &manifest.artifact_type)
        else {
            bail!("an artifact added beside an image needs a subject and an artifact type");
        };
        if manifest.config.digest == Descriptor::empty_json().digest {
            self.write_blob(EMPTY_JSON_BYTES)?;
        }
        let (digest, size) = self.write_blob(bytes)?;
        let mut descriptor = Descriptor::new(IMAGE_MANIFEST, digest, size);
        descriptor.artifact_type = Some(artifact_type.clone());
        descriptor.annotations = manifest.annotations.clone();
        let index: Index = read_json(&self.root.join("index.json"))?;
        if index.manifests.contains(&descriptor) {
            return Ok(descriptor);
        }
        let mut manifests = self.without(&subject.digest, artifact_type)?;
        manifests.push(descriptor.clone());
        self.write_index(manifests)?;
        Ok(descriptor)
    }

    /// Removes the artifacts of `artifact_type` about `subject`, and what was about them.
    pub fn remove_referrers(&self, subject: &Digest, artifact_type: &str) -> anyhow::Result<()> {
        let manifests = self.without(subject, artifact_type)?;
        self.write_index(manifests)
    }

    /// The index's manifests without the artifacts of `artifact_type` about `subject`, and then
    /// without whatever was about what went (the signature of a replaced SBOM), and so on.
    fn without(&self, subject: &Digest, artifact_type: &str) -> anyhow::Result<Vec<Descriptor>> {
        let index: Index = read_json(&self.root.join("index.json"))?;
        let mut entries = Vec::with_capacity(index.manifests.len() + 1);
        let mut gone = BTreeSet::new();
        for descriptor in index.manifests {
            let about = self.subject_of(&descriptor)?;
            let replaced = descriptor.artifact_type.as_deref() == Some(artifact_type)
                && about.as_ref() == Some(subject);
            if replaced {
                gone.insert(descriptor.digest.clone());
            } else {
                entries.push((descriptor, about));
            }
        }
        while !gone.is_empty() {
            let (orphans, kept) = entries.into_iter().partition::<Vec<_>, _>(|(_, about)| {
                about.as_ref().is_some_and(|d| gone.contains(d))
            });
            entries = kept;
            gone = orphans.into_iter().map(|(d, _)| d.digest).collect();
        }
        Ok(entries.into_iter().map(|(d, _)| d).collect())
    }

    /// The descriptors `index.json` lists, in order.
    pub fn index(&self) -> anyhow::Result<Vec<Descriptor>> {
        let index: Index = read_json(&self.root.join("index.json"))?;
        Ok(index.manifests)
    }

    /// Replaces `index.json` with an index of exactly `manifests` (a bundle's, written whole).
    pub fn set_index(&self, manifests: Vec<Descriptor>) -> anyhow::Result<()> {
        self.write_index(manifests)
    }

    /// The blob `digest`, read whole and checked against it.
    pub fn read_blob(&self, digest: &Digest) -> anyhow::Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let bytes = fs::read(&path).with_context(|| format!("cannot read blob {digest}"))?;
        if Digest::of(&bytes) != *digest {
            bail!("blob {digest} holds other bytes");
        }
        Ok(bytes)
    }

    /// Replaces `index.json` with an index of `manifests` (nothing is written when it holds them).
    fn write_index(&self, manifests: Vec<Descriptor>) -> anyhow::Result<()> {
        let index = Index {
            schema_version: 2,
            media_type: Some(IMAGE_INDEX.to_string()),
            manifests,
        };
        write_atomically(
            &self.root.join("index.json"),
            &json::to_canonical_vec(&index)?,
            FileAccess::Shared,
        )
    }

    /// The artifacts about the manifest `subject` (signatures, SBOMs), in index order, each with
    /// its parsed manifest.
    pub fn referrers(&self, subject: &Digest) -> anyhow::Result<Vec<(Descriptor, ImageManifest)>> {
        let index: Index = read_json(&self.root.join("index.json"))?;
        let mut found = Vec::new();
        for descriptor in index.manifests {
            if descriptor.artifact_type.is_none() {
                continue;
            }
            let manifest: ImageManifest = read_json(&self.blob_path(&descriptor.digest))?;
            if manifest.subject.as_ref().map(|s| &s.digest) == Some(subject) {
                found.push((descriptor, manifest));
            }
        }
        Ok(found)
    }

    /// The subject of the artifact `descriptor` points at, if it is one.
    fn subject_of(&self, descriptor: &Descriptor) -> anyhow::Result<Option<Digest>> {
        if descriptor.artifact_type.is_none() {
            return Ok(None);
        }
        let manifest: ImageManifest = read_json(&self.blob_path(&descriptor.digest))?;
        Ok(manifest.subject.map(|s| s.digest))
    }

    /// Deletes blobs that no image in the index references, so rebuilding never grows the layout.
    pub fn remove_unreferenced_blobs(&self) -> anyhow::Result<usize> {
        let index: Index = read_json(&self.root.join("index.json"))?;
        let mut keep = BTreeSet::new();
        for descriptor in &index.manifests {
            keep.insert(descriptor.digest.hex().to_string());
            let manifest: ImageManifest = read_json(&self.blob_path(&descriptor.digest))?;
            keep.extend(manifest.blobs().map(|b| b.digest.hex().to_string()));
        }
        let mut removed = 0;
        for entry in fs::read_dir(self.blobs_dir())? {
            let entry = entry?;
            if !keep.contains(entry.file_name().to_string_lossy().as_ref()) {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// A blob being written into a layout. Dropping it without `commit` leaves nothing behind.
pub struct BlobWriter {
    writer: HashingWriter<BufWriter<tempfile::NamedTempFile>>,
    blobs_dir: PathBuf,
}

impl BlobWriter {
    /// Names the blob by its digest. An identical blob already present is kept as is.
    pub fn commit(self) -> anyhow::Result<(Digest, u64)> {
        self.commit_if(|_| true)
    }

    /// [`BlobWriter::commit`] of bytes that must hash to `expected` (fetched by that digest);
    /// other bytes are discarded and refused.
    pub fn commit_expecting(self, expected: &Digest) -> anyhow::Result<u64> {
        let (got, size) = self.commit_if(|got| got == expected)?;
        if got != *expected {
            anyhow::bail!("the bytes of blob {expected} hash to {got}");
        }
        Ok(size)
    }

    /// Names the blob by its digest when `keep` accepts that digest; drops it otherwise.
    fn commit_if(self, keep: impl FnOnce(&Digest) -> bool) -> anyhow::Result<(Digest, u64)> {
        let (digest, size, buffered) = self.writer.finish();
        if !keep(&digest) {
            return Ok((digest, size));
        }
        let temp = buffered
            .into_inner()
            .map_err(|e| write_failed(&self.blobs_dir, e.into_error()))?;
        let path = self.blobs_dir.join(digest.hex());
        if !path.exists() {
            temp.persist(&path)
                .with_context(|| format!("cannot write blob {}", path.display()))?;
        }
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer
            .write(buf)
            .map_err(|e| write_failed(&self.blobs_dir, e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer
            .flush()
            .map_err(|e| write_failed(&self.blobs_dir, e))
    }
}

/// A blob write error naming the layout directory it was writing into (where space ran out, say).
fn write_failed(blobs_dir: &Path, err: io::Error) -> io::Error {
    let dir = blobs_dir.display();
    io::Error::new(err.kind(), format!("cannot write a blob into {dir}: {err}"))
}

/// Who may read a file spin-aks writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileAccess {
    /// Its owner only (0600): the state file, a kubeconfig, caches of what a cluster said.
    Private,
    /// Others too, as the umask allows (0666 less the umask): an OCI layout, an archive.
    Shared,
}

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8], access: FileAccess) -> anyhow::Result<()> {
    if holds_already(path, bytes, access) {
        return Ok(());
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = crate::interrupt::owned_temp_file_in(dir, access == FileAccess::Shared);
    let mut temp =
        temp.with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Whether `path` is a regular file (not followed if a link) with the mode `access` gives and
/// that holds exactly `bytes`, as the write would leave it: then nothing is written (an
/// unchanged build or state costs no fsync).
fn holds_already(path: &Path, bytes: &[u8], access: FileAccess) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    let mode = meta.permissions().mode() & 0o777;
    let right_mode = match access {
        FileAccess::Private => mode & 0o077 == 0,
        FileAccess::Shared => mode == 0o666 & !umask(),
    };
    meta.is_file()
        && meta.len() == bytes.len() as u64
        && right_mode
        && fs::read(path).is_ok_and(|held| held == bytes)
}

/// The process's umask, read from `/proc/self/status` (setting it to read it would race other
/// threads); 022 where the kernel does not say.
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                let line = status.lines().find(|l| l.starts_with("Umask:"))?;
                u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
            })
            .unwrap_or(0o022)
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_reader(io::BufReader::new(file))
        .with_context(|| format!("{} is not valid OCI JSON", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_writer_names_the_blob_by_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let mut writer = layout.blob_writer().unwrap();
        writer.write_all(b"layer bytes").unwrap();
        let (digest, size) = writer.commit().unwrap();
        assert_eq!(digest, Digest::of(b"layer bytes"));
        assert_eq!(size, 11);
        assert_eq!(fs::read(layout.blob_path(&digest)).unwrap(), b"layer bytes");
    }

    #[test]
    fn unreferenced_blobs_are_removed_and_referenced_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let (config, config_size) = layout.write_blob(b"{}").unwrap();
        let (stale, _) = layout.write_blob(b"old layer").unwrap();
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(IMAGE_MANIFEST.into()),
            config: Descriptor::new(
                super::super::media_types::IMAGE_CONFIG,
                config.clone(),
                config_size,
            ),
            layers: vec![],
            artifact_type: None,
            subject: None,
            annotations: BTreeMap::new(),
        };
        layout.set_image(&manifest, "1.0.0").unwrap();
        assert_eq!(layout.remove_unreferenced_blobs().unwrap(), 1);
        assert!(!layout.blob_path(&stale).exists());
        assert!(layout.blob_path(&config).exists());
        let (_, read_back) = layout.image(Some("1.0.0")).unwrap();
        assert_eq!(read_back, manifest);
    }
}
