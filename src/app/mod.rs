//! spin.toml → the typed [`App`] model: parsing (v2, and v1 converted), validation, and resolving
//! sources and file mounts on disk.

pub mod model;

pub use model::*;
