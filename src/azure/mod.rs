//! Azure sign-in for spin-aks: an Entra credential chain and the ACR token exchange.
//! Everything here speaks the real Azure HTTP shapes; nothing shells out except the `az`/`azd` credentials.

pub mod acr;
pub mod credential;
pub mod imds;
pub mod jwt;
pub mod secret;

pub use secret::Secret;
