//! The build step, as ko's build: a loaded app → checked → `spin build` if needed → resolved
//! inputs → an OCI image in a layout. `build`, `export`, `push` and `up` start here. The two image
//! shapes (the Spin artifact and the plain wasi/wasm image) are assembled by the modules below.

pub mod assemble;
mod locked_app;
pub mod plain_image;
pub mod spin_artifact;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::app::compat::{self, ShimRelease};
use crate::app::{self, spin_build, App, ResolvedComponent};
use crate::oci::{Descriptor, ImageFormat, ImageManifest, Layout};
use crate::output::Output;
use assemble::AssembleOptions;

/// How to build (the image flags, validated).
#[derive(Clone, Copy, Debug)]
pub struct BuildSettings {
    pub format: ImageFormat,
    /// Never run `spin build`, even when a component's wasm is missing or stale.
    pub skip_spin_build: bool,
    /// The containerd-shim-spin release the cluster runs.
    pub target: &'static ShimRelease,
    /// Attach a CycloneDX SBOM to the image (`--sbom`).
    pub sbom: bool,
    /// Attach an in-toto/SLSA provenance statement to the image (`--provenance`).
    pub provenance: bool,
}

/// An image written into a layout, with what was learned on the way.
pub struct BuiltImage {
    pub app: App,
    /// Each component's resolved inputs (wasm, mounted files, dependencies' wasm), as assembled.
    pub components: Vec<ResolvedComponent>,
    pub format: ImageFormat,
    pub layout: Layout,
    pub tag: String,
    pub descriptor: Descriptor,
    pub manifest: ImageManifest,
    pub warnings: Vec<String>,
    pub options: AssembleOptions,
}

impl BuiltImage {
    /// Manifest, config and layers together.
    pub fn total_bytes(&self) -> u64 {
        self.descriptor.size + self.manifest.blobs().map(|b| b.size).sum::<u64>()
    }
}

/// What `build` reports, and `up` under `"build"`.
#[derive(Debug, Serialize)]
pub struct BuildReport {
    pub format: ImageFormat,
    pub layout: PathBuf,
    pub tag: String,
    pub digest: String,
    pub layers: usize,
    pub bytes: u64,
    pub warnings: Vec<String>,
}

impl BuiltImage {
    pub fn report(&self, format: ImageFormat) -> BuildReport {
        BuildReport {
            format,
            layout: self.layout.root().to_path_buf(),
            tag: self.tag.clone(),
            digest: self.descriptor.digest.to_string(),
            layers: self.manifest.layers.len(),
            bytes: self.total_bytes(),
            warnings: self.warnings.clone(),
        }
    }
}

/// The default layout directory of an app.
pub fn default_layout_dir(app: &App) -> PathBuf {
    app.dir.join(".spin-aks").join("oci")
}

/// Checks, builds (if needed) and assembles the app into a layout (`layout_dir`, else the
/// app's default one).
pub async fn build_image(
    app: App,
    image: &BuildSettings,
    layout_dir: Option<&Path>,
    out: &Output,
) -> anyhow::Result<BuiltImage> {
    let target = image.target;
    let options = AssembleOptions::from_env(target)?;
    let mut findings = compat::check(&app, image.format);
    let on_target = compat::target_findings(&app, image.format, target);
    findings.errors.extend(on_target.errors);
    findings.warnings.extend(on_target.warnings);
    if !findings.errors.is_empty() {
        return Err(crate::bad_input!(
            "{} cannot run on AKS: {}",
            app.manifest_path.display(),
            findings.errors.join("; ")
        ));
    }
    let mut warnings = findings.warnings;
    warnings.extend(compat::trigger_warnings(&app, target));
    spin_build::ensure_built(&app, image.skip_spin_build, &mut warnings)?;
    let tag = image_tag(&app, &mut warnings);
    let resolved = app::resolve(app, &mut warnings).await?;
    let layout_dir = layout_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_layout_dir(&resolved.app));
    let layout = Layout::create_exclusive(&layout_dir, |waiting| out.info(waiting))?;
    let manifest = match image.format {
        ImageFormat::Spin => spin_artifact::assemble(&resolved, &layout, &options, &mut warnings)?,
        ImageFormat::Image => plain_image::assemble(&resolved, &layout, &options, &mut warnings)?,
    };
    let descriptor = layout.set_image(&manifest, &tag)?;
    layout.remove_unreferenced_blobs()?;
    let text = std::fs::read_to_string(&resolved.app.manifest_path).unwrap_or_default();
    for warning in &warnings {
        let line = app::toml_util::warning_line(&text, warning);
        out.warn_at(
            line.map(|line| (resolved.app.manifest_path.as_path(), line)),
            warning,
        );
    }
    Ok(BuiltImage {
        app: resolved.app,
        components: resolved.components,
        format: image.format,
        layout,
        tag,
        descriptor,
        manifest,
        warnings,
        options,
    })
}

/// The app's image tag, with a warning when its version had to be changed to make one.
fn image_tag(app: &App, warnings: &mut Vec<String>) -> String {
    let wanted = app.default_tag();
    let tag = app.image_tag();
    if tag != wanted {
        warnings.push(format!(
            "version `{wanted}` is not a valid image tag; using `{tag}`"
        ));
    }
    tag
}
