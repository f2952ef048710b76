//! A component's `[component.x.dependencies]` composed into it at build time (wac-graph), by the
//! rules of Spin's composer, as `spin registry push` composes them (client.rs:362@v4.0.2).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use wac_graph::types::{Package, SubtypeChecker, WorldId};
use wac_graph::{CompositionGraph, EncodeOptions, NodeId};

use super::capabilities::denied_imports;
use super::componentize::componentize;
use super::dependencies::matches_import;
use super::model::{Component, Dependency, Inherit};
use crate::bad_input;

/// `wasm` (component `component` of the manifest at `manifest`) with each dependency's wasm
/// (`dependencies`, in `component.dependencies` order) plugged into the imports it satisfies;
/// the result exports what the component exports. A component without dependencies is returned
/// as is. Bad dependencies are refused (exit 2) naming the component and the dependency.
pub fn compose(
    manifest: &Path,
    component: &Component,
    wasm: Vec<u8>,
    dependencies: Vec<Vec<u8>>,
) -> anyhow::Result<Vec<u8>> {
    if component.dependencies.is_empty() {
        return Ok(wasm);
    }
    let id = &component.id;
    let refuse = |dependency: Option<&Dependency>, message: String| {
        let field = match dependency {
            Some(d) => format!("component.{id}.dependencies.\"{}\"", d.name),
            None => format!("component.{id}.source"),
        };
        bad_input!("{}: `{field}`: {message}", manifest.display())
    };
    let mut graph = CompositionGraph::new();
    let (world, root) = register(&mut graph, id, wasm)
        .map_err(|m| refuse(None, format!("component `{id}` {m}")))?;
    let imports: Vec<String> = graph.types()[world].imports.keys().cloned().collect();

    // Spin's composer (crates/compose/src/lib.rs:235-300@v4.0.2): each dependency matches at
    // least one import, is registered under its package (or plain) name, and no import is
    // matched by two dependencies.
    let mut registered: Vec<(WorldId, NodeId)> = Vec::new();
    let mut plugs: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, (dependency, bytes)) in component.dependencies.iter().zip(dependencies).enumerate()
    {
        let matched: Vec<&str> = imports
            .iter()
            .map(String::as_str)
            .filter(|import| matches_import(&dependency.name, import))
            .collect();
        if matched.is_empty() {
            return Err(refuse(
                Some(dependency),
                format!(
                    "matches no import of component `{id}` (it imports {}); Spin refuses it too: name the dependency after an import, or remove it",
                    listed(&imports)
                ),
            ));
        }
        let package = dependency.name.split(['/', '@']).next().unwrap_or_default();
        let (dep_world, node) = register(&mut graph, package, bytes)
            .map_err(|m| refuse(Some(dependency), format!("the dependency {m}")))?;
        let dep_imports = graph.types()[dep_world].imports.keys().map(String::as_str);
        let denied = denied_imports(&dependency.inherit, dep_imports);
        if !denied.is_empty() {
            return Err(refuse(
                Some(dependency),
                format!(
                    "inherits {} but imports {}, which Spin answers with its deny-all adapter when it composes; spin-aks does not build that adapter: set `inherit_configuration = true` on it, or build with `--format image` (the shim's Spin composes it at start)",
                    inheritance(&dependency.inherit),
                    denied.join(", ")
                ),
            ));
        }
        registered.push((dep_world, node));
        for import in matched {
            plugs.entry(import).or_default().push(index);
        }
    }
    if let Some((import, twice)) = plugs.iter().find(|(_, by)| by.len() > 1) {
        let names: Vec<String> = twice
            .iter()
            .map(|&i| format!("`{}`", component.dependencies[i].name))
            .collect();
        return Err(refuse(
            Some(&component.dependencies[twice[0]]),
            format!(
                "import `{import}` of component `{id}` is satisfied by several dependencies ({}); Spin refuses that too: keep one",
                names.join(", ")
            ),
        ));
    }

    // Each import gets the dependency's export of the same name, or its `export`, whose type must
    // be a subtype of the import's (lib.rs:302-377@v4.0.2); imports in name order.
    let mut cache = Default::default();
    let mut checker = SubtypeChecker::new(&mut cache);
    let mut arguments = Vec::new();
    for (import, by) in &plugs {
        let dependency = &component.dependencies[by[0]];
        let (dep_world, node) = registered[by[0]];
        let export = dependency.export.as_deref().unwrap_or(import);
        let exports = &graph.types()[dep_world].exports;
        let Some(&export_ty) = exports.get(export) else {
            let exported: Vec<String> = exports.keys().cloned().collect();
            return Err(refuse(
                Some(dependency),
                format!(
                    "does not export `{export}` to satisfy import `{import}` of component `{id}` (it exports {}); set `export` to the export that does, or use a dependency that exports it",
                    listed(&exported)
                ),
            ));
        };
        let import_ty = graph.types()[world].imports[*import];
        checker
            .is_subtype(export_ty, graph.types(), import_ty, graph.types())
            .map_err(|e| {
                refuse(
                    Some(dependency),
                    format!(
                        "its export `{export}` does not match import `{import}` of component `{id}`: {e:#}; Spin refuses it too: build the dependency against the interface the component imports"
                    ),
                )
            })?;
        arguments.push((*import, graph.alias_instance_export(node, export)?));
    }
    for (import, argument) in arguments {
        graph.set_instantiation_argument(root, import, argument)?;
    }
    // The composition exports what the component exports (lib.rs:424-443@v4.0.2).
    let exports: Vec<String> = graph.types()[world].exports.keys().cloned().collect();
    for export in exports {
        let alias = graph.alias_instance_export(root, &export)?;
        graph.export(alias, &export)?;
    }
    graph
        .encode(EncodeOptions::default())
        .with_context(|| format!("cannot compose component `{id}` with its dependencies"))
}

/// Registers `wasm` (a component, or a core module made into one) as package `name` and
/// instantiates it; the error says why it cannot be.
fn register(
    graph: &mut CompositionGraph,
    name: &str,
    wasm: Vec<u8>,
) -> Result<(WorldId, NodeId), String> {
    // Spin's loader makes a core module into a component before composing, the component's own
    // source and each dependency's alike (crates/compose/src/lib.rs:104-134@v4.0.2).
    let wasm = componentize(wasm)?;
    let package = Package::from_bytes(name, None, wasm, graph.types_mut())
        .map_err(|e| format!("is not a wasm component that can be composed: {e:#}"))?;
    let world = package.ty();
    let package = graph.register_package(package).map_err(|e| {
        format!("cannot be composed: {e} (Spin names the component by its id and each dependency by its package or plain name, and refuses two of one name too); give one dependency `{name}` exporting every interface, or rename")
    })?;
    Ok((world, graph.instantiate(package)))
}

fn listed(names: &[String]) -> String {
    if names.is_empty() {
        return "nothing".into();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn inheritance(inherit: &Inherit) -> String {
    match inherit {
        Inherit::All => "all configuration".into(),
        Inherit::Nothing => "no configuration (`inherit_configuration` unset or false)".into(),
        Inherit::Only(keys) => format!("only `{}`", keys.join("`, `")),
    }
}
