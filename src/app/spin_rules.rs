//! What Spin's manifest and trigger loaders refuse at `spin up`, refused here at build time:
//! application trigger settings, http/redis/sqs/mqtt trigger settings and component fields.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::ids::is_spin_id;
use super::model::{App, Component, Trigger};
use super::outbound_hosts;
use crate::bad_input;

/// Checks `app` against Spin's load-time rules; the error names the manifest field at fault.
pub fn validate(app: &App) -> anyhow::Result<()> {
    let fail = |field: &str, message: String| {
        bad_input!("{}: `{field}`: {message}", app.manifest_path.display())
    };
    // `spin up` refuses an app with nothing to run (spin v3.6.3 src/commands/up.rs:222).
    if app.triggers.is_empty() {
        return Err(fail(
            "trigger",
            "the app has no triggers; add one, e.g. [[trigger.http]] with `route` and `component`"
                .into(),
        ));
    }
    for (trigger_type, settings) in &app.trigger_settings {
        let field = format!("application.trigger.{trigger_type}");
        application_trigger(trigger_type, settings)
            .map_err(|(key, m)| fail(&join(&field, &key), m))?;
    }
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for trigger in &app.triggers {
        let i = index.entry(trigger.trigger_type.as_str()).or_default();
        let field = format!("trigger.{}[{i}]", trigger.trigger_type);
        *i += 1;
        trigger_settings(app, trigger).map_err(|(key, m)| fail(&join(&field, &key), m))?;
    }
    for component in &app.components {
        let field = format!("component.{}", component.id);
        component_fields(app, component).map_err(|(key, m)| fail(&join(&field, &key), m))?;
    }
    Ok(())
}

fn join(field: &str, key: &str) -> String {
    if key.is_empty() {
        field.to_string()
    } else {
        format!("{field}.{key}")
    }
}

type Failure = (String, String);

/// `[application.trigger.<type>]`: a table; redis takes only `address`, a string; http only the
/// deprecated `base`, and only as `"/"` (spin v3.6.3 crates/trigger-http/src/lib.rs:349).
fn application_trigger(trigger_type: &str, settings: &Value) -> Result<(), Failure> {
    let Some(table) = settings.as_object() else {
        return Err((String::new(), format!("must be a table, found {settings}")));
    };
    match trigger_type {
        "redis" => {
            only_keys(table, &["address"])?;
            string(table, "address")
        }
        "http" => {
            only_keys(table, &["base"])?;
            match table.get("base") {
                None => Ok(()),
                Some(Value::String(base)) if base == "/" => Ok(()),
                Some(other) => Err(("base".into(), format!("{other}: Spin no longer reads a base path and refuses any base but \"/\"; remove it and prepend it to each [[trigger.http]] route"))),
            }
        }
        _ => Ok(()),
    }
}

fn trigger_settings(app: &App, trigger: &Trigger) -> Result<(), Failure> {
    let settings = &trigger.settings;
    match trigger.trigger_type.as_str() {
        "http" => {
            only_keys(settings, &["route", "executor", "static_response"])?;
            route(settings.get("route")).map_err(at("route"))?;
            executor(settings.get("executor")).map_err(at("executor"))?;
            static_response(settings.get("static_response")).map_err(at("static_response"))
        }
        "redis" => {
            only_keys(settings, &["channel", "address"])?;
            required_string(settings, "channel").map_err(at("channel"))?;
            string(settings, "address")?;
            redis_address(app, settings).map_err(at("address"))
        }
        "sqs" => required_string(settings, "queue_url").map_err(at("queue_url")),
        "mqtt" => required_string(settings, "topic").map_err(at("topic")),
        _ => Ok(()),
    }
}

/// Spin's loaders deny unknown fields: `id` and `component` are the model's own.
/// Puts `key` in front of an error message.
fn at(key: &'static str) -> impl Fn(String) -> Failure {
    move |m| (key.to_string(), m)
}

