//! spin-aks's cache folder, and a content-addressed store in it for small registry content that
//! never changes once named by its digest (manifests, signature envelopes, attestations).

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

    /// Keeps `bytes`, which the caller checked hash to `digest` (a temporary file renamed into
    /// place, owner-only; no fsync: a torn file is a miss).
    pub fn put(&self, digest: &Digest, bytes: &[u8]) {
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let mut temp = crate::interrupt::temp_file_in(&self.dir)?;
            temp.write_all(bytes)?;
            temp.persist(self.dir.join(digest.hex()))?;
            Ok(())
        };
        if let Err(err) = write() {
            tracing::debug!("cannot keep {digest} in {}: {err}", self.dir.display());
        }
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
