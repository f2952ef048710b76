//! `spin-aks cluster install` and `uninstall`: SpinKube made ready on (or removed from) the
//! targeted cluster (the steps are `crate::install`), one line per object and stage.

use crate::cli::{ClusterInstallArgs, ClusterUninstallArgs, GlobalArgs};
use crate::cluster::apply::ObjectAction;
use crate::context::target::Target;
use crate::install::{self, InstallReport, InstallSettings};
use crate::output::Output;

pub async fn run(
    global: &GlobalArgs,
    args: &ClusterInstallArgs,
    out: &Output,
) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let store = global.store(out)?;
    let target = Target::resolve(&args.target.settings(), store.state(), global.yes).await?;
    let report = install_on(target, &settings, out).await?;
    out.report(&report, lines(&report).join("\n"))
}

/// The install on a resolved target. On AKS: refused on Automatic before anything is written,
/// Flux and the labels through ARM.
pub(super) async fn install_on(
    target: Target,
    settings: &InstallSettings,
    out: &Output,
) -> anyhow::Result<InstallReport> {
    let aks = match target.aks() {
        Some(aks) => Some(install::aks::prepare(aks, settings.dry_run, out).await?),
        None => None,
    };
    let cluster = target.connect(&Default::default()).await?;
    let mut report = install::install(&cluster.conn, settings, aks.is_some(), out).await?;
    report.aks = aks;
    Ok(report)
}

/// One line per object, label and stage, then the outcome.
pub(super) fn lines(report: &InstallReport) -> Vec<String> {
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
    lines.extend((report.labelled_nodes.iter()).map(|n| format!("node/{n} labelled spin=true")));
    if let Some(aks) = &report.aks {
        if aks.flux_extension_installed {
            lines.push("the Flux cluster extension enabled".to_string());
        }
        let pools = aks.labelled_pools.iter();
        lines.extend(pools.map(|p| format!("agent pool {p} labelled spin=true")));
    }
    lines.extend((report.stages.iter()).map(|s| {
        let name = match s.name.as_str() {
            "flux" => "Flux's source- and helm-controller",
            name => name,
        };
        format!("{name} ready after {:.1}s", s.seconds)
    }));
    lines.push(match (report.dry_run, report.changed()) {
        (true, _) => format!("dry run: nothing written to {}", report.cluster),
        (false, true) => format!("SpinKube is installed on {}", report.cluster),
        (false, false) => format!(
            "SpinKube was already installed on {}: nothing changed",
            report.cluster
        ),
    });
    lines
}

pub async fn uninstall(
    global: &GlobalArgs,
    args: &ClusterUninstallArgs,
    out: &Output,
) -> anyhow::Result<()> {
    let store = global.store(out)?;
    let target = Target::resolve(&args.target.settings(), store.state(), global.yes).await?;
    let cluster = target.connect(&Default::default()).await?;
    let report =
        install::uninstall::uninstall(&cluster.conn, args.force, args.timeout, out).await?;
    let mut lines: Vec<String> = report
        .deleted
        .iter()
        .map(|d| format!("{d} deleted"))
        .collect();
    let nodes = report.unlabelled_nodes.iter();
    lines.extend(nodes.map(|n| format!("node/{n}: label spin removed")));
    lines.push(match report.deleted.is_empty() {
        true => format!("nothing of a spin-aks install was on {}", report.cluster),
        false => format!("SpinKube is uninstalled from {}", report.cluster),
    });
    out.report(&report, lines.join("\n"))
}
