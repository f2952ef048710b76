//! Defines where a push reads what it sends: an OCI layout directory, or anything else that holds
//! manifests and blobs by digest (such as an oci-archive read in place, `bundle::archive`).

use std::path::PathBuf;

use crate::oci::{Descriptor, Digest, ImageManifest, Layout};

/// Manifests and blobs by digest, and the artifacts about a manifest.
pub trait BlobSource: Sync {
    /// The manifest's exact bytes, checked against its digest: those bytes are what gets pushed.
    fn manifest(&self, descriptor: &Descriptor) -> anyhow::Result<Vec<u8>>;
    /// Where the blob's bytes are: a file, and the offset they start at in it. Refused as bad
    /// input when it is missing or of another size than `blob` says.
    fn blob(&self, blob: &Descriptor) -> anyhow::Result<(PathBuf, u64)>;
    /// The artifacts about the manifest `subject` it holds (signatures, SBOMs), each parsed.
    fn referrers(&self, subject: &Digest) -> anyhow::Result<Vec<(Descriptor, ImageManifest)>>;
}

impl BlobSource for Layout {
    fn manifest(&self, descriptor: &Descriptor) -> anyhow::Result<Vec<u8>> {
        let path = self.blob_path(&descriptor.digest);
        let bytes = std::fs::read(&path)
            .map_err(|e| crate::bad_input!("cannot read the manifest {}: {e}", path.display()))?;
        if Digest::of(&bytes) != descriptor.digest {
            return Err(crate::bad_input!(
                "the manifest {} does not match its digest {}; the layout is corrupt: rebuild it with `spin-aks build`",
                path.display(),
                descriptor.digest
            ));
        }
        Ok(bytes)
    }

    fn blob(&self, blob: &Descriptor) -> anyhow::Result<(PathBuf, u64)> {
        let path = self.blob_path(&blob.digest);
        let size = std::fs::metadata(&path).map(|m| m.len()).map_err(|e| {
            crate::bad_input!(
                "the OCI layout {} lacks blob {} ({e}); rebuild it with `spin-aks build`",
                self.root().display(),
                blob.digest
            )
        })?;
        if size != blob.size {
            return Err(crate::bad_input!(
                "blob {} is {size} bytes but the manifest says {}; the layout is corrupt: rebuild it with `spin-aks build`",
                path.display(),
                blob.size
            ));
        }
        Ok((path, 0))
    }

    fn referrers(&self, subject: &Digest) -> anyhow::Result<Vec<(Descriptor, ImageManifest)>> {
        Layout::referrers(self, subject)
    }
}
