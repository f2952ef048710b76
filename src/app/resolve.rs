//! Finds every input of an app on disk: each component's wasm (local, or downloaded once into a
//! digest-keyed cache) and its mounted files. Produces the [`ResolvedApp`] image assembly reads.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::model::{
    App, Component, Dependency, DependencySource, ResolvedApp, ResolvedComponent, Source,
};
use super::mounts::{slash_path, AppFiles};
use crate::bad_input;
use crate::oci::{Digest, HashingWriter};
use crate::redact::redact_url;

const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// How long a download may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Seconds a download may go without a byte before it fails (a stall, not a slow transfer);
/// `SPIN_AKS_DOWNLOAD_IDLE_SECONDS` changes it.
const IDLE_SECONDS: u64 = 30;

/// Resolves every component of `app`; warnings (e.g. mounts matching nothing) are appended.
pub async fn resolve(app: App, warnings: &mut Vec<String>) -> anyhow::Result<ResolvedApp> {
    let files = AppFiles::walk(&app.dir, &app.components)?;
    let mut components = Vec::new();
    for component in &app.components {
        let wasm = wasm_path(&app, component, warnings).await?;
        let files = files.mounted(&app.manifest_path, component, warnings)?;
        let mut dependencies = Vec::new();
        for dependency in &component.dependencies {
            dependencies.push(dependency_wasm(&app, component, dependency, warnings).await?);
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

async fn wasm_path(
    app: &App,
    component: &Component,
    warnings: &mut Vec<String>,
) -> anyhow::Result<PathBuf> {
    let what = format!("component `{}`", component.id);
    match &component.source {
        Source::Local(path) => local_wasm(app, &component.id, path),
        Source::Remote { url, digest } => cached_download(&what, url, digest, warnings).await,
    }
}

/// A dependency's wasm: a file (Spin joins the path to the app directory and lets it lie
/// outside, crates/loader/src/local.rs:858@v3.6.3), a verified download, or another component's.
async fn dependency_wasm(
    app: &App,
    component: &Component,
    dependency: &Dependency,
    warnings: &mut Vec<String>,
) -> anyhow::Result<PathBuf> {
    let what = format!(
        "component `{}`, dependency `{}`",
        component.id, dependency.name
    );
    let local = |field: &str, path: &Path| -> anyhow::Result<PathBuf> {
        let full = app.dir.join(path);
        regular_file(
            &what,
            field,
            path,
            &full,
            "build the dependency or fix its `path`",
        )?;
        check_wasm_magic(&what, &full.display().to_string(), &full)?;
        Ok(std::fs::canonicalize(&full)?)
    };
    match &dependency.source {
        DependencySource::Local(path) => local(
            &format!(
                "component.{}.dependencies.\"{}\".path",
                component.id, dependency.name
            ),
            path,
        ),
        DependencySource::Remote { url, digest } => {
            cached_download(&what, url, digest, warnings).await
        }
        DependencySource::Component(id) => {
            let target =
                super::dependencies::app_component(app, &component.id, &dependency.name, id)?;
            match &target.source {
                Source::Local(path) => local(&format!("component.{id}.source"), path),
                Source::Remote { url, digest } => {
                    cached_download(&what, url, digest, warnings).await
                }
            }
        }
    }
}

fn local_wasm(app: &App, component: &str, path: &Path) -> anyhow::Result<PathBuf> {
    let what = format!("component `{component}`");
    let full = app.dir.join(path);
    regular_file(
        &what,
        &format!("component.{component}.source"),
        path,
        &full,
        "run `spin build` (or drop --skip-spin-build) to create it",
    )?;
    let real = std::fs::canonicalize(&full)?;
    if !real.starts_with(&app.dir) {
        return Err(bad_input!(
            "component `{component}`: source {} leads to {}, outside the app directory {}",
            slash_path(path),
            real.display(),
            app.dir.display()
        ));
    }
    check_wasm_magic(&what, &real.display().to_string(), &real)?;
    Ok(real)
}

/// Refuses `full` (written `path` in manifest field `field`) unless it is, after links, a regular
/// file: what it is instead is named (`is a directory, not a wasm file`); `missing` says what to
/// do when nothing is there.
fn regular_file(
    what: &str,
    field: &str,
    path: &Path,
    full: &Path,
    missing: &str,
) -> anyhow::Result<()> {
    let shown = slash_path(path);
    let kind = match std::fs::metadata(full) {
        Ok(meta) if meta.is_file() => return Ok(()),
        Ok(meta) => crate::file_kind::describe(meta.file_type()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(bad_input!(
                "{what}: `{field}`: {shown} does not exist; {missing}"
            ))
        }
        Err(e) => {
            return Err(bad_input!(
                "{what}: `{field}`: cannot read {shown}: {e}; make it readable or fix `{field}`"
            ))
        }
    };
    let link = match std::fs::read_link(full) {
        Ok(target) => format!(" (a link to {})", target.display()),
        Err(_) => String::new(),
    };
    Err(bad_input!(
        "{what}: `{field}`: {shown}{link} is {kind}, not a wasm file; point it at a .wasm file"
    ))
}

/// `what` names the wasm's owner in the error (`component `api``), `shown` the wasm (a path, or
/// the download from a URL), `path` where its bytes are.
fn check_wasm_magic(what: &str, shown: &str, path: &Path) -> anyhow::Result<()> {
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    if read.is_err() || &magic != WASM_MAGIC {
        return Err(bad_input!(
            "{what}: {shown} is not a WebAssembly module (it does not start with \\0asm); check its `source`, `path` or `url`"
        ));
    }
    Ok(())
}

/// Where downloaded sources are kept, one file per digest.
fn cache_dir() -> PathBuf {
    crate::cache::dir("wasm")
        .unwrap_or_else(|| std::env::temp_dir().join("spin-aks-cache").join("wasm"))
}

/// The idle timeout: `SPIN_AKS_DOWNLOAD_IDLE_SECONDS` (a positive whole number), else 30 s.
fn idle_timeout() -> Duration {
    let seconds = std::env::var("SPIN_AKS_DOWNLOAD_IDLE_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .unwrap_or(IDLE_SECONDS);
    Duration::from_secs(seconds)
}

/// `url`'s bytes, downloaded once into the cache and verified against `digest` as they stream
/// in; a cached copy is hashed again as it is read, and one that no longer matches (replaced or
/// damaged) is dropped and downloaded again, with a warning. `what` names the owner in errors
/// (`component `api``); the URL is shown without its credentials or query values.
async fn cached_download(
    what: &str,
    url: &str,
    digest: &Digest,
    warnings: &mut Vec<String>,
) -> anyhow::Result<PathBuf> {
    let dir = cache_dir();
    let path = dir.join(digest.hex());
    let shown = redact_url(url);
    if path.is_file() {
        let actual = std::fs::File::open(&path).and_then(|mut file| {
            let mut hasher = HashingWriter::new(std::io::sink());
            std::io::copy(&mut file, &mut hasher)?;
            Ok(hasher.finish().0)
        });
        let problem = match actual {
            Ok(actual) if &actual == digest => return Ok(path),
            Ok(actual) => format!("holds bytes of digest {actual}, not the pinned {digest}"),
            Err(e) => format!("cannot be read ({e})"),
        };
        warnings.push(format!(
            "{what}: the cached download {} {problem}; it was replaced or damaged, so {shown} is downloaded again",
            path.display()
        ));
        std::fs::remove_file(&path).with_context(|| {
            format!(
                "{what}: cannot remove the damaged cache file {}; delete it and build again",
                path.display()
            )
        })?;
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the download cache {}", dir.display()))?;
    let idle = idle_timeout();
    let failed = |e: reqwest::Error| download_error(what, &shown, idle, e);
    let client = crate::tls::client_builder(Vec::new())
        .user_agent(concat!("spin-aks/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(idle)
        .build()
        .context("cannot set up the HTTP client")?;
    let response = client.get(url).send().await.map_err(failed)?;
    let status = response.status();
    if !status.is_success() {
        anyhow::bail!(
            "{what}: cannot download {shown}: the server answered {status}; check the `url`, or re-run to retry if the server was failing"
        );
    }
    let temp = crate::interrupt::temp_file_in(&dir).with_context(|| {
        format!(
            "cannot create a file in the download cache {}",
            dir.display()
        )
    })?;
    let mut file = tokio::fs::File::from_std(temp.reopen()?);
    let mut hasher = HashingWriter::new(std::io::sink());
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(failed)?;
        std::io::Write::write_all(&mut hasher, &chunk)?;
        file.write_all(&chunk)
            .await
            .with_context(|| format!("cannot write to the download cache {}", dir.display()))?;
    }
    file.flush().await?;
    let (actual, _, _) = hasher.finish();
    if &actual != digest {
        return Err(bad_input!(
            "{what}: {shown} has digest {actual}, but spin.toml pins {digest}; fix the `digest` or the URL"
        ));
    }
    check_wasm_magic(what, &format!("the download from {shown}"), temp.path())?;
    temp.persist(&path)
        .with_context(|| format!("cannot store the download in {}", path.display()))?;
    Ok(path)
}

/// A failed request or body read of a download (`shown` the redacted URL), exit 1 with what went
/// wrong and that a re-run retries; a URL reqwest cannot use is bad input.
fn download_error(what: &str, shown: &str, idle: Duration, e: reqwest::Error) -> anyhow::Error {
    let e = e.without_url();
    if e.is_builder() {
        return bad_input!(
            "{what}: {shown} is not a URL spin-aks can download: {e}; fix the `url`"
        );
    }
    let why = if e.is_timeout() && e.is_connect() {
        format!("no connection within {} s", CONNECT_TIMEOUT.as_secs())
    } else if e.is_timeout() {
        format!(
            "the server sent nothing for {} s (SPIN_AKS_DOWNLOAD_IDLE_SECONDS changes that)",
            idle.as_secs()
        )
    } else {
        // The innermost cause (`Connection refused (os error 111)`); none of them holds the URL.
        let mut cause: &dyn std::error::Error = &e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        cause.to_string()
    };
    anyhow::Error::new(e).context(format!(
        "{what}: cannot download {shown}: {why}; re-run to retry"
    ))
}
