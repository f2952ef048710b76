//! AKS / SpinKube compatibility: docs/compatibility.md's shim → Spin → interfaces table as data, and the
//! questions asked of it (which shim first runs an import or a trigger, what a target lacks).

use std::collections::BTreeSet;
use std::fmt;

use super::model::{App, Component, Inherit};
use crate::oci::ImageFormat;

/// Triggers containerd-shim-spin can run (docs/compatibility.md); anything else cannot be deployed.
pub const SUPPORTED_TRIGGERS: &[&str] = &["http", "redis", "sqs", "mqtt", "command"];

/// The shim assumed when none is named: the current release (v0.25.1, 2026-06; its minor's row
/// below carries the Spin version established for v0.25.0).
pub const DEFAULT_TARGET_SHIM: &str = "v0.25.1";

/// One containerd-shim-spin release and what it added over the previous ones.
#[derive(Debug, PartialEq, Eq)]
pub struct ShimRelease {
    pub shim: &'static str,
    /// The Spin it embeds, as the release notes name it.
    pub spin: &'static str,
    /// Interfaces (and worlds) first runnable on this release: `ns:pkg/name@version`, where `*`
    /// stands for any run of characters (`wasi:*@0.2.0`).
    pub adds_interfaces: &'static [&'static str],
    /// Triggers first runnable on this release.
    pub adds_triggers: &'static [&'static str],
    /// From this release on (Wasmtime ≥ 19) an import `…@x.y.z` also links against a newer
    /// `…@x.y.w` the host has; prerelease versions must still match exactly.
    pub semver_imports: bool,
}

impl fmt::Display for ShimRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "containerd-shim-spin {} (Spin {})", self.shim, self.spin)
    }
}

const fn release(
    shim: &'static str,
    spin: &'static str,
    adds_interfaces: &'static [&'static str],
    adds_triggers: &'static [&'static str],
    semver_imports: bool,
) -> ShimRelease {
    ShimRelease {
        shim,
        spin,
        adds_interfaces,
        adds_triggers,
        semver_imports,
    }
}

/// docs/compatibility.md's table, oldest first.
pub static SHIM_RELEASES: &[ShimRelease] = &[
    release(
        "v0.13.0",
        "2.3.1",
        &["fermyon:spin/*@2.0.0", "wasi:*@0.2.0"],
        &["http", "redis", "sqs"],
        false,
    ),
    release(
        "v0.14.0",
        "2.4",
        &["fermyon:spin/mqtt@2.0.0"],
        &["command"],
        false,
    ),
    release("v0.15.0", "2.6.0", &[], &[], true),
    release("v0.16.0", "2.6.0", &[], &["mqtt"], true),
    release(
        "v0.17.0",
        "3.0.0",
        &[
            "spin:postgres/postgres@3.0.0",
            "wasi:keyvalue/*@0.2.0-draft2",
            "wasi:config/store@0.2.0-draft-2024-09-27",
            "wasi:http/*@0.2.1",
        ],
        &[],
        true,
    ),
    release(
        "v0.18.0",
        "3.1.2",
        &["wasi:http/incoming-handler@0.2.*"],
        &[],
        true,
    ),
    release("v0.19.0", "3.2.0", &[], &[], true),
    release("v0.20.0", "3.3.1", &["spin:sqlite/sqlite@3.0.0"], &[], true),
    release(
        "v0.21.0",
        "3.4.0",
        &["spin:postgres/postgres@4.0.0"],
        &[],
        true,
    ),
    release("v0.22.0", "3.5.0", &[], &[], true),
    release(
        "v0.23.0",
        "3.6.2",
        &["wasi:*@0.2.3", "wasi:*@0.2.6"],
        &[],
        true,
    ),
    release("v0.24.0", "3.6.3", &[], &[], true),
    // v0.25.0's Cargo.lock pins the spin-* crates at tag v4.0.1; Spin v4.0.0's wit/world.wit adds
    // these imports to `platform` (and `spin:redis/inbound-redis@3.0.0` as the redis export; its
    // wit/deps also carry spin:postgres@4.1.0), makes WASIp3 rc-2026-03-15 stable and drops
    // rc-2026-01-06. v4.0.1 → v4.0.2 changes no WIT.
    release(
        "v0.25.0",
        "4.0.1",
        &[
            "spin:key-value/key-value@3.0.0",
            "spin:mqtt/mqtt@3.0.0",
            "spin:mysql/mysql@3.0.0",
            "spin:postgres/postgres@4.1.0",
            "spin:postgres/postgres@4.2.0",
            "spin:redis/*@3.0.0",
            "spin:sqlite/sqlite@3.1.0",
            "spin:variables/variables@3.0.0",
            "wasi:*@0.3.0-rc-2026-03-15",
        ],
        &[],
        true,
    ),
];

