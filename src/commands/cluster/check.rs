//! `spin-aks cluster check`: can this cluster run this app? The Kubernetes checks of
//! `cluster::check`, plus ARM's view for an AKS cluster (`cluster::check_aks`).

use serde_json::json;

use crate::cli::{ClusterCheckArgs, GlobalArgs};
use crate::cluster::apply::ServedApis;
use crate::cluster::check::{self, Check, Needs};
use crate::cluster::check_aks;
use crate::context::target::Cluster;
use crate::output::Output;

pub async fn run(global: &GlobalArgs, args: &ClusterCheckArgs, out: &Output) -> anyhow::Result<()> {
    let ctx = global.app_context(out)?;
    let cluster = Cluster::connect(&ctx, &args.target.settings(), global.yes).await?;
    let conn = &cluster.conn;
    let resources = ServedApis::discover(conn).await?;
    let imports = check::host_imports(&ctx.app);
    let needs = Needs {
        namespace: &conn.namespace,
        imports: &imports,
    };
    let mut checks = check::all(conn, &resources, &needs).await?;
    if let Some(aks) = &cluster.aks {
        let managed = aks.managed().await?;
        let remembered = ctx.remembered();
        checks.extend(check_aks::checks(&aks.arm, &aks.cluster, managed, remembered).await?);
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    let lines: Vec<String> = checks.iter().map(line).collect();
    out.report(&json!({ "checks": checks }), lines.join("\n"))?;
    match failed {
        0 => Ok(()),
        n => Err(anyhow::anyhow!(
            "{n} check(s) failed on {}; each names its fix above",
            conn.context
        )),
    }
}

fn line(check: &Check) -> String {
    let mark = if check.ok { "ok  " } else { "FAIL" };
    match &check.fix {
        Some(fix) => format!("{mark} {}: {}\n     fix: {fix}", check.name, check.detail),
        None => format!("{mark} {}: {}", check.name, check.detail),
    }
}
