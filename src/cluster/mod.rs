//! Talking to a cluster: kubeconfig access, server-side apply with ApplySet pruning, rollout waits,
//! endpoints, status, logs and port-forward. What it sends is built in `workload` and `manifests`.

pub mod apply;
pub mod applyset;
pub mod check;
pub mod check_aks;
pub mod connect;
pub mod diff;
pub mod discovery;
pub mod errors;
pub mod executor;
pub mod expose;
pub mod logs;
pub mod no_proxy;
pub mod portforward;
pub mod rollout;
pub mod status;
