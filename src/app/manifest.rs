//! Parsing spin.toml (version 2; version 1 is converted first) into the typed [`App`], with every
//! error naming the file, the field path and the value at fault.

use std::collections::{BTreeMap, HashSet};
use std::path::{Component as PathPart, Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;

use super::ids::{is_kebab_id, is_spin_id};
use super::model::{App, BuildConfig, Component, FileMount, Source, Trigger, Variable};
use super::toml_util::{deserialize, line_col, to_json};
use super::{outbound_hosts, v1};
use crate::bad_input;

/// Reads the app at `path`: a spin.toml, or a directory holding one.
pub fn load(path: &Path) -> anyhow::Result<App> {
    let manifest_path = locate(path)?;
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| bad_input!("cannot read {}: {e}", manifest_path.display()))?;
    let document = parse_toml(&manifest_path, &text)?;
    let manifest = match manifest_version(&manifest_path, &document)? {
        1 => v1::to_v2(&manifest_path, document)?,
        _ => document,
    };
    let dir = manifest_path
        .parent()
        .expect("a manifest file has a parent directory")
        .to_path_buf();
    let app = from_v2(manifest, manifest_path, dir)?;
    super::spin_rules::validate(&app)?;
    Ok(app)
}

fn locate(path: &Path) -> anyhow::Result<PathBuf> {
    let manifest = if path.is_dir() {
        path.join("spin.toml")
    } else {
        path.to_path_buf()
    };
    if !manifest.is_file() {
        return Err(bad_input!(
            "no Spin manifest at {}; pass the app's spin.toml (or its directory) with --from",
            manifest.display()
        ));
    }
    let manifest = std::fs::canonicalize(&manifest)
        .map_err(|e| bad_input!("cannot read {}: {e}", manifest.display()))?;
    Ok(manifest)
}

fn parse_toml(manifest: &Path, text: &str) -> anyhow::Result<toml::Table> {
    text.parse::<toml::Table>().map_err(|err| {
        let (line, col) = err.span().map_or((1, 1), |span| line_col(text, span.start));
        bad_input!(
            "{}:{line}:{col}: invalid TOML: {}",
            manifest.display(),
            err.message().trim_end()
        )
    })
}

