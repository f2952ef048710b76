//! The Spin OCI artifact (docs/formats.md): one wasm layer per component (composed with its
//! dependencies), one data layer per file over 128 bytes (smaller ones inlined), or one archive
//! layer per component past 499 layers.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read, Write};

use anyhow::Context;

use super::assemble::{annotations, file_blob, gzip, wasm_blob, AssembleOptions, HashingReader};
use super::locked_app::{
    component_metadata, locked_app, ContentPath, ContentRef, LockedComponent, LockedSource,
};
use crate::app::compat::{import_warnings, top_level_names};
use crate::app::{compose, MountedFile, ResolvedApp, ResolvedComponent};
use crate::oci::archive::fixed_header;
use crate::oci::media_types::{
    ARCHIVE_LAYER, DATA_LAYER, IMAGE_CONFIG, IMAGE_MANIFEST, LOCKED_APP_LAYER, WASM_LAYER,
};
use crate::oci::{Descriptor, Digest, ImageManifest, Layout};

/// Files up to this size travel inside the locked app instead of as layers.
pub const INLINE_LIMIT: u64 = 128;
/// Registries accept 500 layers; one is the locked app.
pub const MAX_CONTENT_LAYERS: usize = 499;

/// A component's layers and its locked form.
struct Packed {
    layers: Vec<Descriptor>,
    locked: LockedComponent,
}

