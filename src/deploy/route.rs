//! The two routes to a cluster behind one trait: its API server (kube-rs), or AKS run command
//! (kubectl in the cluster, for a private API server).

use async_trait::async_trait;
use serde::Serialize;

use super::plan::DeployPlan;
use crate::cluster::apply::AppliedObject;
use crate::cluster::rollout::Rollout;
use crate::cluster::status::AppStatus;
use crate::output::Output;

/// What one route does for the deploy pipeline.
#[async_trait(?Send)]
pub trait Route {
    /// The cluster's name in reports: the kubeconfig context, or the AKS cluster.
    fn cluster(&self) -> &str;
    /// The namespace when neither `-n` nor the objects name one.
    fn default_namespace(&self) -> &str;
    /// Refuses, naming the flag, what this route cannot do.
    fn supports(&self, feature: RouteFeature) -> anyhow::Result<()>;
    /// Sends the plan's objects (and the Secrets its variables need).
    async fn apply(&self, plan: &DeployPlan<'_>, out: &Output) -> anyhow::Result<RouteApplied>;
    /// Waits for the rollout of exactly the plan's image, and for the endpoint.
    async fn wait(
        &self,
        plan: &DeployPlan<'_>,
        applied: &RouteApplied,
        out: &Output,
    ) -> anyhow::Result<Waited>;
    /// What runs for app `name` in `namespace`.
    async fn status(&self, namespace: &str, name: &str, out: &Output) -> anyhow::Result<AppStatus>;
    /// Deletes the members of app `name`'s ApplySet and its parent; what was deleted.
    async fn delete(
        &self,
        namespace: &str,
        name: &str,
        dry_run: bool,
        out: &Output,
    ) -> anyhow::Result<Vec<Deleted>>;
}

/// What a route may be unable to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteFeature {
    ServerDryRun,
    Diff,
    Expose,
    HelmChart,
}

/// The objects applied, and what the route learned on the way.
#[derive(Debug, Default)]
pub struct RouteApplied {
    pub objects: Vec<AppliedObject>,
    /// `--diff`: the live objects against the result.
    pub diff: Option<String>,
    /// The rollout, when the route waited while applying (run command).
    pub rollout: Option<Rollout>,
}

/// What waiting found.
#[derive(Debug, Default)]
pub struct Waited {
    pub rollout: Option<Rollout>,
    pub endpoint: Option<String>,
}

/// One deleted object.
#[derive(Debug, Serialize)]
pub struct Deleted {
    pub kind: String,
    pub name: String,
}
