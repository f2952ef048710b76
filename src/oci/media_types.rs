//! The media type strings we write and read (docs/formats.md), in one place.

pub const IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const IMAGE_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const WASM_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";
pub const DATA_LAYER: &str = "application/vnd.wasm.content.layer.v1+data";
pub const ARCHIVE_LAYER: &str = "application/vnd.wasm.content.bundle.v1.tar+gzip";
pub const LOCKED_APP_LAYER: &str = "application/vnd.fermyon.spin.application.v1+config";

/// The empty JSON blob `{}` an artifact manifest names as its config (image-spec v1.1
/// manifest.md, "Guidance for an Empty Descriptor").
pub const EMPTY_JSON: &str = "application/vnd.oci.empty.v1+json";

/// The annotation that names an image inside an OCI layout's index.json.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
