//! `spin-aks fleet add|remove|status`: clusters following the app's deploy artifact through their
//! own Flux, and where each stands (the pipeline is `crate::fleet`).

use serde::Serialize;

use crate::cli::{FleetArgs, FleetCommand, GlobalArgs};
use crate::fleet::status::{ClusterStatus, MemberState};
use crate::fleet::{self, Changed};
use crate::output::Output;

#[derive(Serialize)]
struct ChangedReport<'a> {
    clusters: &'a [Changed],
}

#[derive(Serialize)]
pub struct StatusReport<'a> {
    pub clusters: &'a [ClusterStatus],
}

pub async fn run(global: &GlobalArgs, args: &FleetArgs, out: &Output) -> anyhow::Result<()> {
    let mut ctx = global.app_context(out)?;
    match &args.command {
        FleetCommand::Add(add) => {
            let settings = add.settings()?;
            let changed = fleet::add(&mut ctx, &settings, out).await?;
            out.report(&ChangedReport { clusters: &changed }, lines(&changed))
        }
        FleetCommand::Remove(remove) => {
            let changed = fleet::remove(&mut ctx, &remove.settings(), out).await?;
            out.report(&ChangedReport { clusters: &changed }, lines(&changed))
        }
        FleetCommand::Status(status) => {
            let all = fleet::status::status(
                ctx.remembered(),
                &ctx.name,
                status.kubeconfig.clone(),
                status.env.as_deref(),
            )
            .await;
            if all.is_empty() {
                out.warn("no cluster follows this app yet: `spin-aks fleet add <context>`");
            }
            out.report(&StatusReport { clusters: &all }, table(&all))
        }
    }
}

fn lines(changed: &[Changed]) -> String {
    (changed.iter())
        .map(|c| {
            let verify = match &c.verify {
                Some(secret) => {
                    format!("; Flux verifies the artifact's signature (trust: secret/{secret})")
                }
                None => String::new(),
            };
            format!(
                "{} ({}, {}): {}{verify}",
                c.cluster,
                c.namespace,
                c.env,
                c.objects.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One line per cluster: state, what runs, and the reason when it is not converged.
pub fn table(all: &[ClusterStatus]) -> String {
    (all.iter())
        .map(|s| {
            let state = match s.state {
                MemberState::Converged => "converged",
                MemberState::Progressing => "progressing",
                MemberState::Failed => "failed",
                MemberState::Unreachable => "unreachable",
                MemberState::NotFollowing => "not following",
            };
            let applied = s.applied.as_deref().unwrap_or("nothing applied");
            let ready = s
                .ready
                .as_deref()
                .map(|r| format!(", {r} ready"))
                .unwrap_or_default();
            let signature = match s.verified {
                Some(true) => ", signature verified",
                Some(false) => ", signature refused",
                None => "",
            };
            let reason = s
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            format!(
                "{} [{}/{}] {state}, {applied}{ready}{signature}{reason}",
                s.cluster, s.env, s.namespace
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
