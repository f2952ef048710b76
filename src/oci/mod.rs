//! OCI formats: digests, canonical JSON, image layouts and archives, references and media types.
//! Nothing here knows a Spin app; the build step (`build`) assembles images from these parts.

pub mod archive;
pub mod digest;
pub mod flux_artifact;
pub mod json;
pub mod layout;
pub mod media_types;
pub mod pgzip;
pub mod reference;

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
