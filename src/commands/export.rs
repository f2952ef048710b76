//! `spin-aks export`: builds the image, then packs its layout into a deterministic oci-archive
//! for carrying into an air-gapped network.

use std::path::PathBuf;

use serde::Serialize;

use crate::build::{build_image, BuiltImage};
use crate::cli::{ExportArgs, GlobalArgs};
use crate::context::AppContext;
use crate::deploy::artifact::{self, CarrySettings, ExportSettings};
use crate::oci::reference::ImageRef;
use crate::oci::{archive, ImageFormat, ImageManifest};
use crate::output::Output;
use crate::push;

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

/// Writes the deploy artifact of the built image, as it will be pushed to the carried repository,
/// beside it in the build's layout; the image's name and manifest (to restore) and what was added.
async fn carry(
    ctx: &mut AppContext,
    signer: &push::ImageSigner,
    settings: &CarrySettings,
    built: &BuiltImage,
    out: &Output,
) -> anyhow::Result<(String, ImageManifest, Carried)> {
    let tag = built.layout.tags()?.into_iter().next().unwrap_or_default();
    let (_, manifest) = built.layout.image(None)?;
    let image = ImageRef::from(settings.repository.pinned(&built.descriptor.digest));
    let tags: Vec<String> = (settings.envs.iter())
        .map(|e| format!("{}{e}", push::CARRIED_PREFIX))
        .collect();
    let written = artifact::write(ctx, &settings.objects, &image, &built.layout, &tags)?;
    let key = ctx.key.clone();
    signer
        .sign(
            &mut ctx.store,
            &key,
            &built.layout,
            &written.descriptor,
            out,
        )
        .await?;
    let carried = Carried {
        tags,
        digest: written.descriptor.digest.to_string(),
        image: image.to_string(),
    };
    Ok((tag, manifest, carried))
}

pub async fn run(global: &GlobalArgs, args: &ExportArgs, out: &Output) -> anyhow::Result<()> {
    let ExportSettings {
        build: settings,
        sign: signing,
        out: archive_file,
        carry: carried,
    } = args.settings()?;
    let mut ctx = global.app_context(out)?;
    // The signing key is read before anything is built.
    let signer = push::ImageSigner::prepare(&ctx.store, &ctx.key, &signing).await?;
    let built = build_image(ctx.app.clone(), &settings, None, out).await?;
    crate::attest::attach(&built, &settings, out)?;
    let (key, image) = (ctx.key.clone(), &built.descriptor);
    signer
        .sign(&mut ctx.store, &key, &built.layout, image, out)
        .await?;
    let file_name = archive::default_file_name(&built.app.name, &built.tag);
    let target = archive_file.unwrap_or_else(|| built.app.dir.join(file_name));
    let carried = match &carried {
        Some(settings) => Some(carry(&mut ctx, &signer, settings, &built, out).await?),
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
