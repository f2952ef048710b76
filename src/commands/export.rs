//! `spin-aks export`: builds the image, then packs its layout into a deterministic oci-archive
//! for carrying into an air-gapped network.

use std::path::PathBuf;

use serde::Serialize;

use crate::app;
use crate::build::{build_image, BuiltImage};
use crate::cli::{ExportArgs, GlobalArgs};
use crate::oci::reference::{ImageRef, RegistryRef};
use crate::oci::{archive, ImageFormat, ImageManifest};
use crate::output::Output;
use crate::publish::{self, deploy};

#[derive(Serialize)]
struct ExportReport {
    format: ImageFormat,
    archive: PathBuf,
    digest: String,
    bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    deploy: Option<Carried>,
}

/// The deploy artifact an archive carries (`--with-deploy`).
#[derive(Serialize)]
struct Carried {
    /// `deploy-<env>` names in the archive's index.
    tags: Vec<String>,
    digest: String,
    image: String,
}

/// Writes the deploy artifact of the built image, as it will be pushed to `repository`, beside
/// it in the build's layout; the image's name and manifest (to restore) and what was added.
fn carry(
    global: &GlobalArgs,
    args: &ExportArgs,
    built: &BuiltImage,
    repository: &RegistryRef,
    out: &Output,
) -> anyhow::Result<(String, ImageManifest, Carried)> {
    let ctx = global.app_context(out)?;
    let tag = built.layout.tags()?.into_iter().next().unwrap_or_default();
    let (_, manifest) = built.layout.image(None)?;
    let image = ImageRef::from(repository.pinned(&built.descriptor.digest));
    let envs = match args.envs.as_slice() {
        [] => vec![deploy::DEFAULT_ENV.to_string()],
        envs => envs.to_vec(),
    };
    let tags: Vec<String> = envs
        .iter()
        .map(|e| format!("{}{e}", publish::CARRIED_PREFIX))
        .collect();
    let written = deploy::write(
        &ctx,
        &args.objects.settings()?,
        &image,
        &built.layout,
        &tags,
    )?;
    let carried = Carried {
        tags,
        digest: written.descriptor.digest.to_string(),
        image: image.to_string(),
    };
    Ok((tag, manifest, carried))
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
    crate::attest::attach(&built, &settings, out)?;
    let file_name = format!("{}-{}.oci.tar", file_stem(&built.app.name), built.tag);
    let target = args
        .out
        .clone()
        .unwrap_or_else(|| built.app.dir.join(file_name));
    let carried = match &args.with_deploy {
        Some(repository) => Some(carry(global, args, &built, repository, out)?),
        None => None,
    };
    let packed = archive::pack(&built.layout, &target, built.options.mtime());
    if let Some((tag, manifest, _)) = &carried {
        // The build's layout keeps its one image; only the archive carries the deploy artifact.
        built.layout.set_image(manifest, tag)?;
    }
    let bytes = packed?;
    let report = ExportReport {
        format: settings.format,
        archive: target,
        digest: built.descriptor.digest.to_string(),
        bytes,
        deploy: carried.map(|(_, _, deploy)| deploy),
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
