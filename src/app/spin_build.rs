//! Runs `spin build` when a component's wasm is missing or older than its `build.watch` inputs,
//! streaming spin's output to stderr (stdout stays clean for `--output json`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::SystemTime;

use globset::GlobBuilder;
use walkdir::WalkDir;

use super::model::{App, Component, Source};
use super::mounts::slash_path;
use crate::bad_input;

/// Why a component needs building.
#[derive(Debug, PartialEq, Eq)]
pub enum Staleness {
    Missing(PathBuf),
    Outdated { wasm: PathBuf, newer_input: PathBuf },
}

impl std::fmt::Display for Staleness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Staleness::Missing(wasm) => write!(f, "{} is missing", slash_path(wasm)),
            Staleness::Outdated { wasm, newer_input } => {
                write!(
                    f,
                    "{} is older than {}",
                    slash_path(wasm),
                    slash_path(newer_input)
                )
            }
        }
    }
}

/// Components whose local wasm is missing or stale, with the reason.
pub fn stale_components(app: &App) -> Vec<(&Component, Staleness)> {
    app.components
        .iter()
        .filter_map(|c| match &c.source {
            Source::Local(wasm) => staleness(app, c, wasm).map(|s| (c, s)),
            Source::Remote { .. } => None,
        })
        .collect()
}

fn staleness(app: &App, component: &Component, wasm: &Path) -> Option<Staleness> {
    let Ok(built) = app.dir.join(wasm).metadata().and_then(|m| m.modified()) else {
        return Some(Staleness::Missing(wasm.to_path_buf()));
    };
    let build = component.build.as_ref()?;
    let workdir = app
        .dir
        .join(build.workdir.as_deref().unwrap_or(Path::new("")));
    newest_watched(&workdir, &build.watch)
        .filter(|(modified, _)| *modified > built)
        .map(|(_, input)| Staleness::Outdated {
            wasm: wasm.to_path_buf(),
            newer_input: input.strip_prefix(&app.dir).unwrap_or(&input).to_path_buf(),
        })
}

fn newest_watched(workdir: &Path, patterns: &[String]) -> Option<(SystemTime, PathBuf)> {
    let globs: Vec<_> = patterns
        .iter()
        .filter_map(|p| GlobBuilder::new(p).literal_separator(true).build().ok())
        .map(|g| g.compile_matcher())
        .collect();
    if globs.is_empty() {
        return None;
    }
    WalkDir::new(workdir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            let relative = e
                .path()
                .strip_prefix(workdir)
                .map(slash_path)
                .unwrap_or_default();
            globs.iter().any(|g| g.is_match(&relative))
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path().to_path_buf())))
        .max()
}

/// Runs `spin build` if some component needs it and may be built; returns what was stale.
/// With `skip`, never runs it and only reports.
pub fn ensure_built(app: &App, skip: bool, warnings: &mut Vec<String>) -> anyhow::Result<bool> {
    let stale = stale_components(app);
    if stale.is_empty() {
        return Ok(false);
    }
    let reasons: Vec<String> = stale
        .iter()
        .map(|(c, s)| format!("component `{}`: {s}", c.id))
        .collect();
    if skip {
        warnings.extend(
            stale
                .iter()
                .filter(|(_, s)| matches!(s, Staleness::Outdated { .. }))
                .map(|(c, s)| {
                    format!(
                        "component `{}`: {s}; building anyway because of --skip-spin-build",
                        c.id
                    )
                }),
        );
        return Ok(false);
    }
    if let Some((component, reason)) = stale.iter().find(|(c, _)| c.build.is_none()) {
        return Err(bad_input!(
            "component `{}`: {reason}, and the component has no [component.{}.build] command; build it yourself or fix `source`",
            component.id,
            component.id
        ));
    }
    let spin = spin_binary().ok_or_else(|| {
        bad_input!("{}; `spin` is not installed (not on PATH, SPIN_BIN_PATH unset): install Spin and run `spin build`", reasons.join("; "))
    })?;
    run_spin_build(&spin, &app.manifest_path, &reasons)?;
    Ok(true)
}

fn spin_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SPIN_BIN_PATH").map(PathBuf::from) {
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("spin"))
        .find(|candidate| candidate.is_file())
}

fn run_spin_build(spin: &Path, manifest: &Path, reasons: &[String]) -> anyhow::Result<()> {
    crate::output::eprint_line(&format!(
        "Running `spin build` because {}",
        reasons.join("; ")
    ));
    let status = std::process::Command::new(spin)
        .arg("build")
        .arg("-f")
        .arg(manifest)
        .stdin(Stdio::null())
        .stdout(stderr_as_stdout()?)
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", spin.display()))?;
    if !status.success() {
        anyhow::bail!("`spin build` failed ({status}); fix the build errors above and retry");
    }
    Ok(())
}

/// Standard error, as a child's standard output (stdout stays clean for `--output json`).
fn stderr_as_stdout() -> std::io::Result<Stdio> {
    let stderr = std::io::stderr();
    Ok(std::os::fd::AsFd::as_fd(&stderr)
        .try_clone_to_owned()?
        .into())
}

/// Runs one component's `[component.<id>.build] command` as `spin build` runs it: through the
/// shell, in the app directory or its `workdir` (spin crates/build/src/lib.rs:260-279), output on
/// stderr. `dev` runs only the changed components' commands this way.
pub async fn run_component_build(app: &App, component: &Component) -> anyhow::Result<()> {
    let Some(build) = &component.build else {
        return Ok(());
    };
    let workdir = app
        .dir
        .join(build.workdir.as_deref().unwrap_or(Path::new("")));
    crate::output::eprint_line(&format!(
        "Building component {} with `{}`",
        component.id, build.command
    ));
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&build.command)
        .current_dir(&workdir)
        .stdin(Stdio::null())
        .stdout(stderr_as_stdout()?)
        .kill_on_drop(true)
        .status()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot run the build command of component `{}` in {}: {e}",
                component.id,
                workdir.display()
            )
        })?;
    if !status.success() {
        anyhow::bail!(
            "the build command of component `{}` failed ({status}); fix the errors above and save again",
            component.id
        );
    }
    Ok(())
}
