//! `[component.<id>.dependencies]` read as Spin reads them (names, sources, exports, inheritance,
//! its validation rules), and the checks that need the whole app (`{ component = "…" }`).

use std::cmp::Ordering;
use std::path::Path;

use super::model::{App, Component, Dependency, DependencySource, Inherit};
use crate::bad_input;

/// Reads a component's dependency table. `field` is the component's manifest path
/// (`component.api`), `inherit_all` its `dependencies_inherit_configuration`.
pub fn parse(
    manifest: &Path,
    field: &str,
    component: &str,
    table: Option<toml::Table>,
    inherit_all: Option<bool>,
) -> anyhow::Result<Vec<Dependency>> {
    let error = |key: &str, message: String| {
        let at = if key.is_empty() {
            format!("{field}.dependencies")
        } else {
            format!("{field}.dependencies.\"{key}\"")
        };
        bad_input!("{}: `{at}`: {message}", manifest.display())
    };
    let mut parsed: Vec<(Name, Dependency, bool)> = Vec::new();
    for (key, value) in table.unwrap_or_default() {
        let name = Name::parse(&key).map_err(|m| error(&key, m))?;
        let (dependency, own_inherit) =
            dependency(component, &name, value).map_err(|m| error(&key, m))?;
        parsed.push((name, dependency, own_inherit));
    }
    // crates/manifest/src/normalize.rs:165@v4.0.2: the component-level switch and per-dependency
    // `inherit_configuration` exclude each other (even `false`); `true` gives every one All.
    if let Some(all) = inherit_all {
        if let Some((name, _, _)) = parsed.iter().find(|(_, _, own)| *own) {
            return Err(error(
                &name.display,
                format!("sets `inherit_configuration` while component `{component}` sets `dependencies_inherit_configuration`; Spin takes one or the other, so remove one"),
            ));
        }
        if all {
            for (_, dependency, _) in &mut parsed {
                dependency.inherit = Inherit::All;
            }
        }
    }
    check_disjoint(&parsed.iter().map(|(n, _, _)| n).collect::<Vec<_>>())
        .map_err(|m| error("", m))?;
    // Spin's locked app keeps dependencies in a map ordered by DependencyName's Ord.
    parsed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(parsed.into_iter().map(|(_, d, _)| d).collect())
}

/// A dependency name (crates/serde/src/dependencies.rs@v3.6.3): a plain kebab-case name, or
/// `ns:pkg[/interface][@version]`.
#[derive(Debug)]
struct Name {
    display: String,
    package: Option<PackageName>,
}

#[derive(Debug)]
struct PackageName {
    namespace: String,
    name: String,
    interface: Option<String>,
    version: Option<semver::Version>,
}

impl Name {
    fn parse(text: &str) -> Result<Name, String> {
        if !text.contains([':', '/']) {
            kebab(text).map_err(|m| format!("invalid dependency name: {m}"))?;
            return Ok(Name {
                display: text.to_string(),
                package: None,
            });
        }
        let invalid = |m: String| {
            format!("invalid dependency name `{text}`: {m}; write `namespace:package[/interface][@version]`")
        };
        let (name, version) = match text.split_once('@') {
            Some((name, version)) => {
                let version = semver::Version::parse(version)
                    .map_err(|e| invalid(format!("version `{version}`: {e}")))?;
                (name, Some(version))
            }
            None => (text, None),
        };
        let (package, interface) = match name.split_once('/') {
            Some((package, interface)) => (package, Some(interface)),
            None => (name, None),
        };
        let (namespace, package_name) = package
            .split_once(':')
            .ok_or_else(|| invalid(format!("`{package}` has no `:`")))?;
        for part in [namespace, package_name].into_iter().chain(interface) {
            kebab(part).map_err(invalid)?;
        }
        let package = PackageName {
            namespace: namespace.to_string(),
            name: package_name.to_string(),
            interface: interface.map(str::to_string),
            version,
        };
        let mut display = format!("{}:{}", package.namespace, package.name);
        if let Some(interface) = &package.interface {
            display.push_str(&format!("/{interface}"));
        }
        if let Some(version) = &package.version {
            display.push_str(&format!("@{version}"));
        }
        Ok(Name {
            display,
            package: Some(package),
        })
    }

