//! The host interfaces a composed dependency reaches only when it inherits their capability set
//! (`inherit_configuration`), and which of a dependency's imports Spin's composer would deny.

use wac_graph::types::are_semver_compatible;

use super::model::Inherit;

/// Spin 4's capability sets and their interfaces (crates/capabilities/src/lib.rs:21-85@v4.0.2).
/// Its deny-all adapter exports exactly these interfaces (deny-adapter/src/lib.rs:1-45@v4.0.2).
const SETS: &[(&str, &[&str])] = &[
    ("ai_models", &["fermyon:spin/llm", "fermyon:spin/llm@2.0.0"]),
    (
        "allowed_outbound_hosts",
        &[
            "fermyon:spin/http",
            "fermyon:spin/mqtt@2.0.0",
            "fermyon:spin/mysql",
            "fermyon:spin/mysql@2.0.0",
            "fermyon:spin/postgres",
            "fermyon:spin/postgres@2.0.0",
            "fermyon:spin/redis",
            "fermyon:spin/redis@2.0.0",
            "spin:mqtt/mqtt@3.0.0",
            "spin:postgres/postgres@3.0.0",
            "spin:postgres/postgres@4.2.0",
            "spin:redis/redis@3.0.0",
            "wasi:http/client@0.3.0-rc-2026-03-15",
            "wasi:http/outgoing-handler@0.2.6",
            "wasi:sockets/ip-name-lookup@0.2.6",
            "wasi:sockets/ip-name-lookup@0.3.0-rc-2026-03-15",
            "wasi:sockets/tcp-create-socket@0.2.6",
            "wasi:sockets/tcp@0.2.6",
            "wasi:sockets/udp-create-socket@0.2.6",
            "wasi:sockets/udp@0.2.6",
        ],
    ),
    (
        "environment",
        &[
            "wasi:cli/environment@0.2.6",
            "wasi:cli/environment@0.3.0-rc-2026-03-15",
        ],
    ),
    (
        "files",
        &[
            "wasi:filesystem/preopens@0.2.6",
            "wasi:filesystem/preopens@0.3.0-rc-2026-03-15",
        ],
    ),
    (
        "key_value_stores",
        &[
            "fermyon:spin/key-value",
            "fermyon:spin/key-value@2.0.0",
            "spin:key-value/key-value@3.0.0",
            "wasi:keyvalue/store@0.2.0-draft2",
        ],
    ),
    (
        "sqlite_databases",
        &[
            "fermyon:spin/sqlite",
            "fermyon:spin/sqlite@2.0.0",
            "spin:sqlite/sqlite@3.1.0",
        ],
    ),
    (
        "variables",
        &[
            "fermyon:spin/config",
            "fermyon:spin/variables@2.0.0",
            "spin:variables/variables@3.0.0",
            "wasi:config/store@0.2.0-draft-2024-09-27",
        ],
    ),
];

/// The imports (of a dependency inheriting `inherit`) that Spin's composer plugs with its deny-all
/// adapter: those naming, or semver-compatible with, an interface of a set not inherited
/// (crates/capabilities/src/deny.rs:20-80@v4.0.2). Empty: Spin composes the dependency as is.
pub fn denied_imports<'a>(
    inherit: &Inherit,
    imports: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let inherited = |set: &str| match inherit {
        Inherit::All => true,
        Inherit::Nothing => false,
        Inherit::Only(keys) => keys.iter().any(|k| k == set),
    };
    let denied: Vec<&str> = SETS
        .iter()
        .filter(|(set, _)| !inherited(set))
        .flat_map(|(_, interfaces)| interfaces.iter().copied())
        .collect();
    imports
        .into_iter()
        .filter(|import| denied.iter().any(|d| are_semver_compatible(d, import)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_of_sets_not_inherited_are_denied_semver_compatibly() {
        // deny.rs:47-65@v4.0.2: an adapter export plugs the import of its name or of a
        // semver-compatible one (wac-types `are_semver_compatible`: same major, or same 0.minor).
        let imports = [
            "wasi:cli/environment@0.2.3",
            "wasi:config/store@0.2.0-draft-2024-09-27",
            "spin:key-value/key-value@3.1.0",
            "wasi:http/outgoing-handler@0.3.0",
            "wasi:io/streams@0.2.6",
            "acme:greet/greeter@1.0.0",
        ];
        let only = |keys: &[&str]| Inherit::Only(keys.iter().map(|k| k.to_string()).collect());
        let cases = [
            (Inherit::All, vec![]),
            (
                Inherit::Nothing,
                vec![
                    "wasi:cli/environment@0.2.3",
                    "wasi:config/store@0.2.0-draft-2024-09-27",
                    "spin:key-value/key-value@3.1.0",
                ],
            ),
            (
                only(&["environment", "key_value_stores", "unknown"]),
                vec!["wasi:config/store@0.2.0-draft-2024-09-27"],
            ),
            (only(&[]), denied_imports(&Inherit::Nothing, imports)),
        ];
        for (inherit, expected) in cases {
            assert_eq!(denied_imports(&inherit, imports), expected, "{inherit:?}");
        }
    }
}
