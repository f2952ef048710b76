//! What both image shapes share: reproducibility options (SOURCE_DATE_EPOCH, archive-layer
//! switch), the manifest annotations, and streaming a file into a layout blob while hashing it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use sha2::Digest as _;

use crate::app::compat::{self, ImportScanner, ShimRelease};
use crate::app::App;
use crate::oci::pgzip::{self, ParallelGzip};
use crate::oci::{Digest, Layout};

/// Inputs that change bytes without being part of the app, fixed per build.
#[derive(Clone, Debug)]
pub struct AssembleOptions {
    /// File mtimes in tars and `created`: `SOURCE_DATE_EPOCH`, else none (mtime 0, no `created`).
    pub source_date_epoch: Option<u64>,
    /// Put each component's files into one archive layer (`SPIN_OCI_ARCHIVE_LAYERS`).
    pub archive_layers: bool,
    /// The containerd-shim-spin release the cluster runs, for import warnings.
    pub target: &'static ShimRelease,
}

impl AssembleOptions {
    /// Reads `SOURCE_DATE_EPOCH` and `SPIN_OCI_ARCHIVE_LAYERS` from the environment.
    pub fn from_env(target: &'static ShimRelease) -> anyhow::Result<Self> {
        let source_date_epoch = source_date_epoch()?;
        let archive_layers = std::env::var_os("SPIN_OCI_ARCHIVE_LAYERS").is_some();
        Ok(AssembleOptions {
            source_date_epoch,
            archive_layers,
            target,
        })
    }

    pub fn mtime(&self) -> u64 {
        self.source_date_epoch.unwrap_or(0)
    }
}

/// The OCI annotations Spin puts on its manifest, with `created` only when it is reproducible.
pub fn annotations(app: &App, options: &AssembleOptions) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::new();
    let mut put = |key: &str, value: String| {
        annotations.insert(format!("org.opencontainers.image.{key}"), value)
    };
    put("title", app.name.clone());
    if let Some(version) = &app.version {
        put("version", version.clone());
    }
    if !app.authors.is_empty() {
        put("authors", app.authors.join(", "));
    }
    if let Some(description) = &app.description {
        put("description", description.clone());
    }
    if let Some(created) = created(options) {
        put("created", created);
    }
    annotations
}

/// RFC 3339 time of `SOURCE_DATE_EPOCH`, if set.
pub fn created(options: &AssembleOptions) -> Option<String> {
    Some(rfc3339(options.source_date_epoch?))
}

/// The last second RFC 3339 can write (9999-12-31T23:59:59Z): four digits of year.
const LAST_EPOCH: u64 = 253_402_300_799;

/// `SOURCE_DATE_EPOCH` from the environment: seconds since 1970, at most [`LAST_EPOCH`]; a value
/// that is not is bad input (it would otherwise make a timestamp nothing can write).
pub fn source_date_epoch() -> anyhow::Result<Option<u64>> {
    let Ok(value) = std::env::var("SOURCE_DATE_EPOCH") else {
        return Ok(None);
    };
    let seconds: u64 = value.trim().parse().map_err(|_| {
        crate::bad_input!("SOURCE_DATE_EPOCH=`{value}` is not a number of seconds since 1970")
    })?;
    if seconds > LAST_EPOCH {
        return Err(crate::bad_input!(
            "SOURCE_DATE_EPOCH=`{value}` is after 9999-12-31T23:59:59Z ({LAST_EPOCH}), the last time an image timestamp can hold; give the commit time (`git log -1 --format=%ct`)"
        ));
    }
    Ok(Some(seconds))
}