/// What an app or its locked form can use that only newer shims run, with the first release
/// that does (from the Spin sources of each release; `needs_shim` words the refusal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// Calling another component by `*.spin.internal` (Spin 2.4 added local service chaining and
    /// the `local_service_chaining` host requirement; Spin 2.3's lock reader takes version 0 only).
    ServiceChaining,
    /// Host requirements on components, `must_understand: ["component_host_requirements"]`
    /// (Spin 3.3, crates/locked-app/src/locked.rs `MustUnderstand::ComponentHostRequirements`).
    ComponentHostRequirements,
    /// `[component.x.dependencies]` in the locked app (Spin 3.0; Spin 2 ignores them).
    ComponentDependencies,
    /// A dependency inheriting only named capabilities, `inherit_configuration = ["…"]`: Spin 3's
    /// composer panics on it (crates/compose/src/lib.rs:415@v3.6.3), Spin 4 applies it.
    SelectiveInheritance,
    /// Spin 4 manifest syntax: `[component.x.profile.<name>]` and per-dependency
    /// `inherit_configuration` (crates/manifest/src/schema/v2.rs@v4.0.2). Build-time only: what
    /// they select is resolved into the locked app, which older shims read.
    Spin4Manifest,
}

impl Feature {
    /// The first release that runs this feature.
    pub fn first_shim(self) -> &'static ShimRelease {
        let shim = match self {
            Feature::ServiceChaining => "v0.14.0",
            Feature::ComponentHostRequirements => "v0.20.0",
            Feature::ComponentDependencies => "v0.17.0",
            Feature::SelectiveInheritance | Feature::Spin4Manifest => "v0.25.0",
        };
        SHIM_RELEASES
            .iter()
            .find(|r| r.shim == shim)
            .expect("features name releases of the table")
    }

    /// Whether `target` runs this feature.
    pub fn runs_on(self, target: &ShimRelease) -> bool {
        index(self.first_shim()) <= index(target)
    }
}

/// `None` when `target` runs `feature`; else why not, for a message about `what` (e.g.
/// "component `api` calls other components by *.spin.internal").
pub fn needs_shim(feature: Feature, what: &str, target: &ShimRelease) -> Option<String> {
    (!feature.runs_on(target)).then(|| {
        format!(
            "{what}, which needs {} or later; the target is {target} (choose a newer one with --shim-version)",
            feature.first_shim()
        )
    })
}

/// Namespaces whose interfaces only the host can provide; imports elsewhere are not judged.
const HOST_NAMESPACES: &[&str] = &["wasi:", "fermyon:", "spin:"];

/// The release named by `version` (`v0.17.0`, `0.17.1`, `v0.17`: any patch of a known minor).
pub fn target_shim(version: &str) -> anyhow::Result<&'static ShimRelease> {
    let minor = |v: &str| {
        let mut parts = v.trim_start_matches('v').split('.');
        Some((parts.next()?.to_string(), parts.next()?.to_string()))
    };
    let wanted = minor(version).filter(|_| {
        let rest = version.trim_start_matches('v');
        rest.split('.').count() <= 3 && rest.split('.').all(|p| p.parse::<u32>().is_ok())
    });
    wanted
        .and_then(|w| SHIM_RELEASES.iter().find(|r| minor(r.shim) == Some(w.clone())))
        .ok_or_else(|| {
            let known: Vec<&str> = SHIM_RELEASES.iter().map(|r| r.shim).collect();
            crate::bad_input!(
                "--shim-version `{version}` is not a known containerd-shim-spin release; use one of {}",
                known.join(", ")
            )
        })
}

