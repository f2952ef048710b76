//! Reads a bundle in place: it finds the tar's entries by their headers alone (skipping contents),
//! reads the index and manifests where they lie, and hashes or sends blobs from the archive itself.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use sha2::Digest as _;

use crate::bad_input;
use crate::oci::{Descriptor, Digest, ImageManifest};
use crate::registry::source::BlobSource;

/// The largest manifest (or contents) read whole.
const MANIFEST_LIMIT: u64 = 16 << 20;

/// An oci-archive opened for reading in place.
pub struct Archive {
    file: PathBuf,
    /// Blob digest (hex) → (offset of its bytes in the archive, size).
    blobs: HashMap<String, (u64, u64)>,
    index: Vec<Descriptor>,
}

impl Archive {
    /// Reads the headers of `file` (an oci-archive): every entry a regular file or directory
    /// below the archive's root, an `oci-layout` and an `index.json` among them.
    pub fn open(file: &Path) -> anyhow::Result<Archive> {
        let shown = file.display();
        let opened =
            File::open(file).map_err(|e| bad_input!("cannot read the archive {shown}: {e}"))?;
        let mut tar = tar::Archive::new(opened);
        let mut blobs = HashMap::new();
        let (mut index, mut layout) = (None, false);
        let entries = tar
            .entries_with_seek()
            .map_err(|e| bad_input!("{shown} is not a tar archive: {e}"))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| bad_input!("{shown} is not a valid tar archive: {e}"))?;
            let path = entry
                .path()
                .map_err(|e| bad_input!("{shown} holds an unreadable path: {e}"))?
                .into_owned();
            if path
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            {
                return Err(bad_input!(
                    "{shown} holds an unsafe path `{}`",
                    path.display()
                ));
            }
            match entry.header().entry_type() {
                tar::EntryType::Directory => continue,
                tar::EntryType::Regular => {}
                other => {
                    return Err(bad_input!(
                        "{shown} holds `{}` of unsupported type {other:?}; an oci-archive holds only files and directories",
                        path.display()
                    ))
                }
            }
            let name = path.to_string_lossy().replace('\\', "/");
            let name = name.trim_start_matches("./");
            let size = entry.header().size()?;
            match name {
                "index.json" => {
                    let mut bytes = Vec::new();
                    (&mut entry).take(MANIFEST_LIMIT).read_to_end(&mut bytes)?;
                    let parsed: serde_json::Value = serde_json::from_slice(&bytes)
                        .map_err(|e| bad_input!("{shown}: its index.json is not JSON: {e}"))?;
                    let manifests =
                        serde_json::from_value(parsed["manifests"].clone()).map_err(|e| {
                            bad_input!("{shown}: its index.json lists no manifests: {e}")
                        })?;
                    index = Some(manifests);
                }
                "oci-layout" => layout = true,
                _ => {
                    if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                        blobs.insert(hex.to_string(), (entry.raw_file_position(), size));
                    }
                }
            }
        }
        match (layout, index) {
            (true, Some(index)) => Ok(Archive {
                file: file.to_path_buf(),
                blobs,
                index,
            }),
            _ => Err(bad_input!(
                "{shown} is not an oci-archive (no oci-layout and index.json inside)"
            )),
        }
    }

    /// The descriptors its `index.json` lists.
    pub fn index(&self) -> &[Descriptor] {
        &self.index
    }

    /// Whether it holds blob `digest` of `size` bytes.
    pub fn has(&self, digest: &Digest, size: u64) -> bool {
        self.blobs
            .get(digest.hex())
            .is_some_and(|(_, s)| *s == size)
    }

    fn reader(&self, digest: &Digest) -> anyhow::Result<(std::io::Take<File>, u64)> {
        let Some(&(offset, size)) = self.blobs.get(digest.hex()) else {
            anyhow::bail!("it lacks blob {digest}");
        };
        let mut file = File::open(&self.file)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok((file.take(size), size))
    }

    /// The blob `digest` read whole (a manifest, the contents), checked against its digest.
    pub fn read_blob(&self, digest: &Digest) -> anyhow::Result<Vec<u8>> {
        let (mut reader, size) = self.reader(digest)?;
        if size > MANIFEST_LIMIT {
            anyhow::bail!("blob {digest} is {size} bytes, too large for a manifest");
        }
        let mut bytes = Vec::with_capacity(size as usize);
        reader.read_to_end(&mut bytes)?;
        if Digest::of(&bytes) != *digest {
            anyhow::bail!("blob {digest} does not hash to its name");
        }
        Ok(bytes)
    }

    /// Hashes blob `digest` where it lies: an error unless its bytes are that digest's.
    pub fn verify_blob(&self, digest: &Digest) -> anyhow::Result<()> {
        let (mut reader, _) = self.reader(digest)?;
        let mut hasher = sha2::Sha256::new();
        let mut buffer = vec![0u8; 1 << 17];
        loop {
            let n = reader.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        if hex::encode(hasher.finalize()) != digest.hex() {
            anyhow::bail!("blob {digest} does not hash to its name");
        }
        Ok(())
    }
}

impl BlobSource for Archive {
    fn manifest(&self, descriptor: &Descriptor) -> anyhow::Result<Vec<u8>> {
        self.read_blob(&descriptor.digest)
    }

    fn blob(&self, blob: &Descriptor) -> anyhow::Result<(PathBuf, u64)> {
        match self.blobs.get(blob.digest.hex()) {
            Some(&(offset, size)) if size == blob.size => Ok((self.file.clone(), offset)),
            _ => Err(bad_input!(
                "{} lacks blob {} of {} bytes",
                self.file.display(),
                blob.digest,
                blob.size
            )),
        }
    }

    fn referrers(&self, subject: &Digest) -> anyhow::Result<Vec<(Descriptor, ImageManifest)>> {
        let mut found = Vec::new();
        for descriptor in self.index.iter().filter(|d| d.artifact_type.is_some()) {
            let manifest: ImageManifest =
                serde_json::from_slice(&self.read_blob(&descriptor.digest)?)?;
            if manifest.subject.as_ref().map(|s| &s.digest) == Some(subject) {
                found.push((descriptor.clone(), manifest));
            }
        }
        Ok(found)
    }
}
