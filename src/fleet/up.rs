//! `up --fleet`: the image pushed and the deploy artifact published once, then every cluster
//! following its tags asked to fetch it now and waited on until converged, failed or `timeout`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::status::{self, ClusterStatus};
use crate::build::BuildReport;
use crate::context::AppContext;
use crate::deploy::artifact::{self, PublishSettings, Published};
use crate::oci::reference::ImageRef;
use crate::output::Output;
use crate::push::{self, PushSettings};
use crate::registry::PushReport;

/// What `up --fleet` reports.
#[derive(Debug, Serialize)]
pub struct Delivered {
    pub build: Option<BuildReport>,
    pub push: PushReport,
    pub published: Published,
    pub clusters: Vec<ClusterStatus>,
    /// From the start of `up` until every cluster converged.
    pub seconds: f64,
}

pub async fn deliver(
    ctx: &mut AppContext,
    push_settings: &PushSettings,
    publish: &PublishSettings,
    kubeconfig: Option<PathBuf>,
    timeout: Duration,
    yes: bool,
    out: &Output,
) -> anyhow::Result<Delivered> {
    let started = Instant::now();
    // The members' kubeconfig contexts are read before anything is pushed or published.
    let contexts: Vec<&str> = (ctx.remembered().fleet.iter())
        .filter(|m| m.aks.is_none())
        .map(|m| m.cluster.as_str())
        .collect();
    crate::cluster::connect::require_contexts(kubeconfig.clone(), &contexts)?;
    if let Some(dir) = &publish.objects.dir {
        artifact::check_dir(dir, true)?;
    }
    let app = Some(ctx.app.clone());
    let from = ctx.app.manifest_path.clone();
    let pushed = push::push_image(&mut ctx.store, app, &from, push_settings, yes, out).await?;
    out.info(format!("pushed {}", pushed.report.pinned));
    let image = ImageRef::from(pushed.report.pinned.clone());
    let published = artifact::publish(ctx, publish, Some(image), out).await?;
    let envs = published.tags.clone();
    let (app, name) = (ctx.remembered(), &ctx.name);
    if !app.fleet.iter().any(|m| envs.contains(&m.env)) {
        out.warn(format!(
            "no cluster follows {}: published only; add clusters with `spin-aks fleet add <context> --env <env>`",
            envs.join(", ")
        ));
    }
    let clusters = status::wait(app, name, kubeconfig, &envs, timeout, out).await;
    status::require_converged(&clusters, timeout)?;
    Ok(Delivered {
        build: pushed.build,
        push: pushed.report,
        published,
        clusters,
        seconds: started.elapsed().as_secs_f64(),
    })
}