fn index(release: &ShimRelease) -> usize {
    SHIM_RELEASES
        .iter()
        .position(|r| std::ptr::eq(r, release))
        .expect("releases come from the table")
}

/// The first release that runs `import` (`ns:pkg/name@version`); `None` when no known release
/// does. Exact table entries win over wildcards; from `semver_imports` on, a release also runs an
/// import whose newer patch (same `x.y`, no prerelease) it has.
pub fn min_shim_for_import(import: &str) -> Option<&'static ShimRelease> {
    let exact = SHIM_RELEASES.iter().find(|r| {
        r.adds_interfaces
            .iter()
            .any(|p| !p.contains('*') && *p == import)
    });
    exact.or_else(|| {
        SHIM_RELEASES.iter().enumerate().find_map(|(i, r)| {
            let provided = SHIM_RELEASES[..=i].iter().flat_map(|o| o.adds_interfaces);
            let runs = provided.clone().any(|p| glob_match(p, import))
                || (r.semver_imports && provided.into_iter().any(|p| semver_newer(p, import)));
            runs.then_some(r)
        })
    })
}

/// Of `imports`, those `target` cannot run, each with the first release that can (if any).
/// Imports outside the host namespaces (`wasi:`, `fermyon:`, `spin:`) are not judged.
pub fn missing_imports<'a>(
    target: &ShimRelease,
    imports: impl IntoIterator<Item = &'a str>,
) -> Vec<(&'a str, Option<&'static ShimRelease>)> {
    imports
        .into_iter()
        .filter(|i| HOST_NAMESPACES.iter().any(|ns| i.starts_with(ns)))
        .filter_map(|i| {
            let first = min_shim_for_import(i);
            match first {
                Some(first) if index(first) <= index(target) => None,
                _ => Some((i, first)),
            }
        })
        .collect()
}

/// The oldest release that runs every host import of `imports`, or `None` if none does.
pub fn min_shim_for_imports<'a>(
    imports: impl IntoIterator<Item = &'a str>,
) -> Option<&'static ShimRelease> {
    let oldest = &SHIM_RELEASES[0];
    let mut needed = oldest;
    for (_, first) in missing_imports(oldest, imports) {
        needed = first.filter(|f| index(f) > index(needed)).unwrap_or(needed);
        first?;
    }
    Some(needed)
}

/// The first release that runs `trigger_type`, if any.
pub fn min_shim_for_trigger(trigger_type: &str) -> Option<&'static ShimRelease> {
    SHIM_RELEASES
        .iter()
        .find(|r| r.adds_triggers.contains(&trigger_type))
}

/// `*` matches any run of characters; everything else literally.
fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => text.strip_prefix(head).is_some_and(|rest| {
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob_match(tail, &rest[i..]))
        }),
    }
}

