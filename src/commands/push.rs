//! `spin-aks push`: the app's image (built now, or `--from-layout`/`--from-archive`) pushed to a
//! registry and remembered pinned by digest (the step is `crate::push`); with `--publish`, its
//! deploy artifact beside it.

use serde::Serialize;

use crate::cli::{GlobalArgs, ObjectArgs, PushArgs};
use crate::deploy::artifact::{self, Published};
use crate::oci::reference::ImageRef;
use crate::output::Output;
use crate::push;
use crate::registry::PushReport;

#[derive(Serialize)]
struct PushPublishReport<'a> {
    #[serde(flatten)]
    push: &'a PushReport,
    published: &'a Published,
}

pub async fn run(global: &GlobalArgs, args: &PushArgs, out: &Output) -> anyhow::Result<()> {
    let settings = args.settings()?;
    if !args.publish {
        let mut store = global.store(out)?;
        let pushed =
            push::push_image(&mut store, None, &global.from, &settings, global.yes, out).await?;
        let report = &pushed.report;
        let summary = format!("pushed {}\n{}", report.reference, report.pinned);
        return out.report(report, summary);
    }
    let publish = args.publish_settings(ObjectArgs::defaults().settings()?)?;
    let mut ctx = global.app_context(out)?;
    let app = Some(ctx.app.clone());
    let pushed = push::push_image(
        &mut ctx.store,
        app,
        &global.from,
        &settings,
        global.yes,
        out,
    )
    .await?;
    let image = ImageRef::from(pushed.report.pinned.clone());
    let published = artifact::publish(&mut ctx, &publish, Some(image), out).await?;
    let summary = format!(
        "pushed {}\n{}\n{}",
        pushed.report.reference,
        pushed.report.pinned,
        super::publish::summary(&published)
    );
    let report = PushPublishReport {
        push: &pushed.report,
        published: &published,
    };
    out.report(&report, summary)
}
