//! `spin-aks apply`: the app's objects server-side applied to the cluster, the rollout of exactly
//! the pinned image waited for, and where the app answers.

use crate::cli::{ApplyArgs, GlobalArgs};
use crate::deploy;
use crate::output::Output;
use crate::target::Target;

pub async fn run(global: &GlobalArgs, args: &ApplyArgs, out: &Output) -> anyhow::Result<()> {
    let settings = args.deploy.settings()?;
    let mut ctx = global.app_context(out)?;
    let target = Target::resolve(&settings.target, ctx.store.state(), global.yes).await?;
    let report = deploy::deploy(&mut ctx, target, &settings, args.image.clone(), out).await?;
    if let Some(diff) = &report.diff {
        out.text_result(diff)?;
    }
    out.report(&report, report.summary(&global.from.display().to_string()))
}
