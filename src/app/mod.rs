//! spin.toml → the typed [`App`] model: parsing (v2, and v1 converted), validation, and resolving
//! sources and file mounts on disk.

mod capabilities;
pub mod chaining;
pub mod compat;
mod componentize;
pub mod compose;
pub mod dependencies;
mod ids;
mod manifest;
pub mod model;
mod mounts;
mod outbound_hosts;
mod resolve;
pub mod spin_build;
mod spin_rules;
pub mod toml_util;
mod v1;

pub use manifest::load;
pub use model::*;
pub use mounts::slash_path;
pub use resolve::resolve;