fn manifest_version(manifest: &Path, document: &toml::Table) -> anyhow::Result<u8> {
    let declared = document
        .get("spin_manifest_version")
        .or_else(|| document.get("spin_version"));
    match declared {
        Some(toml::Value::Integer(2)) => Ok(2),
        Some(toml::Value::String(s)) if s == "1" => Ok(1),
        Some(other) => Err(bad_input!(
            "{}: `spin_manifest_version`: unsupported manifest version {other}; spin-aks reads version 2 (and 1)",
            manifest.display()
        )),
        None => Err(bad_input!(
            "{}: `spin_manifest_version`: missing; add `spin_manifest_version = 2` at the top",
            manifest.display()
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(rename = "spin_manifest_version")]
    _version: toml::Value,
    application: RawApplication,
    #[serde(default)]
    variables: IndexMap<String, RawVariable>,
    #[serde(default)]
    trigger: IndexMap<String, Vec<RawTrigger>>,
    #[serde(default)]
    component: IndexMap<String, RawComponent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApplication {
    name: String,
    version: Option<String>,
    description: Option<String>,
    #[serde(default)]
    authors: Vec<String>,
    #[serde(default)]
    trigger: IndexMap<String, toml::Value>,
    #[serde(default, rename = "tool")]
    _tool: Option<toml::Value>,
    #[serde(default, rename = "targets")]
    _targets: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
    description: Option<String>,
}

#[derive(Deserialize)]
struct RawTrigger {
    id: Option<String>,
    component: Option<toml::Value>,
    components: Option<toml::Value>,
    #[serde(flatten)]
    settings: IndexMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    description: Option<String>,
    #[serde(default, rename = "targets")]
    _targets: Option<toml::Value>,
    /// Spin 4's build profiles (spin v4.0.2 crates/manifest/src/schema/v2.rs:555, `profile`); the
    /// image carries the default build, so a profile is only checked for shape.
    #[serde(default, rename = "profile")]
    _profile: IndexMap<String, RawProfile>,
    source: toml::Value,
    #[serde(default)]
    files: Vec<toml::Value>,
    #[serde(default)]
    exclude_files: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    /// Deprecated but still read by Spin (spin v3.6.3 crates/manifest/src/schema/v2.rs:349).
    #[serde(default)]
    allowed_http_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    ai_models: Vec<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    build: Option<RawBuild>,
    dependencies: Option<toml::Table>,
    dependencies_inherit_configuration: Option<bool>,
    #[serde(default, rename = "tool")]
    _tool: Option<toml::Value>,
}

/// `[component.<id>.profile.<name>]` (spin v4.0.2 crates/manifest/src/schema/v2.rs:561 `ComponentProfileOverride`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default, rename = "source")]
    _source: Option<toml::Value>,
    #[serde(default, rename = "environment")]
    _environment: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "dependencies")]
    _dependencies: Option<toml::Table>,
    #[serde(default, rename = "build")]
    _build: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    command: RawCommand,
    workdir: Option<String>,
    #[serde(default)]
    watch: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawCommand {
    One(String),
    Many(Vec<String>),
}

/// Builds the model from a version 2 document.
fn from_v2(document: toml::Table, manifest_path: PathBuf, dir: PathBuf) -> anyhow::Result<App> {
    let raw: RawManifest = deserialize(&manifest_path, "", toml::Value::Table(document.clone()))?;
    let ctx = Ctx {
        manifest: &manifest_path,
    };
    let variables = ctx.variables(raw.variables)?;
    let document = without_profiles(document);
    let mut components = Vec::new();
    for (id, component) in raw.component {
        ctx.check_id(&format!("component.{id}"), &id, IdKind::Component)?;
        components.push(ctx.component(&format!("component.{id}"), id, component)?);
    }
    let triggers = ctx.triggers(raw.trigger, &mut components)?;
    let trigger_settings = raw
        .application
        .trigger
        .iter()
        .map(|(k, v)| (k.clone(), to_json(v)))
        .collect();
    Ok(App {
        dir,
        manifest: document,
        name: raw.application.name,
        version: raw.application.version,
        description: raw.application.description,
        authors: raw.application.authors,
        trigger_settings,
        variables,
        triggers,
        components,
        manifest_path,
    })
}

struct Ctx<'a> {
    manifest: &'a Path,
}

#[derive(Clone, Copy)]
enum IdKind {
    Component,
    Variable,
}

