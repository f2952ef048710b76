//! `spin-aks push`: the app's image (built now, or `--from-layout`/`--from-archive`) pushed to a
//! registry and remembered pinned by digest (the step is `crate::publish`).

use crate::cli::{GlobalArgs, PushArgs};
use crate::output::Output;
use crate::publish;

pub async fn run(global: &GlobalArgs, args: &PushArgs, out: &Output) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let mut store = global.store(out)?;
    let pushed =
        publish::publish(&mut store, None, &global.from, &settings, global.yes, out).await?;
    let report = &pushed.report;
    let summary = format!("pushed {}\n{}", report.reference, report.pinned);
    out.report(report, summary)
}
