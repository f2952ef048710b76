//! OCI formats: digests, canonical JSON, image layouts and archives, and the two image shapes
//! (the Spin artifact and the plain wasi/wasm image) assembled from a resolved app.

pub mod archive;
pub mod assemble;
pub mod digest;
pub mod flux_artifact;
pub mod json;
pub mod layout;
mod locked_app;
pub mod media_types;
pub mod pgzip;
pub mod plain_image;
pub mod reference;
pub mod spin_artifact;

pub use digest::{Digest, HashingWriter};
pub use layout::{Descriptor, ImageManifest, Layout};

/// Which OCI shape to produce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// The Spin OCI artifact (`spin registry push` format): one layer per wasm and file
    #[default]
    Spin,
    /// A plain `wasi/wasm` image with /spin.toml, as a `FROM scratch` Dockerfile builds
    Image,
}
