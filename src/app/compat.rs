//! AKS / SpinKube compatibility: which triggers containerd-shim-spin runs, which Spin each shim
//! embeds, and which app features need a newer Spin than the target shim. All facts as data here.

use std::fmt;

use super::model::App;
use crate::cli::ImageFormat;

/// Triggers containerd-shim-spin can run (REFERENCE §3); anything else cannot be deployed.
pub const SUPPORTED_TRIGGERS: &[&str] = &["http", "redis", "sqs", "mqtt", "command"];

/// A Spin version, compared numerically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SpinVersion(pub u32, pub u32, pub u32);

impl fmt::Display for SpinVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// containerd-shim-spin releases and the Spin each embeds (REFERENCE §3), oldest first.
pub const SHIM_RELEASES: &[(&str, SpinVersion)] = &[
    ("v0.13.0", SpinVersion(2, 3, 1)),
    ("v0.17.0", SpinVersion(3, 0, 0)),
    ("v0.24.0", SpinVersion(3, 6, 3)),
];

/// The shim assumed when none is named: the first release with Spin 3, as SpinKube installs.
pub const DEFAULT_TARGET_SHIM: &str = "v0.17.0";

/// A feature that needs at least `min_spin`, recognised by an interface its wasm imports.
pub struct WasmFeature {
    pub name: &'static str,
    pub import: &'static str,
    pub min_spin: SpinVersion,
}

/// Interfaces that first shipped in a given Spin release.
pub const WASM_FEATURES: &[WasmFeature] = &[
    WasmFeature {
        name: "the Spin 3 PostgreSQL interface",
        import: "spin:postgres/postgres@3.0.0",
        min_spin: SpinVersion(3, 0, 0),
    },
    WasmFeature {
        name: "wasi:config",
        import: "wasi:config/store@0.2.0-draft-2024-09-27",
        min_spin: SpinVersion(3, 0, 0),
    },
    WasmFeature {
        name: "wasi:keyvalue",
        import: "wasi:keyvalue/store@0.2.0-draft2",
        min_spin: SpinVersion(3, 0, 0),
    },
];

/// The Spin a shim release embeds, or a bad-input error listing the known releases.
pub fn target_spin(shim: &str) -> anyhow::Result<SpinVersion> {
    SHIM_RELEASES.iter().find(|(s, _)| *s == shim).map(|(_, v)| *v).ok_or_else(|| {
        let known: Vec<&str> = SHIM_RELEASES.iter().map(|(s, _)| *s).collect();
        crate::bad_input!("--shim-version `{shim}` is not a known containerd-shim-spin release; use one of {}", known.join(", "))
    })
}

/// The first shim release that embeds at least `spin`.
fn first_shim_with(spin: SpinVersion) -> Option<&'static str> {
    SHIM_RELEASES
        .iter()
        .find(|(_, v)| *v >= spin)
        .map(|(s, _)| *s)
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
                trigger.component,
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

/// A warning for each feature seen in a component's wasm that the target Spin lacks.
pub fn feature_warning(
    component: &str,
    feature: &WasmFeature,
    target: SpinVersion,
) -> Option<String> {
    (feature.min_spin > target).then(|| {
        let shim = first_shim_with(feature.min_spin).unwrap_or("a newer release");
        format!(
            "component `{component}` imports {} ({}), which needs Spin {} (containerd-shim-spin {shim} or later); the target embeds Spin {target}",
            feature.name, feature.import, feature.min_spin
        )
    })
}

/// Watches bytes stream past (as they are copied into a blob) for the imports of [`WASM_FEATURES`],
/// so detection costs no second read.
pub struct FeatureScanner<R> {
    inner: R,
    window: Vec<u8>,
    found: Vec<&'static WasmFeature>,
}

impl<R> FeatureScanner<R> {
    pub fn new(inner: R) -> Self {
        FeatureScanner {
            inner,
            window: Vec::new(),
            found: Vec::new(),
        }
    }

    /// The features seen, in table order.
    pub fn finish(self) -> Vec<&'static WasmFeature> {
        let mut found = self.found;
        found.sort_by_key(|f| WASM_FEATURES.iter().position(|w| std::ptr::eq(w, *f)));
        found
    }

    fn scan(&mut self, chunk: &[u8]) {
        let keep = WASM_FEATURES
            .iter()
            .map(|f| f.import.len())
            .max()
            .unwrap_or(1)
            - 1;
        self.window.extend_from_slice(chunk);
        for feature in WASM_FEATURES {
            let seen = self.found.iter().any(|f| std::ptr::eq(*f, feature));
            if !seen && memchr::memmem::find(&self.window, feature.import.as_bytes()).is_some() {
                self.found.push(feature);
            }
        }
        let drop = self.window.len().saturating_sub(keep);
        self.window.drain(..drop);
    }
}

impl<R: std::io::Read> std::io::Read for FeatureScanner<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.scan(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_table_maps_releases_to_their_spin() {
        assert_eq!(target_spin("v0.13.0").unwrap(), SpinVersion(2, 3, 1));
        assert_eq!(target_spin("v0.24.0").unwrap(), SpinVersion(3, 6, 3));
        assert!(target_spin("v9.9.9").is_err());
    }

    #[test]
    fn features_newer_than_the_target_warn_with_the_minimum_shim() {
        let wasi_config = &WASM_FEATURES[1];
        let warning = feature_warning("api", wasi_config, SpinVersion(2, 3, 1)).unwrap();
        assert!(
            warning.contains("Spin 3.0.0") && warning.contains("v0.17.0"),
            "{warning}"
        );
        assert_eq!(
            feature_warning("api", wasi_config, SpinVersion(3, 0, 0)),
            None
        );
    }

    #[test]
    fn scanner_finds_imports_split_across_reads() {
        use std::io::Read;
        let mut bytes = b"\0asm....".to_vec();
        bytes.extend_from_slice(WASM_FEATURES[1].import.as_bytes());
        bytes.extend_from_slice(b"tail");
        let mut scanner = FeatureScanner::new(std::io::Cursor::new(bytes));
        let mut buf = [0u8; 7];
        while scanner.read(&mut buf).unwrap() > 0 {}
        let found: Vec<&str> = scanner.finish().iter().map(|f| f.import).collect();
        assert_eq!(found, vec![WASM_FEATURES[1].import]);
    }

    #[test]
    fn releases_are_ordered_oldest_first() {
        assert!(SHIM_RELEASES.windows(2).all(|w| w[0].1 < w[1].1));
        assert!(target_spin(DEFAULT_TARGET_SHIM).is_ok());
    }
}
