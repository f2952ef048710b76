//! `spin-aks up`: build → push → apply → wait → endpoint through the same steps as the single
//! commands; an unchanged app uploads nothing and rolls nothing out.

use serde::Serialize;

use super::apply::{print_diff, summary};
use super::build::BuildReport;
use super::deploy::{self, DeployReport};
use super::push;
use crate::cli::{GlobalArgs, UpArgs};
use crate::kube::image::ImageRef;
use crate::output::Output;
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
    let image = ImageRef::parse(&pushed.report.pinned).map_err(|e| {
        anyhow::anyhow!(
            "the pushed reference {} is invalid: {e}",
            pushed.report.pinned
        )
    })?;
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
