//! What Spin's manifest and trigger loaders refuse at `spin up`, refused here at build time:
//! application trigger settings, http/redis/sqs/mqtt trigger settings and component fields.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::model::{App, Component, Trigger};
use crate::bad_input;

/// Checks `app` against Spin's load-time rules; the error names the manifest field at fault.
pub fn validate(app: &App) -> anyhow::Result<()> {
    let fail = |field: &str, message: String| {
        bad_input!("{}: `{field}`: {message}", app.manifest_path.display())
    };
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

/// `[application.trigger.<type>]`: a table; redis takes only `address`, a string.
fn application_trigger(trigger_type: &str, settings: &Value) -> Result<(), Failure> {
    let Some(table) = settings.as_object() else {
        return Err((String::new(), format!("must be a table, found {settings}")));
    };
    if trigger_type == "redis" {
        only_keys(table, &["address"])?;
        string(table, "address")?;
    }
    Ok(())
}

fn trigger_settings(app: &App, trigger: &Trigger) -> Result<(), Failure> {
    let settings = &trigger.settings;
    match trigger.trigger_type.as_str() {
        "http" => {
            only_keys(settings, &["route", "executor", "static_response"])?;
            route(settings.get("route")).map_err(at("route"))?;
            executor(settings.get("executor")).map_err(at("executor"))
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

/// `{ type = "spin" | "http" }` or `{ type = "wagi", argv?, entrypoint? }`.
fn executor(value: Option<&Value>) -> Result<(), String> {
    let Some(value) = value else { return Ok(()) };
    let Some(table) = value.as_object() else {
        return Err(format!(
            "must be a table such as {{ type = \"spin\" }}, found {value}"
        ));
    };
    let allowed: &[&str] = match table.get("type").and_then(Value::as_str) {
        Some("spin" | "http") => &["type"],
        Some("wagi") => &["type", "argv", "entrypoint"],
        _ => {
            return Err(format!(
                "`type` must be \"spin\", \"http\" or \"wagi\", found {}",
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
        if !is_id(name, '_') {
            return Err((
                format!("variables.{name}"),
                "a component variable name must be lower_snake_case".into(),
            ));
        }
        templates(app, template).map_err(|m| (format!("variables.{name}"), m))?;
    }
    let labels = [
        ("key_value_stores", &component.key_value_stores),
        ("sqlite_databases", &component.sqlite_databases),
    ];
    for (key, list) in labels {
        if let Some((i, label)) = list
            .iter()
            .enumerate()
            .find(|(_, l)| !is_id(l, '-') && !is_id(l, '_'))
        {
            return Err((
                format!("{key}[{i}]"),
                format!("label `{label}` must be kebab-case or snake_case"),
            ));
        }
    }
    for (i, host) in component.allowed_outbound_hosts.iter().enumerate() {
        let field = format!("allowed_outbound_hosts[{i}]");
        templates(app, host).map_err(|m| (field.clone(), m))?;
        outbound_host(host).map_err(|m| (field, m))?;
    }
    Ok(())
}

/// Lowercase letters and digits in words joined by single `separator`s, starting with a letter.
fn is_id(id: &str, separator: char) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.split(separator).all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// Every `{{ name }}` in `text` is closed and names an application variable.
fn templates(app: &App, text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else {
            return Err(format!("`{text}`: `{{{{` is never closed with `}}}}`"));
        };
        let name = rest[start + 2..start + end].trim();
        if !app.variables.contains_key(name) {
            return Err(format!(
                "`{text}` refers to `{name}`, which is not declared in [variables]"
            ));
        }
        rest = &rest[start + end + 2..];
    }
    Ok(())
}

/// `scheme://host[:port]` as Spin's outbound networking parses it: a scheme, a host, no path,
/// and a port unless the scheme has a well-known one.
fn outbound_host(entry: &str) -> Result<(), String> {
    if entry.contains("{{") {
        return Ok(());
    }
    let Some((scheme, rest)) = entry.split_once("://") else {
        return Err(format!(
            "`{entry}` has no scheme; write e.g. `https://{entry}`"
        ));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') {
        return Err(format!("`{entry}`: an allowed host has no path"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            (host, Some(port))
        }
        _ => (authority, None),
    };
    if scheme.is_empty() || host.is_empty() {
        return Err(format!("`{entry}` needs both a scheme and a host"));
    }
    match port {
        Some("*") => Ok(()),
        Some(port) => {
            let valid = |p: &str| p.parse::<u16>().is_ok();
            let ok = match port.split_once("..") {
                Some((a, b)) => valid(a) && valid(b),
                None => valid(port),
            };
            ok.then_some(()).ok_or_else(|| {
                format!("`{entry}`: port `{port}` is not a number, a range `a..b` or `*`")
            })
        }
        None if matches!(
            scheme,
            "http" | "https" | "redis" | "mysql" | "postgres" | "*"
        ) =>
        {
            Ok(())
        }
        None => Err(format!(
            "`{entry}`: the scheme `{scheme}` has no default port; add one, e.g. `{entry}:1234`"
        )),
    }
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
    fn outbound_hosts_need_scheme_host_and_a_port_or_known_scheme() {
        for good in [
            "https://example.com",
            "*://localhost:*",
            "redis://r:6379",
            "http://*.x.com",
            "https://h:1..9",
            "{{ host }}",
            "mqtt://b:1883/",
        ] {
            assert_eq!(outbound_host(good), Ok(()), "{good}");
        }
        for bad in [
            "example.com",
            "https://example.com/path",
            "mqtt://broker",
            "https://h:99999",
            "://h:1",
        ] {
            assert!(outbound_host(bad).is_err(), "{bad}");
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