impl Ctx<'_> {
    fn error(&self, field: &str, message: impl std::fmt::Display) -> anyhow::Error {
        bad_input!("{}: `{field}`: {message}", self.manifest.display())
    }

    fn check_id(&self, field: &str, id: &str, kind: IdKind) -> anyhow::Result<()> {
        let (valid, what) = match kind {
            IdKind::Component => (is_kebab_id(id), "a component id must be kebab-case (words of letters and digits, each starting with a letter and all lowercase or all UPPERCASE, joined by single hyphens)"),
            IdKind::Variable => (is_spin_id(id, '_', true), "a variable name must be snake_case (lowercase words of letters and digits, each starting with a letter, joined by single underscores)"),
        };
        if valid {
            Ok(())
        } else {
            Err(self.error(field, format!("invalid name `{id}`: {what}")))
        }
    }

    fn variables(
        &self,
        raw: IndexMap<String, RawVariable>,
    ) -> anyhow::Result<BTreeMap<String, Variable>> {
        let mut variables = BTreeMap::new();
        for (name, v) in raw {
            let field = format!("variables.{name}");
            self.check_id(&field, &name, IdKind::Variable)?;
            match (&v.default, v.required) {
                (Some(_), true) => {
                    return Err(
                        self.error(&field, "has both `default` and `required = true`; keep one")
                    )
                }
                (None, false) => {
                    return Err(self.error(&field, "needs a `default` or `required = true`"))
                }
                _ => {}
            }
            let variable = Variable {
                default: v.default,
                required: v.required,
                secret: v.secret,
                description: v.description,
            };
            variables.insert(name, variable);
        }
        Ok(variables)
    }

    fn component(&self, field: &str, id: String, raw: RawComponent) -> anyhow::Result<Component> {
        let dependencies = super::dependencies::parse(
            self.manifest,
            field,
            &id,
            raw.dependencies,
            raw.dependencies_inherit_configuration,
        )?;
        let source = self.source(&format!("{field}.source"), &id, raw.source)?;
        let files = raw
            .files
            .into_iter()
            .enumerate()
            .map(|(i, f)| self.file_mount(&format!("{field}.files[{i}]"), f))
            .collect::<anyhow::Result<_>>()?;
        for (i, pattern) in raw.exclude_files.iter().enumerate() {
            self.relative_path(&format!("{field}.exclude_files[{i}]"), pattern)?;
        }
        let build = raw
            .build
            .map(|b| self.build(&format!("{field}.build"), b))
            .transpose()?;
        // Spin appends the converted deprecated field, without v1's database grants
        // (spin v3.6.3 crates/manifest/src/schema/v2.rs:626).
        let http_hosts = outbound_hosts::from_http_hosts(&raw.allowed_http_hosts, false)
            .map_err(|m| self.error(&format!("{field}.allowed_http_hosts"), m))?;
        let mut allowed_outbound_hosts = raw.allowed_outbound_hosts;
        allowed_outbound_hosts.extend(http_hosts);
        Ok(Component {
            id,
            description: raw.description,
            source,
            files,
            exclude_files: raw.exclude_files,
            allowed_outbound_hosts,
            key_value_stores: raw.key_value_stores,
            sqlite_databases: raw.sqlite_databases,
            ai_models: raw.ai_models,
            environment: raw.environment,
            variables: raw.variables,
            build,
            dependencies,
        })
    }

    fn source(&self, field: &str, component: &str, raw: toml::Value) -> anyhow::Result<Source> {
        match raw {
            toml::Value::String(path) => Ok(Source::Local(self.relative_path(field, &path)?)),
            toml::Value::Table(table) if table.contains_key("url") => {
                let url = string_field(&table, "url").ok_or_else(|| self.error(&format!("{field}.url"), "must be a string"))?;
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(self.error(&format!("{field}.url"), format!("`{}` is not an http(s) URL", crate::redact::redact_url(url))));
                }
                let digest = string_field(&table, "digest")
                    .ok_or_else(|| self.error(&format!("{field}.digest"), "missing; a URL source must be pinned with `digest = \"sha256:…\"`"))?;
                let digest = digest.parse().map_err(|e| self.error(&format!("{field}.digest"), e))?;
                Ok(Source::Remote { url: url.to_string(), digest })
            }
            toml::Value::Table(table) if table.contains_key("registry") || table.contains_key("package") => Err(self.error(
                field,
                format!("component `{component}` comes from a registry package, which spin-aks does not support yet; use a local path or {{ url, digest }}"),
            )),
            other => Err(self.error(field, format!("expected a path or {{ url = \"…\", digest = \"sha256:…\" }}, found {other}"))),
        }
    }

    fn file_mount(&self, field: &str, raw: toml::Value) -> anyhow::Result<FileMount> {
        match raw {
            toml::Value::String(pattern) => {
                self.relative_path(field, &pattern)?;
                // spin v3.6.3 crates/loader/src/local.rs:344-349.
                let last = pattern.rsplit('/').next().unwrap_or_default();
                if matches!(last, "." | "..") {
                    return Err(self.error(field, format!("`{pattern}` ends in `{last}`; Spin refuses a file pattern naming a directory that way; use {{ source = \"<dir>\", destination = \"/…\" }} or a glob ending in `/**/*`")));
                }
                Ok(FileMount::Pattern(pattern))
            }
            toml::Value::Table(table) => {
                let source = string_field(&table, "source").ok_or_else(|| {
                    self.error(&format!("{field}.source"), "missing or not a string")
                })?;
                let destination = string_field(&table, "destination").ok_or_else(|| {
                    self.error(&format!("{field}.destination"), "missing or not a string")
                })?;
                // Spin places a relative destination under `/` as well (spin v3.6.3
                // crates/loader/src/local.rs:330).
                super::mounts::guest_dir(destination)
                    .map_err(|m| self.error(&format!("{field}.destination"), m))?;
                let source = self.relative_path(&format!("{field}.source"), source)?;
                Ok(FileMount::Placement {
                    source,
                    destination: destination.to_string(),
                })
            }
            other => Err(self.error(
                field,
                format!("expected a glob or {{ source, destination }}, found {other}"),
            )),
        }
    }

    fn build(&self, field: &str, raw: RawBuild) -> anyhow::Result<BuildConfig> {
        let command = match raw.command {
            RawCommand::One(c) => c,
            RawCommand::Many(cs) => cs.join(" && "),
        };
        let workdir = raw
            .workdir
            .map(|w| self.relative_path(&format!("{field}.workdir"), &w))
            .transpose()?;
        Ok(BuildConfig {
            command,
            workdir,
            watch: raw.watch,
        })
    }

    /// A path that must stay inside the app directory: relative, and never climbing above it.
    fn relative_path(&self, field: &str, path: &str) -> anyhow::Result<PathBuf> {
        let escape = || {
            self.error(field, format!("`{path}` is outside the app directory; paths must be relative to it and stay inside"))
        };
        let parsed = Path::new(path);
        let mut depth = 0i32;
        for part in parsed.components() {
            match part {
                PathPart::Normal(_) => depth += 1,
                PathPart::CurDir => {}
                PathPart::ParentDir => {
                    depth -= 1;
                    if depth < 0 {
                        return Err(escape());
                    }
                }
                PathPart::RootDir | PathPart::Prefix(_) => return Err(escape()),
            }
        }
        Ok(parsed.to_path_buf())
    }

    fn triggers(
        &self,
        raw: IndexMap<String, Vec<RawTrigger>>,
        components: &mut Vec<Component>,
    ) -> anyhow::Result<Vec<Trigger>> {
        let mut taken: HashSet<String> = raw
            .values()
            .flatten()
            .filter_map(|t| t.id.clone())
            .collect();
        let mut triggers = Vec::new();
        for (trigger_type, list) in raw {
            for (i, t) in list.into_iter().enumerate() {
                let field = format!("trigger.{trigger_type}[{i}]");
                if t.components.is_some() {
                    return Err(self.error(
                        &format!("{field}.components"),
                        "trigger middleware (`components`) is not supported yet; use `component`",
                    ));
                }
                let static_response = t.settings.contains_key("static_response");
                let component_value = match (t.component, trigger_type.as_str()) {
                    // spin v3.6.3 crates/http/src/config.rs:20: exactly one of the two.
                    (Some(_), "http") if static_response => {
                        return Err(self.error(
                            &field,
                            "has both `component` and `static_response`; Spin needs exactly one of them",
                        ))
                    }
                    (None, "http") if static_response => None,
                    (Some(value), _) => Some(value),
                    (None, _) => {
                        return Err(self.error(
                            &format!("{field}.component"),
                            "missing; name the component this trigger runs (an http trigger may answer with `static_response` instead)",
                        ))
                    }
                };
                let reference = component_value
                    .as_ref()
                    .and_then(toml::Value::as_str)
                    .map(str::to_string);
                let id = match t.id {
                    Some(id) => id,
                    None => new_trigger_id(&trigger_type, reference.as_deref(), &taken),
                };
                taken.insert(id.clone());
                let component = match (reference, component_value) {
                    (_, None) => None,
                    (Some(name), _) => {
                        if !components.iter().any(|c| c.id == name) {
                            return Err(self.error(
                                &format!("{field}.component"),
                                format!(
                                    "no component named `{name}`; declare it as [component.{name}]"
                                ),
                            ));
                        }
                        Some(name)
                    }
                    (None, Some(inline @ toml::Value::Table(_))) => {
                        let inline_field = format!("{field}.component");
                        let raw: RawComponent = deserialize(self.manifest, &inline_field, inline)?;
                        let inline_id = inline_component_id(&id, components);
                        let component = self.component(&inline_field, inline_id.clone(), raw)?;
                        components.push(component);
                        Some(inline_id)
                    }
                    (None, Some(other)) => {
                        return Err(self.error(
                            &format!("{field}.component"),
                            format!(
                                "expected a component id or an inline component, found {other}"
                            ),
                        ))
                    }
                };
                let settings = t
                    .settings
                    .iter()
                    .map(|(k, v)| (k.clone(), to_json(v)))
                    .collect();
                triggers.push(Trigger {
                    id,
                    trigger_type: trigger_type.clone(),
                    component,
                    settings,
                });
            }
        }
        Ok(triggers)
    }
}

