//! Packs an app and the platform it runs on (SpinKube's charts and images, Flux, the CRDs, the
//! shim) into one oci-archive for a closed network, and loads it into that network's registry.

pub mod app;
pub mod archive;
pub mod contents;
pub mod copy;
pub mod create;
pub mod fetch;
pub mod push;

pub use contents::{Contents, Item, Kind};

/// What the bundle `file` carries, and its manifest's digest (read in place, nothing unpacked).
pub fn inspect(file: &std::path::Path) -> anyhow::Result<(crate::oci::Digest, Contents)> {
    let archive = archive::Archive::open(file)?;
    let (own, contents) = Contents::read_from(archive.index(), &|d| archive.read_blob(d), file)?;
    Ok((own.digest, contents))
}