    /// crates/serde/src/dependencies.rs:100@v3.6.3: plain names first, then packages by
    /// (namespace, name, interface, version).
    fn cmp(&self, other: &Name) -> Ordering {
        match (&self.package, &other.package) {
            (None, None) => self.display.cmp(&other.display),
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(a), Some(b)) => (&a.namespace, &a.name, &a.interface, &a.version).cmp(&(
                &b.namespace,
                &b.name,
                &b.interface,
                &b.version,
            )),
        }
    }
}

/// Whether the dependency `name` (as parsed by [`parse`]) satisfies the component import `import`,
/// by Spin's composer rules (crates/compose/src/lib.rs:526-573@v4.0.2): a plain name only the
/// plain import of that name; `ns:pkg` every interface of the package, `/iface` only that
/// interface, `@version` only imports of exactly that version. Imports of other shapes match none.
pub fn matches_import(name: &str, import: &str) -> bool {
    let Ok(name) = Name::parse(name) else {
        return false;
    };
    let Some(package) = name.package else {
        return !import.contains([':', '/']) && name.display == import;
    };
    let Some((import_package, rest)) = import.split_once('/') else {
        return false;
    };
    let (interface, version) = match rest.split_once('@') {
        Some((interface, version)) => match semver::Version::parse(version) {
            Ok(version) => (interface, Some(version)),
            Err(_) => return false,
        },
        None => (rest, None),
    };
    import_package == format!("{}:{}", package.namespace, package.name)
        && package.interface.as_deref().is_none_or(|i| i == interface)
        && package.version.is_none_or(|v| Some(v) == version)
}

/// Spin's `KebabId` (crates/serde/src/id.rs@v3.6.3): `-`-separated words, each starting with an
/// ASCII letter, alphanumeric, all lowercase or all uppercase.
fn kebab(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("a name part is empty".into());
    }
    for word in text.split('-') {
        let mut chars = word.chars();
        let Some(first) = chars.next() else {
            return Err(format!("`{text}` has an empty `-`-separated word"));
        };
        if !first.is_ascii_alphabetic() {
            return Err(format!("`{text}`: words must start with an ASCII letter"));
        }
        let upper = first.is_ascii_uppercase();
        let valid = chars.all(|c| {
            c.is_ascii_digit() || (c.is_ascii_alphanumeric() && c.is_ascii_uppercase() == upper)
        });
        if !valid {
            return Err(format!(
                "`{text}`: words must be ASCII letters and digits, all lowercase or all uppercase"
            ));
        }
    }
    Ok(())
}

