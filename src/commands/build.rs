//! `spin-aks build`: the app's OCI image written into a layout directory (the build step is
//! `crate::build`).

use crate::app;
use crate::build::build_image;
use crate::cli::{BuildArgs, GlobalArgs};
use crate::output::Output;

pub async fn run(global: &GlobalArgs, args: &BuildArgs, out: &Output) -> anyhow::Result<()> {
    let settings = args.image.settings()?;
    let app = app::load(&global.from)?;
    let built = build_image(app, &settings, args.layout.as_deref(), out).await?;
    crate::attest::attach(&built, &settings, out)?;
    let report = built.report(settings.format);
    let summary = format!(
        "Built {} ({}) into {}: {} layers, {} bytes, digest {}",
        built.app.name,
        built.tag,
        report.layout.display(),
        report.layers,
        report.bytes,
        report.digest
    );
    out.report(&report, summary)
}
