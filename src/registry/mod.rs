//! Pushing images over the OCI distribution API: references, credentials (Docker config,
//! helpers, bearer tokens), retries, and the incremental streaming push itself.

pub mod auth;
pub mod client;
pub mod credential;
pub mod docker_config;
pub mod progress;
pub mod push;
pub mod reference;
pub mod retry;

pub use client::{RegistryClient, TransportOptions};
pub use credential::{Credential, Secret, SourcedCredential};
pub use push::{push_layout, PushOptions, PushReport};
pub use reference::Reference;
