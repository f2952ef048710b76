//! The plain `wasi/wasm` OCI image (docs/formats.md): one tar+gzip layer holding /spin.toml and
//! every path it references, as a `FROM scratch` Dockerfile would build it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;

use super::assemble::{annotations, created, gzip, AssembleOptions};
use crate::app::compat::{self, ImportScanner};
use crate::app::{Dependency, Inherit, ResolvedApp, Source};
use crate::oci::archive::fixed_header;
use crate::oci::media_types::{IMAGE_CONFIG, IMAGE_LAYER_TAR_GZIP, IMAGE_MANIFEST};
use crate::oci::{json, Descriptor, HashingWriter, ImageManifest, Layout};

/// Where each component's resolved files live inside the image.
const FILES_ROOT: &str = ".spin-aks/files";
/// Where downloaded (URL) sources live inside the image.
const WASM_ROOT: &str = ".spin-aks/wasm";
/// Where component dependencies live inside the image: `<component>/<n>.wasm`.
const DEPS_ROOT: &str = ".spin-aks/deps";

enum Entry {
    Dir,
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// Writes the image's layer and config into `layout` and returns its manifest.
pub fn assemble(
    app: &ResolvedApp,
    layout: &Layout,
    options: &AssembleOptions,
    warnings: &mut Vec<String>,
) -> anyhow::Result<ImageManifest> {
    let (entries, wasm_paths) = image_entries(app)?;
    let tar_writer = HashingWriter::new(gzip(layout.blob_writer()?)?);
    let mut tar = tar::Builder::new(tar_writer);
    for (path, entry) in &entries {
        match entry {
            Entry::Dir => {
                let mut header = fixed_header(tar::EntryType::Directory, 0, 0o755, options.mtime());
                tar.append_data(&mut header, format!("{path}/"), std::io::empty())?;
            }
            Entry::Bytes(bytes) => {
                let mut header = fixed_header(
                    tar::EntryType::Regular,
                    bytes.len() as u64,
                    0o644,
                    options.mtime(),
                );
                tar.append_data(&mut header, path, bytes.as_slice())?;
            }
            Entry::File(source) => {
                let file = File::open(source)
                    .with_context(|| format!("cannot read {}", source.display()))?;
                let mut header = fixed_header(
                    tar::EntryType::Regular,
                    file.metadata()?.len(),
                    0o644,
                    options.mtime(),
                );
                match wasm_paths.get(path) {
                    Some(component) => {
                        let mut scanner = ImportScanner::new(BufReader::new(file));
                        tar.append_data(&mut header, path, &mut scanner)?;
                        let imports = scanner.finish();
                        warnings.extend(compat::import_warnings(
                            component,
                            imports.iter().map(String::as_str),
                            options.target,
                        ));
                    }
                    None => tar.append_data(&mut header, path, BufReader::new(file))?,
                }
            }
        }
    }
    let (diff_id, _, mut encoder) = tar.into_inner()?.finish();
    encoder.flush()?;
    let (layer_digest, layer_size) = encoder.finish()?.commit()?;

    let mut config = json!({
        "architecture": "wasm",
        "os": "wasi",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
    });
    if let Some(created) = created(options) {
        config["created"] = json!(created);
    }
    let (config_digest, config_size) = layout.write_blob(&json::to_canonical_vec(&config)?)?;
    Ok(ImageManifest {
        artifact_type: None,
        subject: None,
        schema_version: 2,
        media_type: Some(IMAGE_MANIFEST.to_string()),
        config: Descriptor::new(IMAGE_CONFIG, config_digest, config_size),
        layers: vec![Descriptor::new(
            IMAGE_LAYER_TAR_GZIP,
            layer_digest,
            layer_size,
        )],
        annotations: annotations(&app.app, options),
    })
}

/// Every tar entry by path (sorted, parents first), and which entries are whose wasm.
fn image_entries(
    app: &ResolvedApp,
) -> anyhow::Result<(BTreeMap<String, Entry>, BTreeMap<String, String>)> {
    let mut entries = BTreeMap::new();
    let mut wasm_paths = BTreeMap::new();
    let mut manifest = app.app.manifest.clone();
    inline_trigger_components(app, &mut manifest);
    for component in &app.components {
        let wasm_path = image_wasm_path(app, &component.id);
        add_with_parents(
            &mut entries,
            &wasm_path,
            Entry::File(component.wasm.clone()),
        );
        wasm_paths.insert(wasm_path.clone(), component.id.clone());
        let files_dir = format!("{FILES_ROOT}/{}", component.id);
        for file in &component.files {
            add_with_parents(
                &mut entries,
                &format!("{files_dir}{}", file.guest_path),
                Entry::File(file.source.clone()),
            );
        }
        let declared = &app
            .app
            .component(&component.id)
            .expect("resolved components come from the app")
            .dependencies;
        let mut dependencies = toml::Table::new();
        for (i, (dependency, wasm)) in declared.iter().zip(&component.dependencies).enumerate() {
            let path = format!("{DEPS_ROOT}/{}/{i}.wasm", component.id);
            add_with_parents(&mut entries, &path, Entry::File(wasm.clone()));
            let owner = format!("{}` dependency `{}", component.id, dependency.name);
            wasm_paths.insert(path.clone(), owner);
            dependencies.insert(dependency.name.clone(), dependency_entry(dependency, path));
        }
        let table = component_table(&mut manifest, &component.id);
        table.insert("source".into(), toml::Value::String(wasm_path));
        for key in [
            "exclude_files",
            "files",
            "build",
            "dependencies",
            "dependencies_inherit_configuration",
        ] {
            table.remove(key);
        }
        if !dependencies.is_empty() {
            if declared.iter().all(|d| d.inherit == Inherit::All) {
                for (_, entry) in dependencies.iter_mut() {
                    if let Some(entry) = entry.as_table_mut() {
                        entry.remove("inherit_configuration");
                    }
                }
                table.insert(
                    "dependencies_inherit_configuration".into(),
                    toml::Value::Boolean(true),
                );
            }
            table.insert("dependencies".into(), toml::Value::Table(dependencies));
        }
        if !component.files.is_empty() {
            let mount = toml::Table::from_iter([
                ("source".to_string(), toml::Value::String(files_dir)),
                ("destination".to_string(), toml::Value::String("/".into())),
            ]);
            table.insert(
                "files".into(),
                toml::Value::Array(vec![toml::Value::Table(mount)]),
            );
        }
    }
    entries.insert(
        "spin.toml".into(),
        Entry::Bytes(toml::to_string(&manifest)?.into_bytes()),
    );
    Ok((entries, wasm_paths))
}

/// A dependency as the image's spin.toml declares it: its wasm at `path` in the image, its export,
/// and its inheritance (per dependency only when the component-level switch cannot say it).
fn dependency_entry(dependency: &Dependency, path: String) -> toml::Value {
    let mut entry = toml::Table::from_iter([("path".to_string(), toml::Value::String(path))]);
    if let Some(export) = &dependency.export {
        entry.insert("export".into(), toml::Value::String(export.clone()));
    }
    let inherit = match &dependency.inherit {
        Inherit::Nothing => None,
        Inherit::Only(keys) if keys.is_empty() => None,
        Inherit::All => Some(toml::Value::Boolean(true)),
        Inherit::Only(keys) => Some(toml::Value::Array(
            keys.iter().cloned().map(toml::Value::String).collect(),
        )),
    };
    if let Some(inherit) = inherit {
        entry.insert("inherit_configuration".into(), inherit);
    }
    toml::Value::Table(entry)
}

/// The path a component's wasm gets in the image: its own relative path, or a digest-named file.
fn image_wasm_path(app: &ResolvedApp, id: &str) -> String {
    match &app
        .app
        .component(id)
        .expect("resolved components come from the app")
        .source
    {
        Source::Local(path) => normalize(path),
        Source::Remote { digest, .. } => format!("{WASM_ROOT}/{}.wasm", digest.hex()),
    }
}

/// A relative path with `.` and `..` resolved lexically (already checked to stay inside).
fn normalize(path: &std::path::Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for part in path.components() {
        match part {
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts.join("/")
}

fn add_with_parents(entries: &mut BTreeMap<String, Entry>, path: &str, entry: Entry) {
    let mut parent = String::new();
    for part in path
        .split('/')
        .collect::<Vec<_>>()
        .split_last()
        .map(|(_, dirs)| dirs)
        .unwrap_or_default()
    {
        parent = if parent.is_empty() {
            part.to_string()
        } else {
            format!("{parent}/{part}")
        };
        entries.entry(parent.clone()).or_insert(Entry::Dir);
    }
    entries.insert(path.to_string(), entry);
}

/// Moves components written inline in triggers to `[component.<id>]`, with the ids the model gave them.
fn inline_trigger_components(app: &ResolvedApp, manifest: &mut toml::Table) {
    let Some(toml::Value::Table(triggers)) = manifest.get_mut("trigger") else {
        return;
    };
    let mut moved = Vec::new();
    let entries = triggers
        .iter_mut()
        .filter_map(|(_, v)| v.as_array_mut())
        .flatten()
        .filter_map(|t| t.as_table_mut());
    for (entry, trigger) in entries.zip(&app.app.triggers) {
        if let Some(component) = &trigger.component {
            if let Some(inline @ toml::Value::Table(_)) = entry.remove("component") {
                moved.push((component.clone(), inline));
            }
            entry.insert("component".into(), toml::Value::String(component.clone()));
        }
        entry.insert("id".into(), toml::Value::String(trigger.id.clone()));
    }
    for (id, table) in moved {
        component_tables(manifest).insert(id, table);
    }
}

fn component_tables(manifest: &mut toml::Table) -> &mut toml::Table {
    manifest
        .entry("component")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .expect("`component` was validated as a table")
}

fn component_table<'a>(manifest: &'a mut toml::Table, id: &str) -> &'a mut toml::Table {
    component_tables(manifest)
        .get_mut(id)
        .and_then(toml::Value::as_table_mut)
        .expect("every resolved component has a table in the manifest")
}
