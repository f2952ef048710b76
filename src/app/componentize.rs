//! A core wasm module made into a component before it is composed, by the rules Spin's composer
//! follows (crates/componentize/src/lib.rs@v4.0.2), with pinned WASI preview 1 adapters.

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
    WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wasmparser::{ExternalKind, Parser, Payload};
use wit_component::{metadata, ComponentEncoder};

/// Whether `wasm` is a core module: its version field is 1 (and its layer 0); a component's
/// layer is 1 (the binary format's preamble).
pub fn is_core_module(wasm: &[u8]) -> bool {
    wasm.get(..4) == Some(b"\0asm") && wasm.get(6..8) == Some(&[0, 0])
}

/// `wasm` as a component: a component is returned as is; a core module is encoded with the WASI
/// preview 1 adapter Spin picks for it (lib.rs:42-61@v4.0.2). The same module gives the same
/// bytes. The error completes a sentence about the wasm ("… is a core wasm module …").
pub fn componentize(wasm: Vec<u8>) -> Result<Vec<u8>, String> {
    if !is_core_module(&wasm) {
        return Ok(wasm);
    }
    let adapter = match Kind::of(&wasm) {
        Kind::Bindgen => WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        Kind::Command => WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
        Kind::OldBindgen => return Err("is a core wasm module without the metadata of wit-bindgen 0.5 or later (an app built with Spin SDK 1.x, or no WIT world): Spin adapts such modules with an adapter of its own that no registry publishes, so spin-aks cannot; rebuild it with a current Spin SDK, or build with `--format image` (the shim's Spin adapts it at start)".into()),
        Kind::Unsupported(version) => return Err(format!("is a core wasm module built with wit-bindgen {version}, which Spin cannot make into a component either (it adapts wit-bindgen 0.5 to 0.x); rebuild it with a current Spin SDK")),
    };
    ComponentEncoder::default()
        .validate(true)
        .module(&wasm)
        .and_then(|encoder| encoder.adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, adapter))
        .and_then(|mut encoder| encoder.encode())
        .map_err(|e| format!("is a core wasm module that cannot be made into a component (as Spin does before composing, with the WASI preview 1 adapter): {e:#}; Spin refuses it too: build it against WASI preview 1 and its WIT world, or as a component"))
}

/// What Spin reads from a core module to pick its adapter (lib.rs:54-122@v4.0.2).
#[derive(Debug, PartialEq)]
enum Kind {
    /// Built with wit-bindgen 0.5 to 0.x: the reactor adapter.
    Bindgen,
    /// A WASI command (`_start`) with no sign of wit-bindgen: the command adapter.
    Command,
    /// wit-bindgen 0.2 or none: Spin's own adapter for the Spin 1.x ABI.
    OldBindgen,
    /// A wit-bindgen version Spin refuses.
    Unsupported(String),
}

impl Kind {
    fn of(module: &[u8]) -> Kind {
        // An unreadable `component-type` section counts as none, as in Spin (module_info.rs:57-66).
        let bindgen = metadata::decode(module)
            .ok()
            .filter(|(stripped, _)| stripped.is_some())
            .map(|(_, bindgen)| bindgen);
        let version = bindgen
            .as_ref()
            .and_then(|b| b.producers.as_ref())
            .and_then(|p| {
                p.get("processed-by")?
                    .iter()
                    .find(|(tool, _)| tool.starts_with("wit-bindgen"))
                    .map(|(_, version)| version.clone())
            });
        if let Some(version) = version {
            return if supported_bindgen(&version) {
                Kind::Bindgen
            } else {
                Kind::Unsupported(version)
            };
        }
        let (start, realloc) = exports(module);
        if start && bindgen.is_none() && !realloc {
            Kind::Command
        } else {
            Kind::OldBindgen
        }
    }
}

/// Whether Spin adapts a module made by wit-bindgen `version`: 0.5 to 0.x, with at most a patch
/// number after the minor one (lib.rs:76-99@v4.0.2).
fn supported_bindgen(version: &str) -> bool {
    let mut parts = version.split('.');
    let number = |part: Option<&str>| part.and_then(|p| p.parse::<u8>().ok());
    let (Some(major), Some(minor)) = (number(parts.next()), number(parts.next())) else {
        return false;
    };
    major == 0 && minor >= 5 && (parts.next().is_none() || parts.next().is_none())
}

/// Whether the module exports the function `_start`, and a canonical ABI realloc function (a
/// sign of wit-bindgen, module_info.rs:28-44 and 75-82@v4.0.2).
fn exports(module: &[u8]) -> (bool, bool) {
    let (mut start, mut realloc) = (false, false);
    for payload in Parser::new(0).parse_all(module) {
        let Ok(Payload::ExportSection(reader)) = payload else {
            continue;
        };
        for export in reader.into_iter().flatten() {
            if export.kind == ExternalKind::Func {
                start |= export.name == "_start";
                realloc |= matches!(export.name, "cabi_realloc" | "canonical_abi_realloc");
            }
        }
    }
    (start, realloc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wit_bindgen_versions_are_adapted_as_spin_adapts_them() {
        // lib.rs:76-99@v4.0.2: 0.5 to 0.x, `x.y` or `x.y.z`; anything else refused.
        for (version, supported) in [
            ("0.5", true),
            ("0.16.0", true),
            ("0.41.0", true),
            ("0.4.0", false),
            ("1.0.0", false),
            ("0.16.0.1", false),
            ("0", false),
            ("x.y", false),
        ] {
            assert_eq!(supported_bindgen(version), supported, "{version}");
        }
    }

    #[test]
    fn modules_without_bindgen_metadata_are_told_apart_by_their_exports() {
        // lib.rs:112-122@v4.0.2: `_start` without wit-bindgen signs is a command; otherwise the
        // Spin 1.x ABI.
        for (wat, kind) in [
            (r#"(module (func (export "_start")))"#, Kind::Command),
            (
                r#"(module (func (export "_start")) (func (export "cabi_realloc")))"#,
                Kind::OldBindgen,
            ),
            (
                r#"(module (func (export "handle-http-request")))"#,
                Kind::OldBindgen,
            ),
            ("(module)", Kind::OldBindgen),
        ] {
            assert_eq!(Kind::of(&wat::parse_str(wat).unwrap()), kind, "{wat}");
        }
    }

    #[test]
    fn a_component_is_returned_as_is_and_a_module_spin_cannot_adapt_is_refused() {
        let component = wat::parse_str("(component)").unwrap();
        assert_eq!(componentize(component.clone()).unwrap(), component);
        let old = wat::parse_str(r#"(module (func (export "handle-http-request")))"#).unwrap();
        assert!(componentize(old).unwrap_err().contains("Spin SDK 1.x"));
    }
}
