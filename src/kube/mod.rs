//! Kubernetes side of spin-aks: typed workload objects built from the app model and their renderers.
//! Pure functions of the model plus options; nothing here talks to a cluster.

pub mod files;
pub mod key_vault;
pub mod merge;
pub mod objects;
pub mod render;
pub mod runtime_config;
pub mod spinapp;
pub mod validate;
