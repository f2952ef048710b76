//! `spin-aks cluster install` and `uninstall`: SpinKube made ready on (or removed from) the
//! targeted cluster (the steps are `crate::install`), one line per object and stage.

use crate::bad_input;
use crate::cli::{ClusterInstallArgs, ClusterUninstallArgs, GlobalArgs, TargetArgs};
use crate::cluster::apply::ObjectAction;
use crate::install;
use crate::output::Output;
use crate::target::{Cluster, Target};

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

pub async fn uninstall(
    global: &GlobalArgs,
    args: &ClusterUninstallArgs,
    out: &Output,
) -> anyhow::Result<()> {
    let cluster = connect(global, &args.target, out).await?;
    let report =
        install::uninstall::uninstall(&cluster.conn, args.force, args.timeout, out).await?;
    let mut lines: Vec<String> = report
        .deleted
        .iter()
        .map(|d| format!("{d} deleted"))
        .collect();
    lines.extend((report.unlabelled_nodes.iter()).map(|n| format!("node/{n}: label spin removed")));
    lines.push(match report.deleted.is_empty() {
        true => format!("nothing of a spin-aks install was on {}", report.cluster),
        false => format!("SpinKube is uninstalled from {}", report.cluster),
    });
    out.report(&report, lines.join("\n"))
}

/// The targeted cluster's API server; an AKS cluster reached through ARM is refused for now.
async fn connect(
    global: &GlobalArgs,
    target: &TargetArgs,
    out: &Output,
) -> anyhow::Result<Cluster> {
    let store = global.store(out)?;
    let target = Target::resolve(&target.settings(), store.state(), global.yes).await?;
    if let Some(aks) = target.aks() {
        return Err(bad_input!(
            "spin-aks reaches {} through ARM, and this release labels the shim's nodes only through the API, which AKS loses when it replaces nodes (the durable way, the agent pool's nodeLabels, is not done yet); use a kubeconfig context (`spin-aks cluster get-credentials`, then --context)",
            aks.cluster.name
        ));
    }
    target.connect(&Default::default()).await
}
