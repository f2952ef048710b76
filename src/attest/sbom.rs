//! The image's SBOM as CycloneDX 1.6 JSON (docs/formats.md, "SBOM"): the app, one component per
//! Spin component with its wasm digest, source, composed dependencies, files and Rust crates.

mod collect;
mod cyclonedx;
mod model;

pub use self::cyclonedx::cyclonedx;
pub use self::model::{
    AppFacts, ComponentFacts, DependencyFacts, FileFacts, Origin, SbomInput, WasmSource,
};

#[cfg(test)]
pub(crate) mod tests;
