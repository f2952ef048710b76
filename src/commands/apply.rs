//! `spin-aks apply`: the app's objects server-side applied to the cluster, the rollout of exactly
//! the pinned image waited for, and where the app answers.

use super::deploy::{self, DeployReport};
use crate::cli::{ApplyArgs, GlobalArgs};
use crate::output::{Output, OutputMode};

pub async fn run(global: &GlobalArgs, args: &ApplyArgs, out: &Output) -> anyhow::Result<()> {
    let report = deploy::deploy(global, &args.deploy, args.image.clone(), out).await?;
    print_diff(&report, out);
    out.report(
        &report,
        summary(&report, &global.from.display().to_string()),
    )
}

/// The diff goes to stdout in text mode (it is the output asked for); JSON carries it in `diff`.
pub fn print_diff(report: &DeployReport, out: &Output) {
    if let (Some(diff), OutputMode::Text) = (&report.diff, out.mode) {
        print!("{diff}");
    }
}

/// The human summary: one line per object, the rollout, the endpoint or how to reach the app.
pub fn summary(report: &DeployReport, from: &str) -> String {
    let dry = if report.dry_run {
        " (server dry run)"
    } else {
        ""
    };
    let mut lines: Vec<String> = report
        .objects
        .iter()
        .map(|o| {
            format!(
                "{}/{} {}{dry}",
                o.kind.to_ascii_lowercase(),
                o.name,
                action_word(o.action)
            )
        })
        .collect();
    if let Some(rollout) = &report.rollout {
        lines.push(format!(
            "rolled out {} in namespace {} of {}: {}/{} ready after {:.1}s",
            report.image,
            report.namespace,
            report.cluster,
            rollout.ready,
            rollout.desired,
            rollout.seconds
        ));
    }
    match &report.endpoint {
        Some(endpoint) => lines.push(format!("the app answers on {endpoint}")),
        None if !report.dry_run => lines.push(format!(
            "reach the app with: spin-aks port-forward -f {from} -n {}",
            report.namespace
        )),
        None => {}
    }
    lines.join("\n")
}

fn action_word(action: crate::cluster::apply::ObjectAction) -> &'static str {
    use crate::cluster::apply::ObjectAction::*;
    match action {
        Created => "created",
        Configured => "configured",
        Unchanged => "unchanged",
        Pruned => "pruned",
    }
}
