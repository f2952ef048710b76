//! `spin-aks publish`: the app's deploy objects (image pinned by digest, no Secrets) pushed as a
//! Flux OCI artifact beside the image, one tag per `--env` (the step is `crate::deploy::artifact`).

use crate::cli::{GlobalArgs, PublishArgs};
use crate::deploy::artifact::{self, Published};
use crate::output::Output;

pub async fn run(global: &GlobalArgs, args: &PublishArgs, out: &Output) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let mut ctx = global.app_context(out)?;
    let published = artifact::publish(&mut ctx, &settings, None, out).await?;
    out.report(&published, summary(&published))
}

/// The human lines: each tag pushed, the artifact pinned, the image it runs.
pub fn summary(published: &Published) -> String {
    let tags: Vec<String> = (published.tags.iter())
        .map(|t| format!("{}:{t}", published.repository))
        .collect();
    format!(
        "published {}\n{}\nruns {} ({} objects: {})",
        tags.join(", "),
        published.pinned,
        published.image,
        published.objects.len(),
        published.objects.join(", ")
    )
}
