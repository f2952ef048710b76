//! Converts a version 1 spin.toml (`[[component]]` with per-component triggers) into the version 2
//! document Spin's own conversion gives (spin v3.6.3 crates/manifest/src/compat.rs:12).

use std::path::Path;

use toml::{Table, Value};

use super::outbound_hosts;
use crate::bad_input;

/// Top-level keys of a v1 manifest (spin v3.6.3 crates/manifest/src/schema/v1.rs:15, which
/// denies unknown fields).
const APP_KEYS: &[&str] = &[
    "spin_manifest_version",
    "spin_version",
    "name",
    "version",
    "description",
    "authors",
    "trigger",
    "variables",
    "component",
];

/// Keys of a v1 `[[component]]` (schema/v1.rs:56, which denies unknown fields).
const COMPONENT_KEYS: &[&str] = &[
    "id",
    "source",
    "trigger",
    "description",
    "config",
    "environment",
    "files",
    "exclude_files",
    "allowed_http_hosts",
    "allowed_outbound_hosts",
    "key_value_stores",
    "sqlite_databases",
    "ai_models",
    "build",
];

/// The v2 equivalent of a v1 document.
pub fn to_v2(manifest: &Path, mut v1: Table) -> anyhow::Result<Table> {
    let error = |field: &str, message: &str| {
        bad_input!(
            "{}: `{field}`: {message} (version 1 manifest)",
            manifest.display()
        )
    };
    if let Some(unknown) = v1.keys().find(|k| !APP_KEYS.contains(&k.as_str())) {
        return Err(error(unknown, "unknown field"));
    }
    let mut app_trigger = match v1.remove("trigger") {
        Some(Value::Table(t)) => t,
        _ => {
            return Err(error(
                "trigger",
                "missing; add `trigger = { type = \"http\" }`",
            ))
        }
    };
    let trigger_type = match app_trigger.remove("type") {
        Some(Value::String(t)) => t,
        _ => return Err(error("trigger.type", "missing or not a string")),
    };

    let mut application = Table::new();
    for key in ["name", "version", "description", "authors"] {
        if let Some(value) = v1.remove(key) {
            application.insert(key.to_string(), value);
        }
    }
    // compat.rs:14: the app-level trigger settings are kept under their type, even when empty.
    let global = Table::from_iter([(trigger_type.clone(), Value::Table(app_trigger))]);
    application.insert("trigger".into(), Value::Table(global));

    let list = match v1.remove("component") {
        Some(Value::Array(list)) => list,
        None => Vec::new(),
        Some(_) => {
            return Err(error(
                "component",
                "must be an array of tables ([[component]])",
            ))
        }
    };
    let mut triggers = Vec::new();
    let mut components = Table::new();
    for (i, entry) in list.into_iter().enumerate() {
        let field = format!("component[{i}]");
        let Value::Table(mut component) = entry else {
            return Err(error(&field, "must be a table"));
        };
        if let Some(unknown) = component
            .keys()
            .find(|k| !COMPONENT_KEYS.contains(&k.as_str()))
        {
            return Err(error(&format!("{field}.{unknown}"), "unknown field"));
        }
        let id = match component.remove("id") {
            Some(Value::String(id)) => {
                component_id(&id).map_err(|m| error(&format!("{field}.id"), &m))?
            }
            _ => return Err(error(&format!("{field}.id"), "missing or not a string")),
        };
        let mut trigger = match component.remove("trigger") {
            Some(Value::Table(t)) => t,
            _ => {
                return Err(error(
                    &format!("{field}.trigger"),
                    "missing; a version 1 component needs its `[component.trigger]` table",
                ))
            }
        };
        // compat.rs:83: `trigger-<component id>`, bound to the component by reference.
        trigger.insert("id".into(), Value::String(format!("trigger-{id}")));
        trigger.insert("component".into(), Value::String(id.clone()));
        triggers.push(Value::Table(trigger));
        if let Some(config) = component.remove("config") {
            component.insert("variables".into(), config);
        }
        let hosts = outbound_hosts(&mut component)
            .map_err(|(key, m)| error(&format!("{field}.{key}"), &m))?;
        if !hosts.is_empty() {
            let hosts = hosts.into_iter().map(Value::String).collect();
            component.insert("allowed_outbound_hosts".into(), Value::Array(hosts));
        }
        components.insert(id, Value::Table(component));
    }

    let mut v2 = Table::new();
    v2.insert("spin_manifest_version".into(), Value::Integer(2));
    v2.insert("application".into(), Value::Table(application));
    if let Some(variables) = v1.remove("variables") {
        v2.insert("variables".into(), variables);
    }
    v2.insert(
        "trigger".into(),
        Value::Table(Table::from_iter([(trigger_type, Value::Array(triggers))])),
    );
    v2.insert("component".into(), Value::Table(components));
    Ok(v2)
}

/// compat.rs:139: an id that is already a kebab-case id is kept; otherwise `_` becomes `-` and
/// the id is lowercased (snake_case and mixedCase ids), and that must then be valid.
fn component_id(id: &str) -> Result<String, String> {
    if super::manifest::is_kebab_id(id) {
        return Ok(id.to_string());
    }
    let fixed = id.replace('_', "-").to_lowercase();
    if super::manifest::is_kebab_id(&fixed) {
        Ok(fixed)
    } else {
        Err(format!("`{id}` cannot be made a component id (`{fixed}` is not kebab-case: words of letters and digits, each starting with a letter, joined by single hyphens)"))
    }
}

/// compat.rs:47: `allowed_outbound_hosts` as written, then the converted `allowed_http_hosts`;
/// a component without `allowed_outbound_hosts` also keeps the database grants v1 gave it.
fn outbound_hosts(component: &mut Table) -> Result<Vec<String>, (String, String)> {
    let strings = |key: &str, value: Value| -> Result<Vec<String>, (String, String)> {
        let not_strings = || (key.to_string(), "must be a list of strings".to_string());
        let Value::Array(items) = value else {
            return Err(not_strings());
        };
        items
            .into_iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(not_strings))
            .collect()
    };
    let http = match component.remove("allowed_http_hosts") {
        Some(value) => strings("allowed_http_hosts", value)?,
        None => Vec::new(),
    };
    let outbound = component
        .remove("allowed_outbound_hosts")
        .map(|value| strings("allowed_outbound_hosts", value))
        .transpose()?;
    let converted = outbound_hosts::from_http_hosts(&http, outbound.is_none())
        .map_err(|m| ("allowed_http_hosts".to_string(), m))?;
    Ok(outbound.unwrap_or_default().into_iter().chain(converted).collect())
}
