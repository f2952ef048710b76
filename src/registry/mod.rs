//! Talking to registries over the OCI distribution API: hosts, credentials (Docker config, helpers,
//! bearer tokens), retries, the incremental streaming push, and registries.conf mirrors to fetch from.

pub mod auth;
pub mod client;
pub mod credential;
pub mod docker_config;
pub mod host;
pub mod mirrors;
pub mod progress;
pub mod pull;
pub mod push;
pub mod push_tree;
pub mod source;

pub use client::{RegistryClient, TransportOptions};
pub use credential::{Credential, Secret, SourcedCredential};
pub use push::{push_layout, PushOptions, PushReport};