/// One dependency value (crates/manifest/src/schema/v2.rs:226 `ComponentDependency`@v4.0.2) and
/// whether it set its own `inherit_configuration`.
fn dependency(
    component: &str,
    name: &Name,
    value: toml::Value,
) -> Result<(Dependency, bool), String> {
    let registry = |version: &str, registry: Option<&str>| {
        let from = registry.map_or("the default registry".to_string(), |r| {
            format!("registry `{r}`")
        });
        format!(
            "component `{component}` takes dependency `{}` (version `{version}`) from {from}, which spin-aks cannot fetch offline; download the component (e.g. `wkg get`) and use `{{ path = \"…\" }}`, or pin it with `{{ url = \"…\", digest = \"sha256:…\" }}`",
            name.display
        )
    };
    let mut table = match value {
        toml::Value::String(version) => return Err(registry(&version, None)),
        toml::Value::Table(table) => table,
        other => {
            return Err(format!(
                "expected a version or a table ({{ path }}, {{ url, digest }}, {{ component }}), found {other}"
            ))
        }
    };
    let mut take = |key: &str| table.remove(key);
    let string = |key: &str, value: Option<toml::Value>| -> Result<Option<String>, String> {
        match value {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!("`{key}` must be a string, found {other}")),
        }
    };
    let export = string("export", take("export"))?;
    let own_inherit = take("inherit_configuration");
    let inherit = match &own_inherit {
        None | Some(toml::Value::Boolean(false)) => Inherit::Nothing,
        Some(toml::Value::Boolean(true)) => Inherit::All,
        Some(toml::Value::Array(keys)) => Inherit::Only(
            keys.iter()
                .map(|k| k.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or("`inherit_configuration` must be true, false or a list of strings")?,
        ),
        Some(other) => {
            return Err(format!(
                "`inherit_configuration` must be true, false or a list of strings, found {other}"
            ))
        }
    };
    let version = string("version", take("version"))?;
    let path = string("path", take("path"))?;
    let url = string("url", take("url"))?;
    let digest = string("digest", take("digest"))?;
    let app_component = string("component", take("component"))?;
    let registry_name = string("registry", take("registry"))?;
    let package = string("package", take("package"))?;
    if let Some(version) = version {
        return Err(registry(&version, registry_name.as_deref()));
    }
    let has_digest = digest.is_some();
    if let Some(unknown) = table.keys().next() {
        return Err(format!("unknown field `{unknown}`"));
    }
    let source = match (path, url, app_component) {
        (Some(path), None, None) => DependencySource::Local(path.into()),
        (None, Some(url), None) => {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!(
                    "`url`: `{}` is not an http(s) URL",
                    crate::redact::redact_url(&url)
                ));
            }
            let digest = digest.ok_or(
                "`digest` is missing; a URL dependency must be pinned with `digest = \"sha256:…\"`",
            )?;
            let digest = digest.parse().map_err(|e| format!("`digest`: {e}"))?;
            DependencySource::Remote { url, digest }
        }
        (None, None, Some(id)) => {
            kebab(&id).map_err(|m| format!("`component`: {m}"))?;
            DependencySource::Component(id)
        }
        _ => {
            return Err(
                "needs exactly one of `path`, `url` (with `digest`), `component` or `version`"
                    .into(),
            )
        }
    };
    let stray = [
        (
            "digest",
            has_digest && !matches!(source, DependencySource::Remote { .. }),
        ),
        ("registry", registry_name.is_some()),
        ("package", package.is_some()),
    ];
    if let Some((key, _)) = stray.iter().find(|(_, set)| *set) {
        return Err(format!("unknown field `{key}` for this kind of dependency"));
    }
    // v2.rs:646 (ensure_package_names_no_export)@v4.0.2: a whole-package name cannot pick an
    // export of a local dependency.
    if let (Some(package), Some(_), DependencySource::Local(_)) = (&name.package, &export, &source)
    {
        if package.interface.is_none() {
            return Err(format!(
                "using an export to satisfy the package dependency `{}` is not permitted; name an interface (`{}/<interface>`) or drop `export`",
                name.display, name.display
            ));
        }
    }
    let dependency = Dependency {
        name: name.display.clone(),
        source,
        export,
        inherit,
    };
    Ok((dependency, own_inherit.is_some()))
}

/// v2.rs:668 (ensure_disjoint)@v4.0.2: two names of one package must differ in a
/// semver-compatible version or in the interface.
fn check_disjoint(names: &[&Name]) -> Result<(), String> {
    for (i, this) in names.iter().enumerate() {
        for other in &names[i + 1..] {
            let (Some(a), Some(b)) = (&this.package, &other.package) else {
                continue;
            };
            if (&a.namespace, &a.name) != (&b.namespace, &b.name) {
                continue;
            }
            let versions_differ = matches!((&a.version, &b.version), (Some(x), Some(y)) if compatible(x) != compatible(y));
            let interfaces_differ =
                matches!((&a.interface, &b.interface), (Some(x), Some(y)) if x != y);
            if !versions_differ && !interfaces_differ {
                return Err(format!(
                    "`{}` conflicts with `{}`: both can satisfy the same import; keep one",
                    this.display, other.display
                ));
            }
        }
    }
    Ok(())
}

/// The part of a version that decides semver compatibility (v2.rs:712@v4.0.2).
fn compatible(version: &semver::Version) -> semver::Version {
    let mut v = version.clone();
    v.build = semver::BuildMetadata::EMPTY;
    if !v.pre.is_empty() {
        return v;
    }
    if v.major > 0 {
        (v.minor, v.patch) = (0, 0);
    } else if v.minor > 0 {
        v.patch = 0;
    }
    v
}

