//! Azure for spin-aks: the Entra credential chain, the ACR token exchange, ARM (clusters,
//! registries, roles, run command, workload identity), Key Vault secrets and Key Vault signing keys. Real Azure HTTP shapes; nothing shells out but `az`/`azd` sign-in.

pub mod acr;
pub mod aks;
pub mod arm;
pub mod credential;
pub mod federated;
pub mod identity;
pub mod imds;
pub mod jwt;
pub mod keyvault;
pub mod kubeconfig_file;
pub mod names;
pub mod rest;
pub mod roles;
pub mod run_command;
pub mod vault;

pub use names::ClusterRef;
