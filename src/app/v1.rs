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
    if super::ids::is_kebab_id(id) {
        return Ok(id.to_string());
    }
    let fixed = id.replace('_', "-").to_lowercase();
    if super::ids::is_kebab_id(&fixed) {
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
    Ok(outbound
        .unwrap_or_default()
        .into_iter()
        .chain(converted)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(text: &str) -> anyhow::Result<Table> {
        to_v2(Path::new("spin.toml"), text.parse::<Table>().unwrap())
    }

    /// Compares the two documents one field at a time, so a failure names the field.
    fn assert_fields(actual: &Table, expected: &Table, at: &str) {
        let keys: std::collections::BTreeSet<&String> =
            actual.keys().chain(expected.keys()).collect();
        for key in keys {
            let field = format!("{at}{key}");
            match (actual.get(key), expected.get(key)) {
                (Some(Value::Table(a)), Some(Value::Table(e))) => {
                    assert_fields(a, e, &format!("{field}."))
                }
                (a, e) => assert_eq!(a, e, "field `{field}`"),
            }
        }
    }

    // A v1 app modelled on spin v3.6.3 crates/manifest/tests/ui/v1/{maximal,update_component_ids}.toml;
    // the expected v2 is written from crates/manifest/src/compat.rs:12-151 at v3.6.3.
    #[test]
    fn a_version_1_app_converts_field_by_field_as_spins_compat_does() {
        let v1 = r#"
            spin_manifest_version = "1"
            name = "shop"
            version = "2.1.0"
            description = "Shop front"
            authors = ["ana@example.test"]
            trigger = { type = "http", base = "/" }
            [variables]
            token = { required = true, secret = true }
            [[component]]
            id = "web_front"
            source = "web.wasm"
            allowed_http_hosts = ["self", "Api.Example.test:8080", "https://cdn.example.test/", "https://pay.example.test:443"]
            files = ["static/**/*"]
            config = { api_token = "{{ token }}" }
            [component.trigger]
            route = "/..."
            [[component]]
            id = "jobRunner"
            source = "jobs.wasm"
            allowed_outbound_hosts = ["redis://cache.example.test:6379"]
            allowed_http_hosts = ["insecure:allow-all", "not a host at all"]
            [component.trigger]
            route = "/jobs"
            executor = { type = "wagi" }
            [[component]]
            id = "quiet"
            source = "quiet.wasm"
            allowed_outbound_hosts = []
            trigger = { route = "/quiet" }
            [[component]]
            id = "API-GATE"
            source = "gate.wasm"
            trigger = { route = "/gate" }
        "#;
        let expected = r#"
            spin_manifest_version = 2
            [application]
            name = "shop"
            version = "2.1.0"
            description = "Shop front"
            authors = ["ana@example.test"]
            [application.trigger.http]
            base = "/"
            [variables]
            token = { required = true, secret = true }
            [[trigger.http]]
            id = "trigger-web-front"
            component = "web-front"
            route = "/..."
            [[trigger.http]]
            id = "trigger-jobrunner"
            component = "jobrunner"
            route = "/jobs"
            executor = { type = "wagi" }
            [[trigger.http]]
            id = "trigger-quiet"
            component = "quiet"
            route = "/quiet"
            [[trigger.http]]
            id = "trigger-API-GATE"
            component = "API-GATE"
            route = "/gate"
            [component.web-front]
            source = "web.wasm"
            files = ["static/**/*"]
            variables = { api_token = "{{ token }}" }
            allowed_outbound_hosts = [
                "redis://*:*", "mysql://*:*", "postgres://*:*",
                "http://self",
                "http://api.example.test:8080", "https://api.example.test:8080",
                "http://cdn.example.test", "https://cdn.example.test",
                "http://pay.example.test", "https://pay.example.test",
            ]
            [component.jobrunner]
            source = "jobs.wasm"
            allowed_outbound_hosts = ["redis://cache.example.test:6379", "http://*:*", "https://*:*", "http://self"]
            [component.quiet]
            source = "quiet.wasm"
            [component.API-GATE]
            source = "gate.wasm"
            allowed_outbound_hosts = ["redis://*:*", "mysql://*:*", "postgres://*:*"]
        "#;
        let actual = convert(v1).unwrap();
        assert_fields(&actual, &expected.parse::<Table>().unwrap(), "");
        let ids: Vec<&str> = actual["component"]
            .as_table()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(ids, ["web-front", "jobrunner", "quiet", "API-GATE"]);
    }

    // compat.rs:139-151, compat.rs:40-44 and schema/v1.rs:54-61 (deny_unknown_fields; `trigger`
    // is required) at v3.6.3.
    #[test]
    fn version_1_inputs_spin_cannot_convert_are_refused_naming_the_field() {
        let app = |component: &str| {
            format!("spin_manifest_version = \"1\"\nname = \"a\"\ntrigger = {{ type = \"http\" }}\n[[component]]\n{component}")
        };
        for (component, field) in [
            ("id = \"9lives\"\nsource = \"a.wasm\"\ntrigger = {}", "`component[0].id`"),
            ("id = \"a\"\nsource = \"a.wasm\"", "`component[0].trigger`"),
            ("id = \"a\"\nsource = \"a.wasm\"\ntrigger = {}\nroutes = 1", "`component[0].routes`"),
            (
                "id = \"a\"\nsource = \"a.wasm\"\ntrigger = {}\nallowed_http_hosts = [\"ftp://x.test\"]",
                "`component[0].allowed_http_hosts`",
            ),
        ] {
            let err = convert(&app(component)).unwrap_err().to_string();
            assert!(err.contains(field), "{component}: {err}");
        }
    }
}
