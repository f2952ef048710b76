//! The `[component.x.dependencies]` reader: any bytes read as a TOML dependency table (with and
//! without `dependencies_inherit_configuration`), and as a name matched against an import, give
//! a value or an error, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use spin_aks::app::dependencies;

fuzz_target!(|data: &[u8]| {
    let Some((&switch, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    // The component-level switch: unset, false or true (normalize.rs:165@v4.0.2 reads all three).
    let inherit_all = match switch % 3 {
        0 => None,
        1 => Some(false),
        _ => Some(true),
    };
    let parse = |table: toml::Table| {
        dependencies::parse(
            Path::new("spin.toml"),
            "component.api",
            "api",
            Some(table),
            inherit_all,
        )
    };
    // The text as the whole table, and as the value of one dependency.
    if let Ok(table) = text.parse::<toml::Table>() {
        for name in table.keys() {
            let _ = dependencies::matches_import(name, name);
            let _ = dependencies::matches_import(name, "a:b/c@1.0.0");
        }
        let _ = parse(table);
    }
    if let Ok(table) = format!("\"a:b/c\" = {text}").parse::<toml::Table>() {
        let _ = parse(table);
    }
    // Any two strings as a dependency name and an import name.
    if let Some((name, import)) = text.split_once('\n') {
        let _ = dependencies::matches_import(name, import);
    }
});