/// The document without Spin 4's `profile` tables: the image runs the default build, and a
/// Spin 3 shim reading the embedded manifest refuses the unknown key.
fn without_profiles(mut document: toml::Table) -> toml::Table {
    if let Some(toml::Value::Table(components)) = document.get_mut("component") {
        for (_, component) in components.iter_mut() {
            let Some(component) = component.as_table_mut() else {
                continue;
            };
            component.remove("profile");
        }
    }
    document
}

fn string_field<'a>(table: &'a toml::Table, key: &str) -> Option<&'a str> {
    table.get(key).and_then(toml::Value::as_str)
}

/// Spin's rule: `<component>-<type>-trigger`, else the first free `<type>-trigger<n>`.
fn new_trigger_id(trigger_type: &str, component: Option<&str>, taken: &HashSet<String>) -> String {
    if let Some(component) = component {
        let id = format!("{component}-{trigger_type}-trigger");
        if !taken.contains(&id) {
            return id;
        }
    }
    (1..)
        .map(|n| format!("{trigger_type}-trigger{n}"))
        .find(|id| !taken.contains(id))
        .expect("unbounded")
}

fn inline_component_id(trigger_id: &str, components: &[Component]) -> String {
    let free = |id: &String| !components.iter().any(|c| &c.id == id);
    let preferred = format!("{trigger_id}-component");
    if is_kebab_id(&preferred) && free(&preferred) {
        return preferred;
    }
    (1..)
        .map(|n| format!("inline-component{n}"))
        .find(free)
        .expect("unbounded")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<App> {
        let document = parse_toml(Path::new("spin.toml"), text)?;
        from_v2(
            document,
            PathBuf::from("/app/spin.toml"),
            PathBuf::from("/app"),
        )
    }

    const APP: &str = "spin_manifest_version = 2\n[application]\nname = \"t\"\n";

    #[test]
    fn trigger_ids_follow_spins_naming_rules() {
        let app = parse(&format!(
            "{APP}[[trigger.http]]\nroute = \"/a\"\ncomponent = \"web\"\n[[trigger.http]]\nroute = \"/b\"\ncomponent = \"web\"\n\
             [[trigger.http]]\nid = \"http-trigger1\"\nroute = \"/c\"\ncomponent = \"web\"\n[component.web]\nsource = \"w.wasm\"\n"
        ))
        .unwrap();
        let ids: Vec<&str> = app.triggers.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["web-http-trigger", "http-trigger2", "http-trigger1"]);
    }

    #[test]
    fn inline_trigger_components_become_named_components() {
        let app = parse(&format!(
            "{APP}[[trigger.http]]\nroute = \"/\"\ncomponent = {{ source = \"i.wasm\" }}\n"
        ))
        .unwrap();
        assert_eq!(app.triggers[0].id, "http-trigger1");
        assert_eq!(
            app.triggers[0].component.as_deref(),
            Some("http-trigger1-component")
        );
        assert_eq!(
            app.components[0].source,
            Source::Local(PathBuf::from("i.wasm"))
        );
    }

    // spin v3.6.3 crates/manifest/src/normalize.rs:45-57: the natural id only when it is a
    // valid component id and free.
    #[test]
    fn inline_components_of_triggers_with_odd_ids_get_counter_ids() {
        let app = parse(&format!(
            "{APP}[[trigger.http]]\nid = \"Odd_Trigger\"\nroute = \"/\"\ncomponent = {{ source = \"i.wasm\" }}\n"
        ))
        .unwrap();
        assert_eq!(
            app.triggers[0].component.as_deref(),
            Some("inline-component1")
        );
    }

    // spin v3.6.3 crates/http/src/config.rs:20-25 and normalize.rs:74-104.
    #[test]
    fn static_response_triggers_have_no_component_and_a_counter_id() {
        let app = parse(&format!(
            "{APP}[[trigger.http]]\nroute = \"/a\"\nstatic_response = {{ body = \"x\" }}\n[[trigger.http]]\nroute = \"/b\"\ncomponent = \"w\"\n[component.w]\nsource = \"w.wasm\"\n"
        ))
        .unwrap();
        let triggers: Vec<_> = app
            .triggers
            .iter()
            .map(|t| (t.id.as_str(), t.component.as_deref()))
            .collect();
        assert_eq!(
            triggers,
            [("http-trigger1", None), ("w-http-trigger", Some("w"))]
        );
        let redis = parse(&format!(
            "{APP}[[trigger.redis]]\nchannel = \"c\"\nstatic_response = {{ body = \"x\" }}\n"
        ));
        assert!(redis
            .unwrap_err()
            .to_string()
            .contains("`trigger.redis[0].component`: missing"));
    }

    #[test]
    fn trigger_settings_are_kept_as_data_without_component_and_id() {
        let app = parse(&format!(
            "{APP}[[trigger.redis]]\nchannel = \"jobs\"\ncomponent = \"w\"\nexecutor = {{ type = \"x\" }}\n[component.w]\nsource = \"w.wasm\"\n"
        ))
        .unwrap();
        assert_eq!(
            serde_json::Value::Object(app.triggers[0].settings.clone()),
            serde_json::json!({"channel": "jobs", "executor": {"type": "x"}})
        );
    }

    #[test]
    fn components_keep_manifest_order() {
        let app = parse(&format!(
            "{APP}[component.zeta]\nsource = \"z.wasm\"\n[component.alpha]\nsource = \"a.wasm\"\n"
        ))
        .unwrap();
        let ids: Vec<&str> = app.components.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["zeta", "alpha"]);
    }

    #[test]
    fn variables_keep_required_secret_and_default() {
        let app = parse(&format!("{APP}[variables]\na = {{ default = \"x\" }}\nb = {{ required = true, secret = true }}\n")).unwrap();
        assert_eq!(app.variables["a"].default.as_deref(), Some("x"));
        assert!(app.variables["b"].required && app.variables["b"].secret);
    }

    #[test]
    fn ids_must_be_kebab_case_and_variable_names_snake_case() {
        let err = parse(&format!("{APP}[component.Bad_Id]\nsource = \"w.wasm\"\n")).unwrap_err();
        assert!(
            err.to_string().contains("`component.Bad_Id`: invalid name"),
            "{err}"
        );
        let err = parse(&format!(
            "{APP}[variables]\nBad-Name = {{ default = \"x\" }}\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("snake_case"), "{err}");
    }

    #[test]
    fn build_commands_and_watch_are_read() {
        let app = parse(&format!(
            "{APP}[component.w]\nsource = \"w.wasm\"\n[component.w.build]\ncommand = [\"a\", \"b\"]\nworkdir = \"sub\"\nwatch = [\"src/*.rs\"]\n"
        ))
        .unwrap();
        let build = app.components[0].build.as_ref().unwrap();
        assert_eq!(
            (build.command.as_str(), build.workdir.as_deref()),
            ("a && b", Some(Path::new("sub")))
        );
        assert_eq!(build.watch, ["src/*.rs"]);
    }

    #[test]
    fn file_destinations_stay_under_the_guest_root() {
        let files = |destination: &str| {
            parse(&format!("{APP}[component.w]\nsource = \"w.wasm\"\nfiles = [{{ source = \"a\", destination = \"{destination}\" }}]\n"))
        };
        for inside in ["rel", "/a/../b", "/"] {
            assert!(files(inside).is_ok(), "{inside}");
        }
        let err = files("/a/../../etc").unwrap_err();
        assert!(
            err.to_string().contains(
                "`component.w.files[0].destination`: destination `/a/../../etc` climbs above"
            ),
            "{err}"
        );
    }

    #[test]
    fn spin_4_profiles_are_read_but_not_embedded() {
        let app = parse(&format!(
            "{APP}[component.w]\nsource = \"w.wasm\"\n[component.w.profile.debug]\nsource = \"d.wasm\"\n"
        ))
        .unwrap();
        assert!(app.manifest["component"]["w"].get("profile").is_none());
        assert!(parse(&format!(
            "{APP}[component.w]\nsource = \"w.wasm\"\n[component.w.profile.debug]\nsorce = \"d.wasm\"\n"
        ))
        .is_err());
    }
}
