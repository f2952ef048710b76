//! Holds what the SBOM says as plain data: the app, its Spin components, their dependencies, files
//! and crates, and where each wasm came from. `collect` gathers it; `cyclonedx` writes it.

use crate::app::compat::ShimRelease;
use crate::attest::auditable::Crates;
use crate::git::Checkout;
use crate::oci::Digest;

/// Everything the SBOM says, gathered from one build ([`SbomInput::from_build`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SbomInput {
    /// The image manifest's digest; the BOM's serial number is derived from it.
    pub image: Digest,
    pub app: AppFacts,
    /// The git checkout the app lies in, when it does (its remote becomes the app's `vcs` link).
    pub checkout: Option<Checkout>,
    /// `SOURCE_DATE_EPOCH`, else the commit time: the BOM's timestamp; none without either.
    pub timestamp: Option<u64>,
    /// The containerd-shim-spin release the image targets.
    pub target: &'static ShimRelease,
    /// In the app's order.
    pub components: Vec<ComponentFacts>,
}

/// The application as its manifest names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppFacts {
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
}

/// One Spin component.
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentFacts {
    pub id: String,
    pub description: Option<String>,
    /// The wasm the image holds for it: its source composed with its dependencies when it has
    /// any (as the Spin artifact ships it), else the source itself.
    pub wasm: Digest,
    /// Where its own wasm came from, before composition.
    pub source: WasmSource,
    pub dependencies: Vec<DependencyFacts>,
    /// Sorted by guest path.
    pub files: Vec<FileFacts>,
    /// The Rust crates its own wasm records (cargo-auditable), if it does.
    pub crates: Option<Crates>,
}

/// A component dependency (composed in, or carried beside the component in a plain image).
#[derive(Clone, Debug, PartialEq)]
pub struct DependencyFacts {
    /// As spin.toml names it: `ns:pkg/iface@1.0.0`, or a plain name.
    pub name: String,
    pub source: WasmSource,
    pub crates: Option<Crates>,
}

/// A wasm input: where it came from and the digest of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WasmSource {
    pub origin: Origin,
    pub digest: Digest,
}

/// Where a wasm came from, as spin.toml gives it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// A file, its path relative to the manifest's directory with `/` separators.
    File(String),
    /// A download pinned by the digest.
    Url(String),
    /// Another component of the app, whose source it is.
    Component(String),
}

/// A file a component mounts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileFacts {
    /// Where the component sees it, e.g. `/static/index.html`.
    pub guest_path: String,
    pub digest: Digest,
}