/// The component a `{ component = "…" }` dependency names, checked as Spin's normalizer checks it
/// (crates/manifest/src/normalize.rs:185-316@v4.0.2): it must exist and carry no resources or
/// permissions of its own, since composition drops them.
pub fn app_component<'a>(
    app: &'a App,
    component: &str,
    dependency: &str,
    id: &str,
) -> anyhow::Result<&'a Component> {
    let field = format!("component.{component}.dependencies.\"{dependency}\".component");
    let fail = |m: String| bad_input!("{}: `{field}`: {m}", app.manifest_path.display());
    let target = app.component(id).ok_or_else(|| {
        fail(format!(
            "no component named `{id}`; declare it as [component.{id}]"
        ))
    })?;
    let surprises: Vec<&str> = [
        ("ai_models", !target.ai_models.is_empty()),
        (
            "allowed_outbound_hosts",
            !target.allowed_outbound_hosts.is_empty(),
        ),
        ("dependencies", !target.dependencies.is_empty()),
        ("environment", !target.environment.is_empty()),
        ("files", !target.files.is_empty()),
        ("key_value_stores", !target.key_value_stores.is_empty()),
        ("sqlite_databases", !target.sqlite_databases.is_empty()),
        ("variables", !target.variables.is_empty()),
    ]
    .into_iter()
    .filter_map(|(key, set)| set.then_some(key))
    .collect();
    if !surprises.is_empty() {
        return Err(fail(format!(
            "component `{id}` cannot be a dependency of `{component}` because it specifies {}; dependencies may not have their own resources or permissions",
            surprises.join(", ")
        )));
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_deps(text: &str, inherit_all: Option<bool>) -> anyhow::Result<Vec<Dependency>> {
        let table: toml::Table = text.parse().unwrap();
        parse(
            Path::new("spin.toml"),
            "component.api",
            "api",
            Some(table),
            inherit_all,
        )
    }

    fn names(deps: &[Dependency]) -> Vec<&str> {
        deps.iter().map(|d| d.name.as_str()).collect()
    }

    #[test]
    fn dependencies_are_ordered_as_spins_dependency_name_ord() {
        // crates/serde/src/dependencies.rs:100-122@v3.6.3: plain before package; packages by
        // namespace, name, interface (none first), version (semver order, none first).
        let deps = parse_deps(
            r#"
            "b:pkg/zed" = { path = "z.wasm" }
            "b:pkg@1.10.0" = { path = "c.wasm" }
            "a:pkg/x@0.2.0" = { path = "a.wasm" }
            "b:pkg/alpha@2.0.0" = { path = "b.wasm" }
            plain-name = { path = "p.wasm" }
            "b:pkg@1.9.0" = { path = "d.wasm" }
            "#,
            None,
        )
        .unwrap_err();
        // b:pkg@1.10.0 and b:pkg@1.9.0 are semver-compatible: Spin refuses them (v2.rs:668@v4.0.2).
        assert!(deps.to_string().contains("conflicts"), "{deps}");
        let deps = parse_deps(
            r#"
            "b:pkg/zed" = { path = "z.wasm" }
            "b:pkg@2.0.0" = { path = "c.wasm" }
            "a:pkg/x@0.2.0" = { path = "a.wasm" }
            "b:pkg/alpha" = { path = "b.wasm" }
            plain-name = { path = "p.wasm" }
            "b:pkg@1.9.0" = { path = "d.wasm" }
            "#,
            None,
        );
        // b:pkg/alpha and b:pkg/zed have no version, so they conflict with the versioned names.
        assert!(deps.is_err());
        let deps = parse_deps(
            r#"
            "b:pkg/zed@1.0.0" = { path = "z.wasm" }
            "b:pkg/alpha@2.0.0" = { path = "b.wasm" }
            "a:pkg/x@0.2.0" = { path = "a.wasm" }
            plain-name = { path = "p.wasm" }
            "b:pkg/alpha@1.0.0" = { path = "d.wasm" }
            "#,
            None,
        )
        .unwrap();
        assert_eq!(
            names(&deps),
            [
                "plain-name",
                "a:pkg/x@0.2.0",
                "b:pkg/alpha@1.0.0",
                "b:pkg/alpha@2.0.0",
                "b:pkg/zed@1.0.0"
            ]
        );
    }

    #[test]
    fn sources_exports_and_inheritance_are_read() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let deps = parse_deps(
            &format!(
                r#"
            "my:dep/one" = {{ path = "../libs/one.wasm", export = "their:impl/one" }}
            "my:dep/two" = {{ url = "http://127.0.0.1/two.wasm", digest = "{digest}", inherit_configuration = ["ai_models"] }}
            "my:dep/three" = {{ component = "helper", inherit_configuration = true }}
            "#
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            deps[0],
            Dependency {
                name: "my:dep/one".into(),
                source: DependencySource::Local("../libs/one.wasm".into()),
                export: Some("their:impl/one".into()),
                inherit: Inherit::Nothing,
            }
        );
        assert_eq!(deps[1].source, DependencySource::Component("helper".into()));
        assert_eq!(deps[1].inherit, Inherit::All);
        assert!(matches!(deps[2].source, DependencySource::Remote { .. }));
        assert_eq!(deps[2].inherit, Inherit::Only(vec!["ai_models".into()]));
    }

    #[test]
    fn dependencies_inherit_configuration_applies_to_all_and_excludes_per_dependency() {
        let all = parse_deps(r#""a:b/c" = { path = "x.wasm" }"#, Some(true)).unwrap();
        assert_eq!(all[0].inherit, Inherit::All);
        let none = parse_deps(r#""a:b/c" = { path = "x.wasm" }"#, Some(false)).unwrap();
        assert_eq!(none[0].inherit, Inherit::Nothing);
        // normalize.rs:165@v4.0.2: both given (even `false`) is an error.
        let both = parse_deps(
            r#""a:b/c" = { path = "x.wasm", inherit_configuration = false }"#,
            Some(false),
        )
        .unwrap_err();
        assert!(
            both.to_string()
                .contains("dependencies_inherit_configuration"),
            "{both}"
        );
    }

    #[test]
    fn bad_dependencies_are_refused_naming_the_field() {
        let cases = [
            // A registry version, bare or as a table: cannot be fetched offline.
            (r#""a:b/c" = "^1.0""#, "cannot fetch offline"),
            (
                r#""a:b/c" = { version = "1.0.0", registry = "ghcr.io" }"#,
                "registry `ghcr.io`",
            ),
            // crates/loader/src/local.rs:718@v3.6.3: a url needs its digest.
            (
                r#""a:b/c" = { url = "https://x/y.wasm" }"#,
                "`digest` is missing",
            ),
            (
                r#""a:b/c" = { url = "file:///y.wasm", digest = "sha256:00" }"#,
                "not an http(s) URL",
            ),
            (
                r#""a:b/c" = { path = "x.wasm", url = "https://x" }"#,
                "exactly one of",
            ),
            (
                r#""a:b/c" = { path = "x.wasm", colour = "red" }"#,
                "unknown field `colour`",
            ),
            (
                r#""a:b/c" = { path = "x.wasm", digest = "sha256:00" }"#,
                "unknown field `digest`",
            ),
            // v2.rs:646@v4.0.2: no export for a whole-package name.
            (
                r#""a:b" = { path = "x.wasm", export = "e" }"#,
                "not permitted",
            ),
            (
                r#""A_b:c" = { path = "x.wasm" }"#,
                "invalid dependency name",
            ),
            (r#""a:b@one" = { path = "x.wasm" }"#, "version `one`"),
            (
                r#"bad_name = { path = "x.wasm" }"#,
                "invalid dependency name",
            ),
        ];
        for (text, expected) in cases {
            let err = parse_deps(text, None).unwrap_err().to_string();
            assert!(
                err.contains("spin.toml: `component.api.dependencies") && err.contains(expected),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn dependency_names_match_imports_as_spins_composer_matches_them() {
        // crates/compose/src/lib.rs:526-573@v4.0.2: package names match all their interfaces,
        // an interface only itself, a version only that exact version, plain names themselves.
        let cases = [
            ("acme:shop/cart@1.2.0", "acme:shop/cart@1.2.0", true),
            ("acme:shop/cart@1.2.0", "acme:shop/cart@1.2.1", false),
            ("acme:shop/cart@1.2.0", "acme:shop/cart", false),
            ("acme:shop/cart", "acme:shop/cart@2.0.0", true),
            ("acme:shop/cart", "acme:shop/cart", true),
            ("acme:shop/cart", "acme:shop/carts", false),
            ("acme:shop", "acme:shop/cart", true),
            ("acme:shop", "acme:shop/till@0.1.0", true),
            ("acme:shop", "acme:shopping/cart", false),
            ("acme:shop@0.1.0", "acme:shop/till@0.1.0", true),
            ("acme:shop@0.1.0", "acme:shop/till", false),
            ("acme:shop/cart", "cart", false),
            ("price-list", "price-list", true),
            ("price-list", "acme:shop/price-list", false),
            ("price-list", "price", false),
        ];
        for (name, import, expected) in cases {
            assert_eq!(matches_import(name, import), expected, "{name} vs {import}");
        }
    }
}
