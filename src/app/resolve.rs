//! Finds every input of an app on disk: each component's wasm (local, or downloaded once into a
//! digest-keyed cache) and its mounted files. Produces the [`ResolvedApp`] image assembly reads.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::model::{
    App, Component, Dependency, DependencySource, ResolvedApp, ResolvedComponent, Source,
};
use super::mounts::{slash_path, AppFiles};
use crate::bad_input;
use crate::oci::Digest;

const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Resolves every component of `app`; warnings (e.g. mounts matching nothing) are appended.
pub async fn resolve(app: App, warnings: &mut Vec<String>) -> anyhow::Result<ResolvedApp> {
    let files = AppFiles::walk(&app.dir, &app.components)?;
    let mut components = Vec::new();
    for component in &app.components {
        let wasm = wasm_path(&app, component).await?;
        let files = files.mounted(&app.manifest_path, component, warnings)?;
        let mut dependencies = Vec::new();
        for dependency in &component.dependencies {
            dependencies.push(dependency_wasm(&app, component, dependency).await?);
        }
        components.push(ResolvedComponent {
            id: component.id.clone(),
            wasm,
            files,
            dependencies,
        });
    }
    Ok(ResolvedApp { app, components })
}

async fn wasm_path(app: &App, component: &Component) -> anyhow::Result<PathBuf> {
    let what = format!("component `{}`", component.id);
    match &component.source {
        Source::Local(path) => local_wasm(app, &component.id, path),
        Source::Remote { url, digest } => cached_download(&what, url, digest).await,
    }
}

/// A dependency's wasm: a file (Spin joins the path to the app directory and lets it lie
/// outside, crates/loader/src/local.rs:858@v3.6.3), a verified download, or another component's.
async fn dependency_wasm(
    app: &App,
    component: &Component,
    dependency: &Dependency,
) -> anyhow::Result<PathBuf> {
    let what = format!(
        "component `{}`, dependency `{}`",
        component.id, dependency.name
    );
    let local = |path: &Path| -> anyhow::Result<PathBuf> {
        let full = app.dir.join(path);
        if !full.is_file() {
            return Err(bad_input!(
                "{what}: {} does not exist; build the dependency or fix its `path`",
                slash_path(path)
            ));
        }
        check_wasm_magic(&what, &full)?;
        Ok(std::fs::canonicalize(&full)?)
    };
    match &dependency.source {
        DependencySource::Local(path) => local(path),
        DependencySource::Remote { url, digest } => cached_download(&what, url, digest).await,
        DependencySource::Component(id) => {
            let target =
                super::dependencies::app_component(app, &component.id, &dependency.name, id)?;
            match &target.source {
                Source::Local(path) => local(path),
                Source::Remote { url, digest } => cached_download(&what, url, digest).await,
            }
        }
    }
}

fn local_wasm(app: &App, component: &str, path: &Path) -> anyhow::Result<PathBuf> {
    let full = app.dir.join(path);
    if !full.is_file() {
        return Err(bad_input!(
            "component `{component}`: source {} does not exist; run `spin build` (or drop --skip-spin-build) to create it",
            slash_path(path)
        ));
    }
    let real = std::fs::canonicalize(&full)?;
    if !real.starts_with(&app.dir) {
        return Err(bad_input!(
            "component `{component}`: source {} leads to {}, outside the app directory {}",
            slash_path(path),
            real.display(),
            app.dir.display()
        ));
    }
    check_wasm_magic(&format!("component `{component}`"), &real)?;
    Ok(real)
}

/// `what` names the wasm's owner in the error (`component `api``).
fn check_wasm_magic(what: &str, path: &Path) -> anyhow::Result<()> {
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    if read.is_err() || &magic != WASM_MAGIC {
        return Err(bad_input!(
            "{what}: {} is not a WebAssembly module (it does not start with \\0asm); check its `source` or `path`",
            path.display()
        ));
    }
    Ok(())
}

/// Where downloaded sources are kept, one file per digest.
fn cache_dir() -> PathBuf {
    std::env::var_os("SPIN_AKS_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("spin-aks")))
        .unwrap_or_else(|| std::env::temp_dir().join("spin-aks-cache"))
        .join("wasm")
}

/// Downloads `url` once into the cache, verifying its bytes against `digest` as they stream in;
/// `what` names the owner in errors (`component `api``).
async fn cached_download(what: &str, url: &str, digest: &Digest) -> anyhow::Result<PathBuf> {
    let dir = cache_dir();
    let path = dir.join(digest.hex());
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the download cache {}", dir.display()))?;
    let response = reqwest::get(url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("{what}: cannot download {url}"))?;
    let temp = crate::interrupt::temp_file_in(&dir)?;
    let mut file = tokio::fs::File::from_std(temp.reopen()?);
    let mut hasher = crate::oci::HashingWriter::new(std::io::sink());
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.with_context(|| format!("{what}: download of {url} was interrupted"))?;
        std::io::Write::write_all(&mut hasher, &chunk)?;
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    let (actual, _, _) = hasher.finish();
    if &actual != digest {
        return Err(bad_input!(
            "{what}: {url} has digest {actual}, but spin.toml pins {digest}; fix the `digest` or the URL"
        ));
    }
    check_wasm_magic(what, temp.path())?;
    temp.persist(&path)?;
    Ok(path)
}
