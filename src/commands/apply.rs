//! `spin-aks apply`: the app's objects server-side applied to the cluster, the rollout of exactly
//! the pinned image waited for, and where the app answers; with `--verify`, only a signed image.

use serde::Serialize;

use crate::cli::{ApplyArgs, GlobalArgs};
use crate::context::target::Target;
use crate::deploy::{self, plan, DeployReport};
use crate::output::Output;
use crate::verify::{self, VerifiedImage};

pub async fn run(global: &GlobalArgs, args: &ApplyArgs, out: &Output) -> anyhow::Result<()> {
    let settings = args.deploy.settings()?;
    let asked = args.deploy.verify.settings()?;
    let mut ctx = global.app_context(out)?;
    // Verified before anything reaches the cluster; then exactly the digest that verified is applied.
    let (image, verified) = match verify::deploy_policy(&mut ctx, &asked, out)? {
        Some(policy) => {
            // A tag is pinned to the digest that verifies: no warning that it may move.
            let image = match args.image.clone() {
                Some(image) => image,
                None => plan::choose_image(None, ctx.remembered(), out)?,
            };
            let registry = args.registry.settings();
            let (image, verified) = verify::require(&image, &policy, &registry, out).await?;
            (Some(image), Some(verified))
        }
        None => (args.image.clone(), None),
    };
    let target = Target::resolve(&settings.target, ctx.store.state(), global.yes).await?;
    let report = deploy::deploy(&mut ctx, target, &settings, image, out).await?;
    if let Some(diff) = &report.diff {
        out.text_result(diff)?;
    }
    let summary = report.summary(&global.from.display().to_string());
    let report = ApplyReport {
        deploy: &report,
        verified: verified.as_ref(),
    };
    out.report(&report, summary)
}

/// `apply`'s report: the deploy's, and the signature check that let the image through.
#[derive(Serialize)]
struct ApplyReport<'a> {
    #[serde(flatten)]
    deploy: &'a DeployReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<&'a VerifiedImage>,
}