/// Whether `pattern`'s concrete version is a newer patch of `import`'s on the same name:
/// `wasi:*@0.2.3` serves `wasi:cli/env@0.2.2` by semver matching.
fn semver_newer(pattern: &str, import: &str) -> bool {
    let (Some((p_name, p_ver)), Some((i_name, i_ver))) =
        (pattern.rsplit_once('@'), import.rsplit_once('@'))
    else {
        return false;
    };
    let plain = |v: &str| -> Option<(u64, u64, u64)> {
        let mut parts = v.split('.').map(|p| p.parse::<u64>().ok());
        let version = (parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(version)
    };
    let (Some(p), Some(i)) = (plain(p_ver), plain(i_ver)) else {
        return false;
    };
    glob_match(p_name, i_name) && (p.0, p.1) == (i.0, i.1) && p.2 >= i.2
}

/// Errors (undeployable) and warnings (deployable with caveats) for `app`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Checks the manifest-level facts: triggers, AI models, and the plain image's limits.
pub fn check(app: &App, format: ImageFormat) -> Findings {
    let mut findings = Findings::default();
    for trigger in &app.triggers {
        if !SUPPORTED_TRIGGERS.contains(&trigger.trigger_type.as_str()) {
            findings.errors.push(format!(
                "trigger `{}` (component `{}`) has type `{}`, which containerd-shim-spin cannot run on AKS; supported: {}",
                trigger.id,
                trigger.component.as_deref().unwrap_or("none"),
                trigger.trigger_type,
                SUPPORTED_TRIGGERS.join(", ")
            ));
        }
    }
    for component in app.components.iter().filter(|c| !c.ai_models.is_empty()) {
        findings.warnings.push(format!(
            "component `{}` uses AI models ({}); SpinKube runs them only with `llmCompute` runtime config pointing at an inferencing service",
            component.id,
            component.ai_models.join(", ")
        ));
    }
    if format == ImageFormat::Image {
        let reshaped: Vec<&str> = app
            .components
            .iter()
            .filter(|c| !c.files.is_empty() || !c.exclude_files.is_empty())
            .map(|c| c.id.as_str())
            .collect();
        if !reshaped.is_empty() {
            findings.warnings.push(format!(
                "plain image: the shim's plain mode rejects `exclude_files` and mounts only directories, so the image's spin.toml mounts one prepared directory per component ({})",
                reshaped.join(", ")
            ));
        }
    }
    findings
}

/// What `target` cannot run among the locked-app features `app` uses (errors: the shim would
/// refuse the app or fail at start). The Spin format composes dependencies at build time, so
/// only the plain image, whose spin.toml the shim's Spin composes at start, needs them run.
pub fn target_findings(app: &App, format: ImageFormat, target: &ShimRelease) -> Findings {
    let mut findings = Findings::default();
    for component in &app.components {
        let id = &component.id;
        let mut need = |feature: Feature, what: String| {
            findings.errors.extend(needs_shim(feature, &what, target));
        };
        if super::chaining::requires_service_chaining(component) {
            need(
                Feature::ServiceChaining,
                format!("component `{id}` calls other components by *.spin.internal"),
            );
        }
        if format == ImageFormat::Image {
            dependency_needs(component, &mut need);
        }
    }
    findings
}

/// What the plain image's dependencies of `component` need of the shim's Spin, which composes
/// them at start from the image's spin.toml.
fn dependency_needs(component: &Component, need: &mut impl FnMut(Feature, String)) {
    let id = &component.id;
    if !component.dependencies.is_empty() {
        need(
            Feature::ComponentDependencies,
            format!("component `{id}` has dependencies"),
        );
    }
    let nothing = |i: &Inherit| *i == Inherit::Nothing || *i == Inherit::Only(vec![]);
    let inherits: Vec<&Inherit> = component.dependencies.iter().map(|d| &d.inherit).collect();
    let uniform =
        inherits.iter().all(|i| nothing(i)) || inherits.iter().all(|i| **i == Inherit::All);
    if !uniform {
        // Spin 3 reads only the component-level `dependencies_inherit_configuration`.
        need(
            Feature::Spin4Manifest,
            format!("the dependencies of component `{id}` inherit differently, which the plain image's spin.toml can only say per dependency (`inherit_configuration`)"),
        );
    }
    for dependency in &component.dependencies {
        if matches!(&dependency.inherit, Inherit::Only(keys) if !keys.is_empty()) {
            need(
                Feature::SelectiveInheritance,
                format!(
                    "dependency `{}` of component `{id}` inherits only some capabilities (`inherit_configuration = [...]`)",
                    dependency.name
                ),
            );
        }
    }
}

/// Warnings for triggers of `app` that `target` does not run yet.
pub fn trigger_warnings(app: &App, target: &ShimRelease) -> Vec<String> {
    let types: BTreeSet<&str> = app
        .triggers
        .iter()
        .map(|t| t.trigger_type.as_str())
        .collect();
    types
        .into_iter()
        .filter_map(|t| Some((t, min_shim_for_trigger(t)?)))
        .filter(|(_, first)| index(first) > index(target))
        .map(|(t, first)| {
            format!("the app has `{t}` triggers, which {first} first runs; the target is {target}")
        })
        .collect()
}

/// One warning per import of `component` that `target` cannot run.
pub fn import_warnings<'a>(
    component: &str,
    imports: impl IntoIterator<Item = &'a str>,
    target: &ShimRelease,
) -> Vec<String> {
    missing_imports(target, imports)
        .into_iter()
        .map(|(import, first)| match first {
            Some(first) => format!(
                "component `{component}` imports {import}, which needs {first} or later; the target is {target}"
            ),
            None => format!(
                "component `{component}` imports {import}, which no containerd-shim-spin release up to {} runs",
                SHIM_RELEASES[SHIM_RELEASES.len() - 1].shim
            ),
        })
        .collect()
}

