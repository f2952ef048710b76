//! `spin-aks export`: builds the image, then packs its layout into a deterministic oci-archive
//! for carrying into an air-gapped network.

use std::path::PathBuf;

use serde::Serialize;

use super::build::build_image;
use crate::cli::{ExportArgs, GlobalArgs, ImageFormat};
use crate::oci::archive;
use crate::output::Output;

#[derive(Serialize)]
struct ExportReport {
    format: ImageFormat,
    archive: PathBuf,
    digest: String,
    bytes: u64,
}

pub async fn run(global: &GlobalArgs, args: &ExportArgs, out: &Output) -> anyhow::Result<()> {
    if let Some(path) = &args.out {
        if path.is_dir() {
            return Err(crate::bad_input!(
                "--out {} is a directory; name the archive file to write",
                path.display()
            ));
        }
    }
    let built = build_image(global, &args.image, None, out).await?;
    let file_name = format!("{}-{}.oci.tar", built.app.name, built.tag);
    let target = args
        .out
        .clone()
        .unwrap_or_else(|| built.app.dir.join(file_name));
    let bytes = archive::pack(&built.layout, &target, built.options.mtime())?;
    let report = ExportReport {
        format: args.image.format,
        archive: target,
        digest: built.descriptor.digest.to_string(),
        bytes,
    };
    let summary = format!(
        "Exported {} ({}) to {} ({} bytes), digest {}",
        built.app.name,
        built.tag,
        report.archive.display(),
        bytes,
        report.digest
    );
    out.report(&report, summary)
}
