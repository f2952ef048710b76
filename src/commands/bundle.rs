//! `spin-aks bundle create|inspect|push`: the air gap crossed whole (the step is `crate::bundle`).

use crate::bundle::{self, Contents};
use crate::cli::{BundleArgs, BundleCommand, GlobalArgs};
use crate::output::Output;
use crate::push::human_bytes;

pub async fn run(_global: &GlobalArgs, args: &BundleArgs, out: &Output) -> anyhow::Result<()> {
    match &args.command {
        BundleCommand::Create(args) => {
            let settings = args.settings()?;
            let (report, _) = bundle::create::create(&settings, out).await?;
            let summary = format!(
                "{} {} ({} items, {}, {} fetched, {:.1} s); digest {}",
                if report.unchanged {
                    "Unchanged"
                } else {
                    "Wrote"
                },
                report.archive.display(),
                report.items,
                human_bytes(report.bytes),
                human_bytes(report.fetched),
                report.seconds,
                report.digest
            );
            out.report(&report, summary)
        }
        BundleCommand::Inspect(args) => {
            let (digest, contents) = bundle::inspect(&args.file)?;
            let report = serde_json::json!({"digest": digest.to_string(), "contents": contents});
            out.report(&report, lines(&digest, &contents))
        }
        BundleCommand::Push(args) => {
            let settings = args.settings()?;
            let report = bundle::push::push(&settings, out).await?;
            let summary = format!(
                "Loaded bundle {} into {}: {} of {} items sent ({} blobs, {}), {} artifacts, {:.1} s",
                report.digest,
                report.registry,
                report.pushed,
                report.items,
                report.blobs_uploaded,
                human_bytes(report.bytes_uploaded),
                report.referrers_pushed,
                report.seconds
            );
            out.report(&report, summary)
        }
    }
}

/// One line per item: kind, part, name:tag, digest, size, origin.
fn lines(digest: &crate::oci::Digest, contents: &Contents) -> String {
    let mut lines = vec![format!(
        "bundle {digest} ({}; platforms {})",
        contents.created_by,
        contents.platforms.join(", ")
    )];
    for item in &contents.items {
        lines.push(format!(
            "{:<9} {:<22} {} {} {:>9}  from {}",
            format!("{:?}", item.kind).to_lowercase(),
            item.part,
            item.reference(),
            &item.digest.to_string()[..19],
            human_bytes(item.bytes),
            item.source
        ));
    }
    lines.join("\n")
}
