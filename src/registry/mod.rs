//! Pushing images over the OCI distribution API: registry hosts, credentials (Docker config,
//! helpers, bearer tokens), retries, and the incremental streaming push itself.

pub mod auth;
pub mod client;
pub mod credential;
pub mod docker_config;
pub mod host;
pub mod progress;
pub mod push;
pub mod retry;

pub use client::{RegistryClient, TransportOptions};
pub use credential::{Credential, Secret, SourcedCredential};
pub use push::{push_layout, PushOptions, PushReport};