fn only_keys(table: &Map<String, Value>, allowed: &[&str]) -> Result<(), Failure> {
    match table.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err((
            key.clone(),
            format!("unknown setting; Spin accepts only {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn string(table: &Map<String, Value>, key: &str) -> Result<(), Failure> {
    match table.get(key) {
        Some(value) if !value.is_string() => {
            Err((key.to_string(), format!("must be a string, found {value}")))
        }
        _ => Ok(()),
    }
}

fn required_string(table: &Map<String, Value>, key: &str) -> Result<(), String> {
    match table.get(key) {
        None => Err("missing; Spin requires it for this trigger".into()),
        Some(Value::String(s)) if s.trim().is_empty() => Err("must not be empty".into()),
        Some(Value::String(_)) => Ok(()),
        Some(other) => Err(format!("must be a string, found {other}")),
    }
}

/// A route string as Spin's router parses it, or `{ private = true }`.
fn route(value: Option<&Value>) -> Result<(), String> {
    match value {
        None => Err("missing; an http trigger needs a route such as \"/...\"".into()),
        Some(Value::String(route)) => route_syntax(route),
        Some(Value::Object(table)) => match (table.get("private"), table.len()) {
            (Some(Value::Bool(true)), 1) => Ok(()),
            (Some(Value::Bool(false)), 1) => Err(
                "`{ private = false }` is refused by Spin; use a route string or `{ private = true }`"
                    .into(),
            ),
            _ => Err(format!("must be a route string or {{ private = true }}, found {}", Value::Object(table.clone()))),
        },
        Some(other) => Err(format!("must be a route string or {{ private = true }}, found {other}")),
    }
}

/// Spin turns a trailing `/...` into `/*`; then every `.`/`/`-separated section is a literal,
/// a named `:param`, or a lone `*` that must end the route.
fn route_syntax(route: &str) -> Result<(), String> {
    let spec = match route.strip_suffix("/...") {
        Some(prefix) => format!("{prefix}/*"),
        None => route.to_string(),
    };
    let sections: Vec<&str> = spec
        .trim_matches('/')
        .split(['.', '/'])
        .filter(|s| !s.is_empty())
        .collect();
    for (i, section) in sections.iter().enumerate() {
        if section.starts_with('*') && section.len() > 1 {
            return Err(format!("`{route}`: a wildcard has no name; replace `{section}` with `*` (or end the route with `/...`)"));
        }
        if *section == ":" {
            return Err(format!(
                "`{route}`: route parameters must be named, e.g. `:id`"
            ));
        }
        if *section == "*" && i + 1 != sections.len() {
            return Err(format!("`{route}`: a wildcard must end the route"));
        }
    }
    Ok(())
}

/// `{ status_code?, headers?, body? }` with the types Spin reads them as (spin v3.6.3
/// crates/http/src/config.rs:86; other keys are ignored there).
fn static_response(value: Option<&Value>) -> Result<(), String> {
    let Some(value) = value else { return Ok(()) };
    let Some(table) = value.as_object() else {
        return Err(format!(
            "must be a table such as {{ status_code = 404, body = \"not found\" }}, found {value}"
        ));
    };
    if let Some(code) = table.get("status_code") {
        if code.as_u64().is_none_or(|c| c > u64::from(u16::MAX)) {
            return Err(format!(
                "`status_code`: must be an HTTP status number, found {code}"
            ));
        }
    }
    if let Some(headers) = table.get("headers") {
        let strings = headers
            .as_object()
            .is_some_and(|h| h.values().all(Value::is_string));
        if !strings {
            return Err(format!(
                "`headers`: must be a table of strings, found {headers}"
            ));
        }
    }
    string(table, "body").map_err(|(k, m)| format!("`{k}`: {m}"))
}

/// `{ type = "spin" | "http" | "wasip3-unstable" }` or `{ type = "wagi", argv?, entrypoint? }`
/// (spin v3.6.3 crates/http/src/config.rs:37; Spin 4 drops `wasip3-unstable`).
fn executor(value: Option<&Value>) -> Result<(), String> {
    let Some(value) = value else { return Ok(()) };
    let Some(table) = value.as_object() else {
        return Err(format!(
            "must be a table such as {{ type = \"spin\" }}, found {value}"
        ));
    };
    let allowed: &[&str] = match table.get("type").and_then(Value::as_str) {
        Some("spin" | "http" | "wasip3-unstable") => &["type"],
        Some("wagi") => &["type", "argv", "entrypoint"],
        _ => {
            return Err(format!(
                "`type` must be \"spin\", \"http\", \"wagi\" or \"wasip3-unstable\", found {}",
                table.get("type").unwrap_or(&Value::Null)
            ))
        }
    };
    only_keys(table, allowed).map_err(|(k, m)| format!("`{k}`: {m}"))?;
    for key in ["argv", "entrypoint"] {
        string(table, key).map_err(|(k, m)| format!("`{k}`: {m}"))?;
    }
    Ok(())
}

/// The trigger's address, else the application default: present, and a Redis URL unless it is
/// a `{{ variable }}` template resolved at run time.
fn redis_address(app: &App, settings: &Map<String, Value>) -> Result<(), String> {
    let address = settings
        .get("address")
        .or_else(|| app.trigger_settings.get("redis")?.get("address"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if address.is_empty() {
        return Err("missing: set `address` here or in [application.trigger.redis]; Spin cannot subscribe without a server".into());
    }
    let schemes = ["redis://", "rediss://", "redis+unix://", "unix://"];
    if address.contains("{{") || schemes.iter().any(|s| address.starts_with(s)) {
        return Ok(());
    }
    Err(format!(
        "`{address}` is not a Redis URL (redis://, rediss://, redis+unix:// or unix://)"
    ))
}

fn component_fields(app: &App, component: &Component) -> Result<(), Failure> {
    for (name, template) in &component.variables {
        let field = format!("variables.{name}");
        if !is_spin_id(name, '_', true) {
            return Err((
                field,
                "a component variable name must be lower_snake_case".into(),
            ));
        }
        known_variables(app, template).map_err(|m| (field, m))?;
    }
    let labels = [
        ("key_value_stores", &component.key_value_stores),
        ("sqlite_databases", &component.sqlite_databases),
    ];
    for (key, list) in labels {
        // spin v3.6.3 crates/manifest/src/schema/v2.rs:612: a KebabId or a SnakeId.
        let label = |l: &String| is_spin_id(l, '-', false) || is_spin_id(l, '_', false);
        if let Some((i, bad)) = list.iter().enumerate().find(|(_, l)| !label(l)) {
            return Err((
                format!("{key}[{i}]"),
                format!("label `{bad}` must be kebab-case or snake_case"),
            ));
        }
    }
    allowed_outbound_hosts(app, &component.allowed_outbound_hosts)
}

/// Spin's load-time check of `allowed_outbound_hosts` (spin v3.6.3
/// crates/outbound-networking-config/src/allowed_hosts.rs:480): each literal entry must parse,
/// and a template must parse once filled in with the variables' defaults (when all have one).
fn allowed_outbound_hosts(app: &App, hosts: &[String]) -> Result<(), Failure> {
    if let [only] = hosts {
        if only == "insecure:allow-all" {
            return Err((
                "allowed_outbound_hosts[0]".into(),
                "`insecure:allow-all` is refused by Spin; use `*://*:*` to allow all outbound traffic".into(),
            ));
        }
    }
    for (i, host) in hosts.iter().enumerate() {
        let field = format!("allowed_outbound_hosts[{i}]");
        let parts = template(host).map_err(|m| (field.clone(), m))?;
        known_variables(app, host).map_err(|m| (field.clone(), m))?;
        let Some(resolved) = with_defaults(app, &parts) else {
            continue;
        };
        outbound_hosts::parse(&resolved).map_err(|m| {
            let m = match resolved == *host {
                true => m,
                false => format!("with the variables' default values `{host}` becomes {m}"),
            };
            (field, m)
        })?;
    }
    Ok(())
}

/// A piece of a `{{ variable }}` template: literal text or a variable name.
enum Part<'a> {
    Text(&'a str),
    Variable(&'a str),
}

/// `text` split as Spin's `Template::new` splits it (spin v3.6.3 crates/expressions/src/template.rs:13).
fn template(text: &str) -> Result<Vec<Part<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(expression) = rest.strip_prefix("{{") {
            let Some((name, after)) = expression.split_once("}}") else {
                return Err(format!("`{text}`: `{{{{` is never closed with `}}}}`"));
            };
            parts.push(Part::Variable(name.trim()));
            rest = after;
        } else {
            let end = rest.find("{{").unwrap_or(rest.len());
            parts.push(Part::Text(&rest[..end]));
            rest = &rest[end..];
        }
    }
    Ok(parts)
}

/// Every `{{ name }}` in `text` is closed and names an application variable.
fn known_variables(app: &App, text: &str) -> Result<(), String> {
    for part in template(text)? {
        if let Part::Variable(name) = part {
            if !app.variables.contains_key(name) {
                return Err(format!(
                    "`{text}` refers to `{name}`, which is not declared in [variables]"
                ));
            }
        }
    }
    Ok(())
}

/// The template filled in with default values; `None` when a variable has no default.
fn with_defaults(app: &App, parts: &[Part]) -> Option<String> {
    parts
        .iter()
        .map(|part| match part {
            Part::Text(text) => Some(text.to_string()),
            Part::Variable(name) => app.variables.get(*name)?.default.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_spins_router() {
        for good in [
            "/",
            "/...",
            "/api/...",
            "/users/:id",
            "/files/*",
            "/a.b/:x.json",
            "/.well-known/x",
        ] {
            assert_eq!(route_syntax(good), Ok(()), "{good}");
        }
        for bad in ["/files/*rest", "/users/:", "/a/*/b", "/:/x"] {
            assert!(route_syntax(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn executors_are_spin_http_or_wagi() {
        let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert!(executor(Some(&parse(r#"{"type":"spin"}"#))).is_ok());
        assert!(executor(Some(&parse(r#"{"type":"wagi","argv":"x"}"#))).is_ok());
        assert!(executor(Some(&parse(r#"{"type":"cgi"}"#))).is_err());
        assert!(executor(Some(&parse(r#"{"type":"spin","argv":"x"}"#))).is_err());
    }
}
