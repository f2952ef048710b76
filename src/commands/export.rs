//! `spin-aks export`: builds the image, then packs its layout into a deterministic oci-archive
//! for carrying into an air-gapped network.

use std::path::PathBuf;

use serde::Serialize;

use crate::app;
use crate::build::build_image;
use crate::cli::{ExportArgs, GlobalArgs};
use crate::oci::{archive, ImageFormat};
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
    let settings = args.image.settings()?;
    let built = build_image(app::load(&global.from)?, &settings, None, out).await?;
    let file_name = format!("{}-{}.oci.tar", file_stem(&built.app.name), built.tag);
    let target = args
        .out
        .clone()
        .unwrap_or_else(|| built.app.dir.join(file_name));
    let bytes = archive::pack(&built.layout, &target, built.options.mtime())?;
    let report = ExportReport {
        format: settings.format,
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

/// The app's name made a safe file name for the default archive: `A-Za-z0-9._-` kept, any other
/// character (`/`, `\`, a space…) becomes `-`, and no leading `.` or `-`, so the archive never
/// lands outside the app directory, hidden, or looking like an option; `app` when nothing is left.
/// At most 100 characters: file names have a length limit (255 bytes on most file systems).
fn file_stem(name: &str) -> String {
    let safe: String = name
        .chars()
        .take(100)
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '-',
        })
        .collect();
    match safe.trim_start_matches(['.', '-']) {
        "" => "app".to_string(),
        stem => stem.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn app_names_become_file_names_inside_the_app_directory() {
        for (name, stem) in [
            ("hello-world", "hello-world"),
            ("Hello_World.v2", "Hello_World.v2"),
            ("../x", "x"),
            ("../../etc/passwd", "etc-passwd"),
            ("/tmp/abs", "tmp-abs"),
            ("a\\b c", "a-b-c"),
            ("..", "app"),
            ("-rf", "rf"),
            ("caf\u{e9}", "caf-"),
            ("n".repeat(300).as_str(), "n".repeat(100).as_str()),
        ] {
            assert_eq!(super::file_stem(name), stem, "{name}");
        }
    }
}
