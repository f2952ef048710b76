//! `spin-aks up`: build → push → apply → wait → endpoint through the same steps as the single
//! commands; an unchanged app uploads nothing and rolls nothing out.

use serde::Serialize;

use super::apply::{print_diff, summary};
use super::build::BuildReport;
use super::deploy::{self, DeployReport};
use super::identity;
use super::push;
use super::workload;
use crate::cli::{DeployArgs, GlobalArgs, UpArgs};
use crate::oci::reference::ImageRef;
use crate::output::Output;
use crate::prompt;
use crate::registry::PushReport;

#[derive(Serialize)]
struct UpReport<'a> {
    build: Option<&'a BuildReport>,
    push: &'a PushReport,
    apply: &'a DeployReport,
    endpoint: Option<&'a str>,
}

pub async fn run(global: &GlobalArgs, args: &UpArgs, out: &Output) -> anyhow::Result<()> {
    let pushed = push::push(global, &args.push, out).await?;
    out.info(format!("pushed {}", pushed.report.pinned));
    let image = ImageRef::from(pushed.report.pinned.clone());
    offer_identity(global, &args.deploy, out).await?;
    let applied = deploy::deploy(global, &args.deploy, Some(image), out).await?;
    print_diff(&applied, out);
    let report = UpReport {
        build: pushed.build.as_ref(),
        push: &pushed.report,
        apply: &applied,
        endpoint: applied.endpoint.as_deref(),
    };
    out.report(
        &report,
        summary(&applied, &global.from.display().to_string()),
    )
}

/// When the app reads Key Vault or a Cosmos DB store and has no workload identity yet, offers
/// `identity setup` on the chosen AKS cluster (asked on a terminal, done with `-y`).
async fn offer_identity(
    global: &GlobalArgs,
    args: &DeployArgs,
    out: &Output,
) -> anyhow::Result<()> {
    let record = deploy::app_record(global, out)?;
    let has_identity =
        record.state.identity.is_some() || args.workload.identity_client_id.is_some();
    let Some((key_vault, cosmos)) = workload::identity_needs(&args.workload, &record.state)? else {
        return Ok(());
    };
    if has_identity {
        return Ok(());
    }
    let Some(aks) = deploy::aks_cluster(global, &args.target, &record.all).await? else {
        return Ok(());
    };
    let question = format!(
        "The app reads {} with a workload identity and has none: set one up on {} now?",
        key_vault
            .as_ref()
            .map(|v| format!("Key Vault {}", v.name))
            .unwrap_or_else(|| format!("Cosmos DB account {}", cosmos.join(", "))),
        aks.cluster.name
    );
    let agreed = global.yes || (prompt::on_terminal() && prompt::confirm(&question)?);
    if !agreed {
        return Ok(());
    }
    let plan = identity::Plan {
        cluster: aks.cluster.clone(),
        identity: identity::default_name(&record.name),
        namespace: deploy::planned_namespace(&record.app, &record.state, args, &aks.cluster.name)?,
        service_account: args
            .workload
            .service_account
            .clone()
            .unwrap_or_else(|| record.name.clone()),
        key_vault,
        cosmos,
    };
    let report = identity::setup(&aks.arm, &plan, out).await?;
    identity::remember(&record.state_file, &record.key, &plan, &report, out)
}