/// Collects the `ns:pkg/name@version` names (imports, exports, worlds) in wasm bytes as they
/// stream past (while copied into a blob), so detection costs no second read.
pub struct ImportScanner<R> {
    inner: R,
    window: Vec<u8>,
    found: BTreeSet<String>,
}

/// Names are carried across reads up to this length.
const MAX_NAME: usize = 255;

impl<R> ImportScanner<R> {
    pub fn new(inner: R) -> Self {
        ImportScanner {
            inner,
            window: Vec::new(),
            found: BTreeSet::new(),
        }
    }

    /// The names seen, sorted.
    pub fn finish(mut self) -> BTreeSet<String> {
        let window = std::mem::take(&mut self.window);
        self.collect(&window, true);
        self.found
    }

    fn scan(&mut self, chunk: &[u8]) {
        self.window.extend_from_slice(chunk);
        let window = std::mem::take(&mut self.window);
        self.collect(&window, false);
        let keep = window.len().saturating_sub(MAX_NAME);
        self.window = window[keep..].to_vec();
    }

    /// Records every complete name in `bytes`; one running into the end waits for more input
    /// unless `eof`.
    fn collect(&mut self, bytes: &[u8], eof: bool) {
        for ns in HOST_NAMESPACES {
            for start in memchr::memmem::find_iter(bytes, ns.as_bytes()) {
                let len = bytes[start..]
                    .iter()
                    .take_while(|b| is_name_byte(**b))
                    .count();
                if start + len == bytes.len() && !eof {
                    continue;
                }
                if let Some(name) = parse_name(&bytes[start..start + len]) {
                    self.found.insert(name);
                }
            }
        }
    }
}

/// The `ns:pkg/name@version` names a component in memory imports and exports at its top level,
/// read exactly. For a component made from a core module, whose adapter's internal names
/// (`wasi:cli/environment@0.2.0-get-environment`) would fool [`ImportScanner`].
pub fn top_level_names(component: &[u8]) -> anyhow::Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload? {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth -= 1,
            wasmparser::Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    names.extend(parse_name(import?.name.name.as_bytes()));
                }
            }
            wasmparser::Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    names.extend(parse_name(export?.name.name.as_bytes()));
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b':' | b'/' | b'@')
}

/// `ns:pkg/name@version` from the start of `bytes`, or `None`.
fn parse_name(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (name, version) = text.split_once('@')?;
    let (package, _) = name.split_once('/')?;
    package.split_once(':')?;
    let version = version.split('@').next()?;
    let mut parts = version.splitn(3, '.');
    let (major, minor, rest) = (parts.next()?, parts.next()?, parts.next()?);
    let patch_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let numeric = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !(numeric(major) && numeric(minor) && patch_len > 0) {
        return None;
    }
    let pre = rest[patch_len..].trim_end_matches(['.', '-']);
    Some(format!(
        "{name}@{major}.{minor}.{}{pre}",
        &rest[..patch_len]
    ))
}

