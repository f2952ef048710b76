//! `spin-aks delete`: deletes the members of this app's ApplySet and its parent, nothing else.

use crate::cli::{DeleteArgs, DryRun, GlobalArgs};
use crate::context::target::Target;
use crate::deploy;
use crate::output::Output;

pub async fn run(global: &GlobalArgs, args: &DeleteArgs, out: &Output) -> anyhow::Result<()> {
    let settings = args.target.settings_via(args.via);
    let ctx = global.app_context(out)?;
    let target = Target::resolve(&settings, ctx.store.state(), global.yes).await?;
    let dry_run = args.dry_run == DryRun::Server;
    let report = deploy::delete(&ctx, target, dry_run, out).await?;
    out.report(&report, report.summary(&ctx.name))
}
