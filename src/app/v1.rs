//! Converts a version 1 spin.toml (`[[component]]` with per-component triggers) into the version 2
//! document shape, so one parser serves both and the plain image can embed a v2 manifest.

use std::path::Path;

use toml::{Table, Value};

use crate::bad_input;

/// The v2 equivalent of a v1 document.
pub fn to_v2(manifest: &Path, mut v1: Table) -> anyhow::Result<Table> {
    let error =
        |field: &str, message: &str| bad_input!("{}: `{field}`: {message}", manifest.display());
    let trigger = match v1.remove("trigger") {
        Some(Value::Table(t)) => t,
        _ => {
            return Err(error(
                "trigger",
                "missing; a version 1 manifest needs `trigger = { type = \"http\" }`",
            ))
        }
    };
    let mut app_trigger = trigger.clone();
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
    if !app_trigger.is_empty() {
        application.insert(
            "trigger".into(),
            Value::Table(Table::from_iter([(
                trigger_type.clone(),
                Value::Table(app_trigger),
            )])),
        );
    }

    let mut triggers = Vec::new();
    let mut components = Table::new();
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
    for (i, entry) in list.into_iter().enumerate() {
        let Value::Table(mut component) = entry else {
            return Err(error(&format!("component[{i}]"), "must be a table"));
        };
        let id = match component.remove("id") {
            Some(Value::String(id)) => id,
            _ => {
                return Err(error(
                    &format!("component[{i}].id"),
                    "missing or not a string",
                ))
            }
        };
        let mut component_trigger = match component.remove("trigger") {
            Some(Value::Table(t)) => t,
            None => Table::new(),
            Some(_) => return Err(error(&format!("component[{i}].trigger"), "must be a table")),
        };
        component_trigger.insert("component".into(), Value::String(id.clone()));
        triggers.push(Value::Table(component_trigger));
        if let Some(config) = component.remove("config") {
            component.insert("variables".into(), config);
        }
        if let Some(Value::Array(hosts)) = component.remove("allowed_http_hosts") {
            let converted = hosts
                .iter()
                .filter_map(Value::as_str)
                .flat_map(outbound_hosts)
                .map(Value::String);
            let outbound = component
                .entry("allowed_outbound_hosts")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(existing) = outbound {
                existing.extend(converted);
            }
        }
        components.insert(id, Value::Table(component));
    }

    let mut v2 = Table::new();
    v2.insert("spin_manifest_version".into(), Value::Integer(2));
    v2.insert("application".into(), Value::Table(application));
    if let Some(variables) = v1.remove("variables") {
        v2.insert("variables".into(), variables);
    }
    v1.remove("spin_manifest_version");
    v1.remove("spin_version");
    if let Some(unknown) = v1.keys().next() {
        return Err(error(unknown, "unknown field in a version 1 manifest"));
    }
    v2.insert(
        "trigger".into(),
        Value::Table(Table::from_iter([(trigger_type, Value::Array(triggers))])),
    );
    v2.insert("component".into(), Value::Table(components));
    Ok(v2)
}

/// v1 `allowed_http_hosts` entries as v2 `allowed_outbound_hosts` (as Spin converts them).
fn outbound_hosts(host: &str) -> Vec<String> {
    if host == "insecure:allow-all" {
        vec!["*://*:*".to_string()]
    } else if host.contains("://") {
        vec![host.to_string()]
    } else {
        vec![format!("http://{host}"), format!("https://{host}")]
    }
}
