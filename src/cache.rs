//! spin-aks's cache folder: a content-addressed store for small registry content that never
//! changes once named by its digest (manifests, envelopes, attestations), and hints by digest.

use std::io::Write as _;
use std::path::PathBuf;

use crate::oci::Digest;

/// `SPIN_AKS_CACHE_DIR/<kind>`, else `$XDG_CACHE_HOME/spin-aks/<kind>` (`~/.cache/…`); `None`
/// when there is no home to put it in.
pub fn dir(kind: &str) -> Option<PathBuf> {
    let base = match std::env::var_os("SPIN_AKS_CACHE_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => dirs::cache_dir()?.join("spin-aks"),
    };
    Some(base.join(kind))
}

/// Bytes kept by their SHA-256 digest: what is read back is hashed again and used only when it
/// still matches, so a damaged or replaced file is a miss, never wrong content. Best effort: a
/// cache that cannot be written costs a request next time, nothing else.
#[derive(Clone, Debug)]
pub struct ContentCache {
    dir: PathBuf,
}

impl ContentCache {
    /// The store of `kind` in the cache folder; `None` without one.
    pub fn open(kind: &str) -> Option<ContentCache> {
        dir(kind).map(|dir| ContentCache { dir })
    }

    /// The bytes kept for `digest`, when they still hash to it.
    pub fn get(&self, digest: &Digest) -> Option<Vec<u8>> {
        let path = self.dir.join(digest.hex());
        // Only a regular file of ours is read: a link planted there is not followed.
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if !meta.is_file() {
            return None;
        }
        let bytes = std::fs::read(&path).ok()?;
        (Digest::of(&bytes) == *digest).then_some(bytes)
    }

    /// Keeps `bytes`, which the caller checked hash to `digest`.
    pub fn put(&self, digest: &Digest, bytes: &[u8]) {
        keep(&self.dir, digest, bytes);
    }
}

/// Digests remembered about a subject (by its digest): what an earlier run found, used only to
/// start a request early. Never trusted: what is found now decides.
#[derive(Clone, Debug)]
pub struct Hints {
    dir: PathBuf,
}

impl Hints {
    /// The hints of `kind` in the cache folder; `None` without one.
    pub fn open(kind: &str) -> Option<Hints> {
        dir(kind).map(|dir| Hints { dir })
    }

    /// The digests remembered about `subject` (none when nothing readable is kept).
    pub fn get(&self, subject: &Digest) -> Vec<Digest> {
        let path = self.dir.join(subject.hex());
        let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
        let text = regular
            .then(|| std::fs::read_to_string(&path).ok())
            .flatten();
        (text.unwrap_or_default().lines())
            .filter_map(|line| line.parse().ok())
            .collect()
    }

    /// Remembers `found` about `subject`, unless that is what is kept already.
    pub fn put(&self, subject: &Digest, found: &[Digest]) {
        if self.get(subject) == found {
            return;
        }
        let text: String = found.iter().map(|d| format!("{d}\n")).collect();
        keep(&self.dir, subject, text.as_bytes());
    }
}

/// Writes `bytes` as `dir/<digest's hex>`: a temporary file renamed into place, owner-only, no
/// fsync (a torn file is a miss). Best effort: a failure is only logged.
fn keep(dir: &std::path::Path, digest: &Digest, bytes: &[u8]) {
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut temp = crate::interrupt::temp_file_in(dir)?;
        temp.write_all(bytes)?;
        temp.persist(dir.join(digest.hex()))?;
        Ok(())
    };
    if let Err(err) = write() {
        tracing::debug!("cannot keep {digest} in {}: {err}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_kept_comes_back_and_damaged_or_linked_files_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ContentCache {
            dir: dir.path().join("content"),
        };
        let bytes = b"{\"schemaVersion\":2}".to_vec();
        let digest = Digest::of(&bytes);
        assert_eq!(cache.get(&digest), None, "empty");
        cache.put(&digest, &bytes);
        assert_eq!(cache.get(&digest), Some(bytes.clone()));

        let path = dir.path().join("content").join(digest.hex());
        std::fs::write(&path, b"other bytes").unwrap();
        assert_eq!(cache.get(&digest), None, "replaced content is a miss");

        std::fs::remove_file(&path).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, &bytes).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert_eq!(cache.get(&digest), None, "a link is not followed");
    }
}
