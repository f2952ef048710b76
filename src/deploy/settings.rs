//! The deploy flags as the pipeline takes them: each validated, made only by `cli`
//! (`DeployArgs::settings`), so no command can skip a check.

use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::expose::Exposure;
use crate::context::target::TargetSettings;
use crate::manifests::secrets::SecretArg;
use crate::workload::objects::WorkloadSettings;

/// The deploy flags, validated (made by `cli`: `DeployArgs::settings`).
#[derive(Debug)]
pub struct Settings {
    pub target: TargetSettings,
    /// The objects' directory instead of `<app dir>/deploy` or the generated ones.
    pub dir: Option<PathBuf>,
    /// `--dry-run server`: validated and admitted by the server, nothing persisted.
    pub dry_run: bool,
    pub diff: bool,
    pub force_conflicts: bool,
    pub prune: bool,
    /// Whether to wait for the rollout (and the endpoint), for at most `timeout`.
    pub wait: bool,
    pub timeout: Duration,
    pub exposure: Exposure,
    pub secrets: Vec<SecretArg>,
    /// With the libsql tokens a runtime config needs.
    pub workload: WorkloadSettings,
}
