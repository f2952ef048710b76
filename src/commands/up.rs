//! `spin-aks up`: build → push → apply → wait → endpoint through the same steps as the single
//! commands; an unchanged app uploads nothing and rolls nothing out.

use serde::Serialize;

use crate::build::BuildReport;
use crate::cli::{GlobalArgs, UpArgs};
use crate::context::target::Target;
use crate::deploy::artifact;
use crate::deploy::DeployReport;
use crate::fleet;
use crate::install;
use crate::oci::reference::ImageRef;
use crate::output::Output;
use crate::provision::identity;
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
    let up = args.settings()?;
    let (push, settings) = (&up.push, &up.deploy);
    let mut ctx = global.app_context(out)?;
    if let (true, Some(publish)) = (up.fleet, &up.publish) {
        let kubeconfig = settings.target.kubeconfig.clone();
        let up = fleet::up::deliver(
            &mut ctx,
            push,
            publish,
            kubeconfig,
            settings.timeout,
            global.yes,
            out,
        );
        let delivered = up.await?;
        let summary = super::fleet::table(&delivered.clusters);
        return out.report(
            &delivered,
            format!("{}\n{summary}", delivered.published.pinned),
        );
    }
    let policy = verify::deploy_policy(&mut ctx, &up.verify, out)?;
    if let Some(dir) = &settings.dir {
        artifact::check_dir(dir, up.publish.is_some())?;
    }
    // The cluster is chosen and asked for its version before anything is pushed or published.
    let target = Target::resolve(&settings.target, ctx.store.state(), global.yes).await?;
    target.check(ctx.remembered()).await?;
    let app = Some(ctx.app.clone());
    let pushed = push::push_image(&mut ctx.store, app, &global.from, push, global.yes, out).await?;
    out.info(format!("pushed {}", pushed.report.pinned));
    let image = ImageRef::from(pushed.report.pinned.clone());
    let (image, verified) = verify::require_if(policy.as_ref(), image, &push.registry, out).await?;
    if let Some(publish) = &up.publish {
        let published = artifact::publish(&mut ctx, publish, Some(image.clone()), out);
        out.info(super::publish::summary(&published.await?));
    }
    identity::offer(&mut ctx, &target, settings, global.yes, out).await?;
    let applied =
        install::up::deploy_installing(&mut ctx, target, &up, image, global.yes, out).await?;
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
