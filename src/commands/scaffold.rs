//! `spin-aks scaffold`: spin.toml + flags → typed workload objects → kube YAML, Kustomize or Helm
//! (and a Dockerfile), merged with what is on disk so re-runs keep the user's edits. Reads no kubeconfig.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::app::{compat, App};
use crate::bad_input;
use crate::cli::{GlobalArgs, ScaffoldArgs};
use crate::deploy::workload;
use crate::oci::ImageFormat;
use crate::output::Output;
use crate::prompt;
use crate::workload::objects::{self, WorkloadKind};
use crate::workload::render::files;
use crate::workload::render::{self, dockerfile, RenderOptions, RenderType};

#[derive(Serialize)]
struct ScaffoldReport<'a> {
    #[serde(rename = "type")]
    render_type: RenderType,
    workload: WorkloadKind,
    out: &'a Path,
    files: Vec<String>,
    warnings: &'a [String],
}

pub fn run(global: &GlobalArgs, args: &ScaffoldArgs, out: &Output) -> anyhow::Result<()> {
    let ctx = global.app_context(out)?;
    let app = &ctx.app;
    let out_dir = args.out.clone().unwrap_or_else(|| default_out_dir(app));
    if out_dir.exists() && !out_dir.is_dir() {
        return Err(bad_input!(
            "--out {} is a file, not a directory; choose a directory for the deployment files",
            out_dir.display()
        ));
    }
    let settings = args.workload.settings()?;
    let remembered = ctx.remembered();

    let prompter = prompt::Prompter::new(global.yes);
    let render_type = match args.render_type {
        Some(t) => t,
        None => prompter.choose(
            "Output type",
            &[RenderType::Kube, RenderType::Kustomize, RenderType::Helm],
            RenderType::name,
        )?,
    };
    let kind = match settings.kind {
        Some(k) => k,
        None => prompter.choose(
            "Workload",
            &[WorkloadKind::Spinapp, WorkloadKind::Deployment],
            WorkloadKind::name,
        )?,
    };
    let image = match &args.image {
        Some(image) => image.clone(),
        None => prompter.parsed(
            "Image",
            &ctx.default_image(),
            crate::oci::reference::ImageRef::parse,
        )?,
    };

    let options = workload::options(
        &settings,
        app,
        remembered,
        kind,
        image.clone(),
        args.namespace.clone(),
    )?;
    let workload = objects::build(app, &options);
    let mut warnings = workload.warnings.clone();
    warnings.extend(workload.unwritten_secrets());
    let findings = compat::check(app, ImageFormat::Spin);
    warnings.extend(findings.errors.into_iter().chain(findings.warnings));

    let render_options = RenderOptions {
        image: image.clone(),
        namespace: args.namespace.clone(),
        overlay: args.overlay.clone(),
        app_version: app.version.clone(),
        app_description: app.description.clone(),
    };
    let mut generated = render::render(render_type, &workload, &render_options);
    if args.dockerfile {
        let (docker_files, docker_warnings) = dockerfile::render(app, &image.to_string());
        generated.extend(docker_files);
        warnings.extend(docker_warnings);
    }

    files::recover(&out_dir)?;
    let plan = files::plan(&generated, &out_dir, &app.dir, args.force)?;
    if !plan.conflicts.is_empty() && !args.force {
        anyhow::bail!(
            "you and scaffold changed the same fields differently, so nothing was written:\n  {}\nMake those fields match the new values, or re-run with --force to take the generated ones",
            plan.conflicts.join("\n  ")
        );
    }
    for conflict in &plan.conflicts {
        warnings.push(format!("--force replaced your edit at {conflict}"));
    }
    files::apply(&plan)?;
    for warning in &warnings {
        out.warn(warning);
    }
    let report = ScaffoldReport {
        render_type,
        workload: kind,
        out: &out_dir,
        files: plan.files.iter().map(|f| f.display().to_string()).collect(),
        warnings: &warnings,
    };
    let summary = format!(
        "Scaffolded {} ({}, {}) into {}: {} files, {} written",
        workload.name,
        render_type.name(),
        kind.name(),
        out_dir.display(),
        plan.files.len(),
        plan.written()
    );
    out.report(&report, summary)
}

/// Where files go without `--out`.
fn default_out_dir(app: &App) -> PathBuf {
    app.dir.join("deploy")
}