/// Writes the artifact's blobs into `layout` and returns its manifest (not yet in the index).
pub fn assemble(
    app: &ResolvedApp,
    layout: &Layout,
    options: &AssembleOptions,
    warnings: &mut Vec<String>,
) -> anyhow::Result<ImageManifest> {
    // Composed first, so a dependency refused leaves no blob behind.
    let composed = app
        .components
        .iter()
        .map(|c| composed_wasm(app, c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let pack_all = |archive: bool, warnings: &mut Vec<String>| {
        app.components
            .iter()
            .zip(&composed)
            .map(|(c, wasm)| {
                pack_component(app, c, wasm.as_deref(), layout, options, warnings, archive)
            })
            .collect::<anyhow::Result<Vec<_>>>()
    };
    let mut packed = pack_all(options.archive_layers, warnings)?;
    if !options.archive_layers
        && unique(packed.iter().flat_map(|p| &p.layers)).len() > MAX_CONTENT_LAYERS
    {
        packed = pack_all(true, &mut Vec::new())?;
    }
    let mut layers = unique(packed.iter().flat_map(|p| &p.layers));
    let locked = locked_app(
        &app.app,
        packed.into_iter().map(|p| p.locked).collect(),
        options.target,
    );
    let (digest, size) = layout.write_blob(&serde_json::to_vec(&locked)?)?;
    layers.push(Descriptor::new(LOCKED_APP_LAYER, digest.clone(), size));
    let config = format!(
        r#"{{"architecture":"wasm","os":"wasip1","config":{{"Labels":{{"com.fermyon.spin.lockedAppDigest":"{digest}"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    );
    let (config_digest, config_size) = layout.write_blob(config.as_bytes())?;
    Ok(ImageManifest {
        artifact_type: None,
        subject: None,
        schema_version: 2,
        media_type: Some(IMAGE_MANIFEST.to_string()),
        config: Descriptor::new(IMAGE_CONFIG, config_digest, config_size),
        layers,
        annotations: annotations(&app.app, options),
    })
}

/// Layers in first-seen order, each (digest, media type) once.
fn unique<'a>(layers: impl Iterator<Item = &'a Descriptor>) -> Vec<Descriptor> {
    let mut seen = HashSet::new();
    layers
        .filter(|d| seen.insert((d.digest.clone(), d.media_type.clone())))
        .cloned()
        .collect()
}

/// The component composed with its dependencies (`None` without any), as `spin registry push`
/// packages it by default: one wasm, and the locked component without `dependencies`
/// (crates/oci/src/client.rs:362-386@v4.0.2). The shim loads OCI apps precompiled, a path of
/// Spin's loader that does not compose (crates/trigger/src/loader.rs:85-104@v4.0.2).
fn composed_wasm(
    app: &ResolvedApp,
    resolved: &ResolvedComponent,
) -> anyhow::Result<Option<Vec<u8>>> {
    let component = app
        .app
        .component(&resolved.id)
        .expect("resolved components come from the app");
    if component.dependencies.is_empty() {
        return Ok(None);
    }
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let dependencies = resolved
        .dependencies
        .iter()
        .map(|path| read(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let wasm = compose::compose(
        &app.app.manifest_path,
        component,
        read(&resolved.wasm)?,
        dependencies,
    )?;
    Ok(Some(wasm))
}

fn pack_component(
    app: &ResolvedApp,
    resolved: &ResolvedComponent,
    composed: Option<&[u8]>,
    layout: &Layout,
    options: &AssembleOptions,
    warnings: &mut Vec<String>,
    archive: bool,
) -> anyhow::Result<Packed> {
    let component = app
        .app
        .component(&resolved.id)
        .expect("resolved components come from the app");
    let mut layers = Vec::new();
    let source = match composed {
        Some(wasm) => composed_source(layout, &resolved.id, wasm, options, warnings, &mut layers)?,
        None => wasm_source(
            layout,
            &resolved.id,
            &resolved.wasm,
            options,
            warnings,
            &mut layers,
        )?,
    };
    let files = pack_files(layout, &resolved.files, options, archive, &mut layers)?;
    let locked = LockedComponent {
        id: resolved.id.clone(),
        metadata: component_metadata(component),
        source,
        env: component.environment.clone(),
        files,
        config: component.variables.clone(),
        host_requirements: Default::default(),
    };
    Ok(Packed { layers, locked })
}

/// A wasm file as a wasm layer (pushed even when small) and its locked source: inline too when
/// at most [`INLINE_LIMIT`] bytes (client.rs:656-665@v3.6.3). `owner` names it in import warnings.
fn wasm_source(
    layout: &Layout,
    owner: &str,
    wasm: &std::path::Path,
    options: &AssembleOptions,
    warnings: &mut Vec<String>,
    layers: &mut Vec<Descriptor>,
) -> anyhow::Result<LockedSource> {
    let (digest, size) = wasm_blob(layout, owner, wasm, options, warnings)?;
    let inline = (size <= INLINE_LIMIT)
        .then(|| std::fs::read(wasm))
        .transpose()?;
    Ok(wasm_layer(digest, size, inline, layers))
}

/// [`wasm_source`] for a component composed in memory.
fn composed_source(
    layout: &Layout,
    owner: &str,
    wasm: &[u8],
    options: &AssembleOptions,
    warnings: &mut Vec<String>,
    layers: &mut Vec<Descriptor>,
) -> anyhow::Result<LockedSource> {
    let imports = top_level_names(wasm)?;
    warnings.extend(import_warnings(
        owner,
        imports.iter().map(String::as_str),
        options.target,
    ));
    let (digest, size) = layout.write_blob(wasm)?;
    let inline = (size <= INLINE_LIMIT).then(|| wasm.to_vec());
    Ok(wasm_layer(digest, size, inline, layers))
}

fn wasm_layer(
    digest: Digest,
    size: u64,
    inline: Option<Vec<u8>>,
    layers: &mut Vec<Descriptor>,
) -> LockedSource {
    layers.push(Descriptor::new(WASM_LAYER, digest.clone(), size));
    LockedSource {
        content_type: "application/wasm",
        content: ContentRef {
            inline,
            digest: Some(digest),
        },
    }
}

/// A component's files: those of at most [`INLINE_LIMIT`] bytes inline (with their digest, as
/// Spin writes them), the rest one data layer each, or all together in one archive layer.
fn pack_files(
    layout: &Layout,
    files: &[MountedFile],
    options: &AssembleOptions,
    archive: bool,
    layers: &mut Vec<Descriptor>,
) -> anyhow::Result<Vec<ContentPath>> {
    let sizes = files
        .iter()
        .map(|file| Ok(std::fs::metadata(&file.source).map(|m| m.len())?))
        .collect::<anyhow::Result<Vec<u64>>>()?;
    let own_layer = |size: u64| size > INLINE_LIMIT && !archive;
    let mut blobs = own_layer_blobs(layout, files, &sizes, &own_layer)?.into_iter();
    let mut tar = None;
    let mut paths = Vec::new();
    for (file, &size) in files.iter().zip(&sizes) {
        let path = relative_guest_path(file);
        let open = || -> anyhow::Result<File> {
            let opened = File::open(&file.source)
                .with_context(|| format!("cannot read {}", file.source.display()))?;
            if opened.metadata()?.len() != size {
                anyhow::bail!(
                    "{} changed while it was being read; build again",
                    file.source.display()
                );
            }
            Ok(opened)
        };
        let content = if size <= INLINE_LIMIT {
            let opened = open()?;
            let mut bytes = Vec::with_capacity(size as usize);
            (&opened).take(INLINE_LIMIT + 1).read_to_end(&mut bytes)?;
            ContentRef {
                digest: Some(Digest::of(&bytes)),
                inline: Some(bytes),
            }
        } else if archive {
            let tar = match &mut tar {
                Some(tar) => tar,
                None => tar.insert(tar::Builder::new(gzip(layout.blob_writer()?)?)),
            };
            let mut reader = HashingReader::new(BufReader::with_capacity(256 * 1024, open()?));
            let mut header = fixed_header(tar::EntryType::Regular, size, 0o644, options.mtime());
            tar.append_data(&mut header, &path, (&mut reader).take(size))?;
            ContentRef {
                inline: None,
                digest: Some(reader.digest()),
            }
        } else {
            let (digest, size) = blobs.next().expect("one blob per own-layer file");
            layers.push(Descriptor::new(DATA_LAYER, digest.clone(), size));
            ContentRef {
                inline: None,
                digest: Some(digest),
            }
        };
        paths.push(ContentPath { content, path });
    }
    if let Some(tar) = tar {
        let mut encoder = tar.into_inner()?;
        encoder.flush()?;
        let (digest, size) = encoder.finish()?.commit()?;
        layers.push(Descriptor::new(ARCHIVE_LAYER, digest, size));
    }
    Ok(paths)
}

/// The blobs of the files that get a layer of their own, in file order, written by as many
/// threads as the machine has cores (each file is still read once and hashed as written).
fn own_layer_blobs(
    layout: &Layout,
    files: &[MountedFile],
    sizes: &[u64],
    own_layer: &(dyn Fn(u64) -> bool + Sync),
) -> anyhow::Result<Vec<(Digest, u64)>> {
    let work: Vec<usize> = (0..files.len()).filter(|&i| own_layer(sizes[i])).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    type Slot = std::sync::Mutex<Option<anyhow::Result<(Digest, u64)>>>;
    let results: Vec<Slot> = work.iter().map(|_| Slot::new(None)).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(work.len());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let slot = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&index) = work.get(slot) else { break };
                let source = &files[index].source;
                let blob = File::open(source)
                    .with_context(|| format!("cannot read {}", source.display()))
                    .and_then(|file| file_blob(layout, file, source));
                *results[slot].lock().expect("no worker panics") = Some(blob);
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .expect("no worker panics")
                .expect("every slot is filled")
        })
        .collect()
}

/// The guest path relative to the component's file root (`/static/a.css` → `static/a.css`).
fn relative_guest_path(file: &MountedFile) -> String {
    file.guest_path.trim_start_matches('/').to_string()
}
