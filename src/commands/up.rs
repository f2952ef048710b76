//! `spin-aks up`: build → push → apply → wait → endpoint through the same steps as the single
//! commands; an unchanged app uploads nothing and rolls nothing out.

use serde::Serialize;

use crate::build::BuildReport;
use crate::cli::{GlobalArgs, UpArgs};
use crate::cluster::check::NotReady;
use crate::context::target::Target;
use crate::context::AppContext;
use crate::deploy::artifact;
use crate::deploy::{self, plan, workload, DeployReport, Settings};
use crate::fleet;
use crate::install;
use crate::oci::reference::ImageRef;
use crate::output::Output;
use crate::prompt;
use crate::provision::identity::{self, IdentityPlan};
use crate::push;
use crate::registry::PushReport;
use crate::verify;

#[derive(Serialize)]
struct UpReport<'a> {
    build: Option<&'a BuildReport>,
    push: &'a PushReport,
    apply: &'a DeployReport,
    endpoint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<&'a verify::VerifiedImage>,
}

pub async fn run(global: &GlobalArgs, args: &UpArgs, out: &Output) -> anyhow::Result<()> {
    let push = args.push.settings()?;
    let settings = args.deploy.settings()?;
    let spinkube = args.install_settings()?;
    let asked = args.deploy.verify.settings()?;
    if !args.fleet && !args.push.publish && !args.push.envs.is_empty() {
        return Err(crate::bad_input!(
            "--env names a deploy artifact tag: add --fleet (or --publish)"
        ));
    }
    let mut ctx = global.app_context(out)?;
    if args.fleet {
        let kubeconfig = settings.target.kubeconfig.clone();
        let (timeout, publish) = (settings.timeout, args.push.publish_settings(settings)?);
        let up = fleet::up::deliver(
            &mut ctx, &push, &publish, kubeconfig, timeout, global.yes, out,
        );
        let delivered = up.await?;
        let summary = super::fleet::table(&delivered.clusters);
        return out.report(
            &delivered,
            format!("{}\n{summary}", delivered.published.pinned),
        );
    }
    let policy = verify::deploy_policy(&mut ctx, &asked, out)?;
    let objects = args.push.publish.then(|| args.deploy.settings());
    let publish = objects
        .transpose()?
        .map(|s| args.push.publish_settings(s))
        .transpose()?;
    // The cluster is chosen and its kubeconfig read before anything is pushed or published.
    let target = Target::resolve(&settings.target, ctx.store.state(), global.yes).await?;
    target.check(ctx.remembered()).await?;
    if let Some(dir) = &settings.dir {
        artifact::check_dir(dir, publish.is_some())?;
    }
    let app = Some(ctx.app.clone());
    let pushed =
        push::push_image(&mut ctx.store, app, &global.from, &push, global.yes, out).await?;
    out.info(format!("pushed {}", pushed.report.pinned));
    let image = ImageRef::from(pushed.report.pinned.clone());
    let (image, verified) = verify::require_if(policy.as_ref(), image, &push.registry, out).await?;
    if let Some(publish) = publish {
        let published = artifact::publish(&mut ctx, &publish, Some(image.clone()), out);
        out.info(super::publish::summary(&published.await?));
    }
    offer_identity(global, &mut ctx, &target, &settings, out).await?;
    let deployed = deploy::deploy(&mut ctx, target, &settings, Some(image.clone()), out).await;
    let applied = match deployed {
        Err(e) if e.is::<NotReady>() && !install_agreed(global, args, &e)? => {
            return Err(anyhow::anyhow!("{e}\n{NOT_INSTALLED_FIX}"));
        }
        Err(e) if e.is::<NotReady>() => {
            let target = Target::resolve(&settings.target, ctx.store.state(), global.yes).await?;
            let aks = match target.aks() {
                Some(aks) => Some(install::aks::prepare(aks, false, out).await?),
                None => None,
            };
            let cluster = target.connect(ctx.remembered()).await?;
            install::install(&cluster.conn, &spinkube, aks.is_some(), out).await?;
            let target = Target::resolve(&settings.target, ctx.store.state(), global.yes).await?;
            deploy::deploy(&mut ctx, target, &settings, Some(image), out).await?
        }
        deployed => deployed?,
    };
    if let Some(diff) = &applied.diff {
        out.text_result(diff)?;
    }
    let report = UpReport {
        build: pushed.build.as_ref(),
        push: &pushed.report,
        apply: &applied,
        endpoint: applied.endpoint.as_deref(),
        verified: verified.as_ref(),
    };
    out.report(&report, applied.summary(&global.from.display().to_string()))
}

/// What `up` says when the cluster cannot run the app and SpinKube was not installed for it.
const NOT_INSTALLED_FIX: &str = "to install SpinKube and continue, run `spin-aks up --install-spinkube` (or `spin-aks cluster install`, then `spin-aks up` again)";

/// Whether to install SpinKube on a cluster that cannot run the app: `--install-spinkube`, else
/// asked on a terminal (never under `-y`).
fn install_agreed(global: &GlobalArgs, args: &UpArgs, why: &anyhow::Error) -> anyhow::Result<bool> {
    if args.install_spinkube {
        return Ok(true);
    }
    if global.yes || !prompt::on_terminal() {
        return Ok(false);
    }
    crate::output::eprint_line(&why.to_string());
    prompt::confirm("Install SpinKube on this cluster now (spin-aks cluster install)?")
}

/// When the app reads Key Vault or a Cosmos DB store and has no workload identity yet, offers
/// `identity setup` on the targeted AKS cluster (asked on a terminal, done with `-y`).
async fn offer_identity(
    global: &GlobalArgs,
    ctx: &mut AppContext,
    target: &Target,
    settings: &Settings,
    out: &Output,
) -> anyhow::Result<()> {
    let wanted = &settings.workload;
    let has_identity = ctx.remembered().identity.is_some() || wanted.identity_client_id.is_some();
    let Some((key_vault, cosmos)) = workload::identity_needs(wanted, ctx.remembered())? else {
        return Ok(());
    };
    let Some(aks) = target.aks().filter(|_| !has_identity) else {
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
    let plan = IdentityPlan {
        cluster: aks.cluster.clone(),
        identity: identity::default_name(&ctx.name),
        namespace: plan::planned_namespace(ctx, settings, &aks.cluster.name)?,
        service_account: wanted
            .service_account
            .clone()
            .unwrap_or_else(|| ctx.name.clone()),
        key_vault,
        cosmos,
    };
    let report = identity::setup(&aks.arm, &plan, &|line| out.info(line)).await?;
    ctx.remember_identity(report.workload_identity(), plan.key_vault.as_ref(), out)
}
