//! `spin-aks status`: what runs for this app in the cluster (image digest, replicas, endpoint, conditions).

use crate::cli::{GlobalArgs, StatusArgs};
use crate::context::target::Target;
use crate::deploy;
use crate::output::Output;

pub async fn run(global: &GlobalArgs, args: &StatusArgs, out: &Output) -> anyhow::Result<()> {
    let settings = args.target.settings_via(args.via);
    let ctx = global.app_context(out)?;
    let target = Target::resolve(&settings, ctx.store.state(), global.yes).await?;
    let status = deploy::status(&ctx, target, out).await?;
    let mut lines = vec![
        format!(
            "{} {} in namespace {} of {}",
            status.kind, status.name, status.namespace, status.cluster
        ),
        format!(
            "image: {}",
            status.image.as_deref().unwrap_or("(no Deployment yet)")
        ),
        format!("ready: {}/{}", status.ready, status.desired),
        format!(
            "endpoint: {}",
            status
                .endpoint
                .as_deref()
                .unwrap_or("none (spin-aks port-forward)")
        ),
    ];
    for c in &status.conditions {
        lines.push(format!(
            "{}: {}{}",
            c.type_,
            c.status,
            c.message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        ));
    }
    out.report(&status, lines.join("\n"))
}
