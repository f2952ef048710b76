//! `spin-aks cluster install`: SpinKube made ready on the targeted cluster (the step is
//! `crate::install`), one line per object and stage, and whether anything changed.

use crate::bad_input;
use crate::cli::{ClusterInstallArgs, GlobalArgs};
use crate::cluster::apply::ObjectAction;
use crate::install;
use crate::output::Output;
use crate::target::Cluster;

pub async fn run(
    global: &GlobalArgs,
    args: &ClusterInstallArgs,
    out: &Output,
) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let store = global.store(out)?;
    let target =
        crate::target::Target::resolve(&args.target.settings(), store.state(), global.yes).await?;
    if let Some(aks) = target.aks() {
        return Err(bad_input!(
            "cluster install reaches {} through ARM, and this spin-aks labels the shim's nodes only through the API: that is lost when AKS replaces nodes (the durable way, the agent pool's nodeLabels, comes next); use a kubeconfig context (`spin-aks cluster get-credentials`, then --context)",
            aks.cluster.name
        ));
    }
    let cluster: Cluster = target.connect(&Default::default()).await?;
    let report = install::install(&cluster.conn, &settings, out).await?;
    let verb = |action: ObjectAction| match (report.dry_run, action) {
        (true, _) => "would be applied",
        (_, ObjectAction::Created) => "created",
        (_, ObjectAction::Configured) => "configured",
        (_, ObjectAction::Unchanged) => "unchanged",
        (_, ObjectAction::Pruned) => "pruned",
    };
    let mut lines: Vec<String> = (report.objects.iter())
        .map(|o| {
            format!(
                "{}/{} {}",
                o.kind.to_ascii_lowercase(),
                o.name,
                verb(o.action)
            )
        })
        .collect();
    lines.extend(
        report
            .labelled_nodes
            .iter()
            .map(|n| format!("node/{n} labelled spin=true")),
    );
    lines.extend(
        (report.stages.iter()).map(|s| format!("{} ready after {:.1}s", s.name, s.seconds)),
    );
    lines.push(match (report.dry_run, report.changed()) {
        (true, _) => format!("dry run: nothing written to {}", report.cluster),
        (false, true) => format!("SpinKube is installed on {}", report.cluster),
        (false, false) => format!(
            "SpinKube was already installed on {}: nothing changed",
            report.cluster
        ),
    });
    out.report(&report, lines.join("\n"))
}
