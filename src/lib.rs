//! spin-aks: takes a Spin application to Azure Kubernetes Service without Docker, az or kubectl.
//! Commands are thin drivers over the pipeline: app → build → push → deploy, then the platform
//! (install, provision, fleet, bundle, dev); docs/architecture.md maps the folders.

pub mod app;
pub mod attest;
pub mod azure;
pub mod build;
pub mod bundle;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod context;
pub mod deploy;
pub mod dev;
pub mod error;
pub mod file_kind;
pub mod fleet;
pub mod git;
pub mod install;
pub mod interrupt;
pub mod manifests;
pub mod oci;
pub mod output;
pub mod prompt;
pub mod provision;
pub mod push;
pub mod redact;
pub mod registry;
pub mod retry;
pub mod secret;
pub mod secret_input;
pub mod state;
pub mod tls;
pub mod verify;
pub mod workload;
pub mod yaml;