/// `epoch` (at most [`LAST_EPOCH`]) as RFC 3339, to the second.
pub fn rfc3339(epoch: u64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(epoch.min(LAST_EPOCH));
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Copies a component's wasm into a blob, noting features the target Spin lacks as it streams.
pub fn wasm_blob(
    layout: &Layout,
    component: &str,
    wasm: &Path,
    options: &AssembleOptions,
    warnings: &mut Vec<String>,
) -> anyhow::Result<(Digest, u64)> {
    let cannot = || cannot_copy(wasm, layout);
    let mut file = File::open(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let before = file.metadata().with_context(cannot)?;
    let mut scanner = ImportScanner::new(BufReader::with_capacity(256 * 1024, &file));
    // As file_blob: streamed into a fresh layout; on a rebuild hashed first, copied if new.
    let rebuild = layout.is_rebuild();
    let (digest, size) = if rebuild {
        let mut hashing = crate::oci::HashingWriter::new(io::sink());
        io::copy(&mut scanner, &mut hashing).with_context(cannot)?;
        let (digest, size, _) = hashing.finish();
        (digest, size)
    } else {
        let mut blob = layout.blob_writer()?;
        io::copy(&mut scanner, &mut blob).with_context(cannot)?;
        blob.commit()?
    };
    let imports = scanner.finish();
    warnings.extend(compat::import_warnings(
        component,
        imports.iter().map(String::as_str),
        options.target,
    ));
    if rebuild {
        copy_if_missing(layout, &mut file, &before, &digest, size, wasm)?;
    }
    Ok((digest, size))
}

/// Makes an opened file (`path` names it in errors) a blob, reading it once. Into a fresh layout
/// it is streamed (hashed as written); on a rebuild it is hashed first and copied (by the kernel,
/// copy_file_range) only when the layout lacks it, so an unchanged rebuild writes nothing.
pub fn file_blob(layout: &Layout, mut file: File, path: &Path) -> anyhow::Result<(Digest, u64)> {
    let cannot = || cannot_copy(path, layout);
    if !layout.is_rebuild() {
        let mut blob = layout.blob_writer()?;
        copy_with(&mut file, |chunk| blob.write_all(chunk)).with_context(cannot)?;
        return blob.commit();
    }
    let before = file.metadata().with_context(cannot)?;
    let mut hasher = sha2::Sha256::new();
    let size = copy_with(&mut file, |chunk| {
        hasher.update(chunk);
        Ok(())
    })
    .with_context(cannot)?;
    let digest = Digest::from_hasher(hasher);
    copy_if_missing(layout, &mut file, &before, &digest, size, path)?;
    Ok((digest, size))
}

fn cannot_copy(path: &Path, layout: &Layout) -> String {
    format!(
        "cannot copy {} into the layout {}",
        path.display(),
        layout.root().display()
    )
}

/// A rebuild's copy: `file` (`path` names it), just hashed as `digest` of `size` bytes with
/// `before` its metadata then, becomes that blob unless the layout has it; refused when the
/// file changed meanwhile, so a blob always holds what its name says.
fn copy_if_missing(
    layout: &Layout,
    file: &mut File,
    before: &std::fs::Metadata,
    digest: &Digest,
    size: u64,
    path: &Path,
) -> anyhow::Result<()> {
    if layout.has_blob(digest) {
        return Ok(());
    }
    let cannot = || cannot_copy(path, layout);
    file.seek(io::SeekFrom::Start(0)).with_context(cannot)?;
    layout.copy_blob(file, digest).with_context(cannot)?;
    let after = file.metadata().with_context(cannot)?;
    if after.len() != size || after.modified().ok() != before.modified().ok() {
        anyhow::bail!(
            "{} changed while it was being copied; build again",
            path.display()
        );
    }
    Ok(())
}

/// Reads `file` to the end through this thread's 128 KiB buffer (zeroed once, not per file),
/// handing each chunk to `sink`; the size.
fn copy_with(file: &mut File, mut sink: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<u64> {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 128 * 1024]);
    }
    BUFFER.with_borrow_mut(|buffer| {
        let mut size = 0u64;
        loop {
            match file.read(buffer) {
                Ok(0) => return Ok(size),
                Ok(n) => {
                    sink(&buffer[..n])?;
                    size += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    })
}

/// A reader that hashes what is read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: sha2::Sha256::new(),
        }
    }

    pub fn digest(self) -> Digest {
        Digest::from_hasher(self.hasher)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The gzip settings every layer uses: zlib-rs (pinned in Cargo.toml) at level 6, deflated in
/// fixed-size blocks on all cores as one member, and a header without name or mtime, so
/// compressed bytes depend only on the input.
pub fn gzip<W: io::Write>(inner: W) -> io::Result<ParallelGzip<W>> {
    ParallelGzip::new(inner, 6, pgzip::default_threads())
}
