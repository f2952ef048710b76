//! `spin-aks scaffold`: spin.toml + flags → typed workload objects → kube YAML, Kustomize or Helm
//! (and a Dockerfile), merged with what is on disk so re-runs keep the user's edits. Reads no kubeconfig.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::workload;
use crate::app::{self, compat, App};
use crate::bad_input;
use crate::cli::{GlobalArgs, ScaffoldArgs};
use crate::kube::files;
use crate::kube::objects::{self, WorkloadKind};
use crate::kube::render::{self, dockerfile, RenderOptions, RenderType};
use crate::oci::reference::ImageRef;
use crate::oci::ImageFormat;
use crate::output::Output;
use crate::prompt;
use crate::state::{AppState, StateFile};

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
    let app = app::load(&global.from)?;
    let out_dir = args.out.clone().unwrap_or_else(|| default_out_dir(&app));
    if out_dir.exists() && !out_dir.is_dir() {
        return Err(bad_input!(
            "--out {} is a file, not a directory; choose a directory for the deployment files",
            out_dir.display()
        ));
    }
    workload::check(&args.workload)?;
    let remembered = remembered(global, &app, out)?;

    let prompter = Prompter::new(global.yes);
    let render_type = match args.render_type {
        Some(t) => t,
        None => prompter.choose(
            "Output type",
            &[RenderType::Kube, RenderType::Kustomize, RenderType::Helm],
            RenderType::name,
        )?,
    };
    let kind = match args.workload.kind {
        Some(k) => k,
        None => prompter.choose(
            "Workload",
            &[WorkloadKind::Spinapp, WorkloadKind::Deployment],
            WorkloadKind::name,
        )?,
    };
    let image = match &args.image {
        Some(image) => image.clone(),
        None => prompter.image(&default_image(&app, &remembered))?,
    };

    let options = workload::options(
        &args.workload,
        &app,
        &remembered,
        kind,
        image.clone(),
        args.namespace.clone(),
    )?;
    let workload = objects::build(&app, &options);
    let mut warnings = workload.warnings.clone();
    warnings.extend(secrets_not_written(&workload));
    let findings = compat::check(&app, ImageFormat::Spin);
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
        let (docker_files, docker_warnings) = dockerfile::render(&app, &image.to_string());
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

/// The image this app was last pushed to (state file), else `<app name>:<version>`.
/// What the state file remembers for this app (nothing when it was never pushed or set up).
fn remembered(global: &GlobalArgs, app: &App, out: &Output) -> anyhow::Result<AppState> {
    let (mut state, warning) = StateFile::new(global.state_file.as_deref())?.load()?;
    if let Some(warning) = warning {
        out.warn(warning);
    }
    let key = app.manifest_path.to_string_lossy();
    Ok(state.apps.remove(key.as_ref()).unwrap_or_default())
}

fn default_image(app: &App, remembered: &AppState) -> ImageRef {
    if let Some(image) = remembered.last_image.clone().map(ImageRef::from) {
        // Push tags an untagged reference with the app's version; so does the default here.
        if image.tag().is_none() && image.digest().is_none() {
            return image.with_tag(&app.image_tag()).unwrap_or(image);
        }
        return image;
    }
    let name = format!("{}:{}", objects::dns_name(&app.name), app.image_tag());
    ImageRef::parse(&name).expect("a DNS name and a valid tag form a reference")
}

/// Why objects holding secret values are missing from the files, and who creates them.
fn secrets_not_written(workload: &objects::Workload) -> Vec<String> {
    workload
        .secrets
        .iter()
        .map(|secret| {
            let name = secret.to_value()["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            format!(
                "the runtime config holds a Redis URL or a libsql token, so Secret {name} is not written to a file: `spin-aks apply` (or `up`) with the same --kv-store/--sqlite flags sends it to the cluster; without spin-aks: kubectl create secret generic {name} --from-file=runtime-config.toml=<file>"
            )
        })
        .collect()
}

/// Asks on the terminal, or takes defaults under `-y` or without one.
struct Prompter {
    interactive: bool,
}

impl Prompter {
    fn new(yes: bool) -> Self {
        Prompter {
            interactive: prompt::can_ask(yes),
        }
    }

    /// One of `choices`, shown by `name`; the first is the default.
    fn choose<T: Copy>(
        &self,
        what: &str,
        choices: &[T],
        name: fn(T) -> &'static str,
    ) -> anyhow::Result<T> {
        if !self.interactive {
            return Ok(choices[0]);
        }
        let names: Vec<String> = choices.iter().map(|c| name(*c).to_string()).collect();
        let chosen = prompt::select(what, &names, 0)?;
        chosen
            .map(|i| choices[i])
            .ok_or_else(|| bad_input!("no {} chosen", what.to_lowercase()))
    }

    fn image(&self, default: &ImageRef) -> anyhow::Result<ImageRef> {
        if !self.interactive {
            return Ok(default.clone());
        }
        prompt::input("Image", Some(&default.to_string()), |answer| {
            ImageRef::parse(answer).map_err(|e| e.to_string())
        })
    }
}

/// Where files go without `--out`.
fn default_out_dir(app: &App) -> PathBuf {
    app.dir.join("deploy")
}
