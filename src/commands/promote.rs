//! `spin-aks promote FROM_ENV --to ENV`: retags the deploy artifact by digest once every cluster
//! following `FROM_ENV` converged on it (the step is `crate::fleet::promote`).

use crate::cli::{GlobalArgs, PromoteArgs};
use crate::fleet::{promote, status};
use crate::output::Output;

pub async fn run(global: &GlobalArgs, args: &PromoteArgs, out: &Output) -> anyhow::Result<()> {
    let settings = args.settings(&global.from)?;
    let mut ctx = global.app_context(out)?;
    let promoted = promote::promote(&mut ctx, &settings, out).await?;
    let mut summary = format!(
        "promoted {}:{} → {}:{} ({}), verified on {} cluster(s)",
        promoted.repository,
        promoted.from,
        promoted.repository,
        promoted.to,
        promoted.digest,
        promoted.verified.len()
    );
    if let Some(timeout) = args.wait {
        let envs = [promoted.to.clone()];
        let (app, name) = (ctx.remembered(), &ctx.name);
        let all = status::wait(app, name, settings.kubeconfig.clone(), &envs, timeout, out).await;
        status::require_converged(&all, timeout)?;
        summary.push('\n');
        summary.push_str(&super::fleet::table(&all));
    }
    out.report(&promoted, summary)
}
