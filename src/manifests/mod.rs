//! What the user gives a deploy besides the app: object files (YAML, a Kustomize directory built
//! natively, a Helm chart), the patches a kustomization carries, and secret values.

pub mod documents;
pub mod helm;
pub mod kustomize;
pub mod patch;
pub mod secrets;
pub mod source;
