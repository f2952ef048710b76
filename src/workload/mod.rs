//! The app's workload objects (a SpinApp, or a Deployment and Service, and what they reference),
//! built from the app model, and their renderers and file writers. Nothing here talks to a cluster.

pub mod key_vault;
pub mod objects;
pub mod render;
pub mod runtime_config;
pub mod spinapp;
pub mod validate;