impl<R: std::io::Read> std::io::Read for ImportScanner<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.scan(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(import: &str) -> Option<&'static str> {
        min_shim_for_import(import).map(|r| r.shim)
    }

    #[test]
    fn shim_versions_are_found_by_minor_release() {
        assert_eq!(target_shim("v0.13.0").unwrap().spin, "2.3.1");
        assert_eq!(target_shim("0.24.0").unwrap().spin, "3.6.3");
        assert_eq!(target_shim("v0.14.1").unwrap().shim, "v0.14.0");
        assert!(target_shim("v9.9.9").is_err());
        assert!(target_shim("v0.17.x").is_err());
        assert!(target_shim(DEFAULT_TARGET_SHIM).is_ok());
    }

    #[test]
    fn each_import_maps_to_the_first_shim_that_runs_it() {
        assert_eq!(first("wasi:http/types@0.2.0"), Some("v0.13.0"));
        assert_eq!(first("fermyon:spin/key-value@2.0.0"), Some("v0.13.0"));
        assert_eq!(first("fermyon:spin/mqtt@2.0.0"), Some("v0.14.0"));
        assert_eq!(
            first("wasi:config/store@0.2.0-draft-2024-09-27"),
            Some("v0.17.0")
        );
        assert_eq!(first("wasi:keyvalue/atomics@0.2.0-draft2"), Some("v0.17.0"));
        assert_eq!(first("wasi:http/outgoing-handler@0.2.1"), Some("v0.17.0"));
        assert_eq!(first("wasi:http/incoming-handler@0.2.2"), Some("v0.18.0"));
        assert_eq!(first("spin:sqlite/sqlite@3.0.0"), Some("v0.20.0"));
        assert_eq!(first("spin:postgres/postgres@4.0.0"), Some("v0.21.0"));
        assert_eq!(first("wasi:cli/environment@0.2.3"), Some("v0.23.0"));
        // Semver matching: 0.2.2 links against the 0.2.3 that v0.23.0 has.
        assert_eq!(first("wasi:cli/environment@0.2.2"), Some("v0.23.0"));
        assert_eq!(first("wasi:cli/environment@0.2.9"), None);
        assert_eq!(first("wasi:keyvalue/store@0.2.0-draft3"), None);
    }

    #[test]
    fn missing_imports_name_the_first_shim_and_skip_foreign_namespaces() {
        let target = target_shim("v0.13.0").unwrap();
        let imports = [
            "wasi:io/streams@0.2.0",
            "spin:sqlite/sqlite@3.0.0",
            "my:dep/thing@1.0.0",
        ];
        let missing = missing_imports(target, imports);
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].0, "spin:sqlite/sqlite@3.0.0");
        assert_eq!(missing[0].1.unwrap().shim, "v0.20.0");
        assert_eq!(min_shim_for_imports(imports).unwrap().shim, "v0.20.0");
        assert_eq!(
            min_shim_for_imports(["wasi:io/streams@0.2.0"])
                .unwrap()
                .shim,
            "v0.13.0"
        );
        assert_eq!(min_shim_for_imports(["wasi:io/streams@0.2.99"]), None);
    }

    #[test]
    fn warnings_name_the_interface_and_the_first_shim() {
        let warnings = import_warnings(
            "api",
            ["wasi:config/store@0.2.0-draft-2024-09-27"],
            target_shim("v0.13.0").unwrap(),
        );
        assert_eq!(warnings, ["component `api` imports wasi:config/store@0.2.0-draft-2024-09-27, which needs containerd-shim-spin v0.17.0 (Spin 3.0.0) or later; the target is containerd-shim-spin v0.13.0 (Spin 2.3.1)"]);
        assert!(import_warnings(
            "api",
            ["wasi:config/store@0.2.0-draft-2024-09-27"],
            target_shim("v0.17.0").unwrap()
        )
        .is_empty());
    }

    #[test]
    fn triggers_newer_than_the_target_warn() {
        assert_eq!(min_shim_for_trigger("mqtt").unwrap().shim, "v0.16.0");
        assert_eq!(min_shim_for_trigger("cron"), None);
    }

    #[test]
    fn top_level_names_are_a_components_own_imports_and_exports_only() {
        // A nested component's import and an adapter-style internal name are not the host's.
        let wasm = wat::parse_str(
            r#"(component
              (import "wasi:cli/environment@0.2.0" (instance))
              (component (import "wasi:io/streams@0.2.6" (instance)))
              (@custom "name" "wasi:cli/environment@0.2.0-get-environment")
              (instance $empty)
              (export "wasi:http/incoming-handler@0.2.0" (instance $empty)))"#,
        )
        .unwrap();
        let names: Vec<String> = top_level_names(&wasm).unwrap().into_iter().collect();
        assert_eq!(
            names,
            [
                "wasi:cli/environment@0.2.0",
                "wasi:http/incoming-handler@0.2.0"
            ]
        );
    }

    #[test]
    fn scanner_finds_names_split_across_reads_and_ignores_the_rest() {
        use std::io::Read;
        let mut bytes = b"\0asm\x28".to_vec();
        bytes.extend_from_slice(b"wasi:config/store@0.2.0-draft-2024-09-27\x03get");
        bytes.extend_from_slice(b"\x05fermyon:spin/inbound-http\x01");
        bytes.extend_from_slice(b"\x13wasi:io/error@0.2.0");
        let mut scanner = ImportScanner::new(std::io::Cursor::new(bytes));
        let mut buf = [0u8; 7];
        while scanner.read(&mut buf).unwrap() > 0 {}
        let found: Vec<String> = scanner.finish().into_iter().collect();
        assert_eq!(
            found,
            [
                "wasi:config/store@0.2.0-draft-2024-09-27",
                "wasi:io/error@0.2.0"
            ]
        );
    }

    #[test]
    fn shim_v0_25_runs_spin_4_interfaces_and_is_the_default() {
        // v0.25.0's Cargo.lock pins spin-* at tag v4.0.1; the imports are those Spin v4.0.x's
        // wit/world.wit adds to `platform` (wit/world.wit:17-32@v4.0.2).
        let default = target_shim(DEFAULT_TARGET_SHIM).unwrap();
        assert_eq!((default.shim, default.spin), ("v0.25.0", "4.0.1"));
        for import in [
            "spin:key-value/key-value@3.0.0",
            "spin:mqtt/mqtt@3.0.0",
            "spin:mysql/mysql@3.0.0",
            "spin:postgres/postgres@4.2.0",
            "spin:postgres/postgres@4.1.0",
            "spin:redis/redis@3.0.0",
            "spin:redis/inbound-redis@3.0.0",
            "spin:sqlite/sqlite@3.1.0",
            "spin:variables/variables@3.0.0",
            "wasi:http/handler@0.3.0-rc-2026-03-15",
            "wasi:cli/environment@0.3.0-rc-2026-03-15",
        ] {
            assert_eq!(first(import), Some("v0.25.0"), "{import}");
        }
        // The WASIp3 release candidate Spin 3.6 had behind a feature flag is gone in Spin 4.
        assert_eq!(first("wasi:http/handler@0.3.0-rc-2026-01-06"), None);
        // Spin 3 imports still run.
        assert_eq!(first("spin:postgres/postgres@4.0.0"), Some("v0.21.0"));
    }

    #[test]
    fn features_name_the_first_shim_that_runs_them() {
        // Written from each release's Spin: service chaining appears in Spin 2.4
        // (crates/loader/src/local.rs@v2.4.0), component host requirements in Spin 3.3
        // (crates/locked-app/src/locked.rs:41@v3.3.1), dependencies in Spin 3.0, selective
        // inheritance in Spin 4.0 (crates/compose/src/lib.rs:415@v3.6.3 panics on it).
        let cases = [
            (Feature::ServiceChaining, "v0.14.0"),
            (Feature::ComponentHostRequirements, "v0.20.0"),
            (Feature::ComponentDependencies, "v0.17.0"),
            (Feature::SelectiveInheritance, "v0.25.0"),
            (Feature::Spin4Manifest, "v0.25.0"),
        ];
        for (feature, shim) in cases {
            assert_eq!(feature.first_shim().shim, shim, "{feature:?}");
        }
        let old = target_shim("v0.24.0").unwrap();
        assert_eq!(
            needs_shim(Feature::SelectiveInheritance, "dependency `a:b/c` inherits some", old)
                .unwrap(),
            "dependency `a:b/c` inherits some, which needs containerd-shim-spin v0.25.0 (Spin 4.0.1) or later; the target is containerd-shim-spin v0.24.0 (Spin 3.6.3) (choose a newer one with --shim-version)"
        );
        assert_eq!(needs_shim(Feature::ComponentDependencies, "x", old), None);
        assert!(!Feature::ServiceChaining.runs_on(target_shim("v0.13.0").unwrap()));
    }

    #[test]
    fn releases_are_ordered_and_unique() {
        assert!(SHIM_RELEASES.windows(2).all(|w| w[0].shim < w[1].shim));
    }
}
