//! `spin-aks identity setup`: the app's workload identity on the chosen AKS cluster (the step is
//! `provision::identity`), remembered so scaffold, apply and up give it to the app.

use crate::azure::arm::Arm;
use crate::bad_input;
use crate::cli::{GlobalArgs, IdentityArgs, IdentityCommand, IdentitySetupArgs};
use crate::context::choose::{self, Mode};
use crate::output::Output;
use crate::provision::identity::{self, IdentityPlan};

pub async fn run(global: &GlobalArgs, args: &IdentityArgs, out: &Output) -> anyhow::Result<()> {
    match &args.command {
        IdentityCommand::Setup(args) => setup(global, args, out).await,
    }
}

async fn setup(global: &GlobalArgs, args: &IdentitySetupArgs, out: &Output) -> anyhow::Result<()> {
    let mut ctx = global.app_context(out)?;
    let selector = args.target.selector();
    if selector.cluster.is_none() && ctx.store.state().last_cluster.is_none() {
        return Err(bad_input!(
            "no AKS cluster chosen: run `spin-aks cluster use`, or pass --cluster <NAME> \
             [--resource-group <GROUP>]"
        ));
    }
    let key_vault = ctx.vault_or(args.key_vault.as_ref());
    let arm = Arm::from_env()?;
    let mode = Mode::detect(global.yes);
    let cluster = choose::resolve_cluster(&arm, &selector, ctx.store.state(), mode).await?;
    let last_namespace = ctx.remembered().last_deploy.as_ref();
    let plan = IdentityPlan {
        cluster,
        identity: (args.name.clone()).unwrap_or_else(|| identity::default_name(&ctx.name)),
        namespace: (args.namespace.clone())
            .or_else(|| last_namespace.map(|d| d.namespace.clone()))
            .unwrap_or_else(|| "default".into()),
        service_account: (args.service_account.clone()).unwrap_or_else(|| ctx.name.clone()),
        key_vault,
        cosmos: args.cosmos.clone(),
    };
    let report = identity::setup(&arm, &plan, &|line| out.info(line)).await?;
    ctx.remember_identity(report.workload_identity(), plan.key_vault.as_ref(), out)?;
    let summary = format!(
        "identity {} (client id {}) trusts {} on {}: scaffold, apply and up now give the app that ServiceAccount, annotated with the client id, and label its pods azure.workload.identity/use",
        report.identity.name,
        report.identity.client_id,
        report.federated_credential.subject,
        plan.cluster.name,
    );
    out.report(&report, summary)
}
