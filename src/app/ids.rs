//! Spin's identifier rules (component, variable and trigger ids), shared by the manifest
//! reader, the v1 conversion and the checks of what Spin accepts.

/// Spin's id rule (spin v3.6.3 crates/serde/src/id.rs:35): words joined by `delimiter`, each
/// starting with an ASCII letter, then letters and digits, all lowercase or all UPPERCASE
/// (`lower_only`: lowercase only); the other separator (`-` for `_`) is refused.
pub(super) fn is_spin_id(id: &str, delimiter: char, lower_only: bool) -> bool {
    let wrong = if delimiter == '-' { '_' } else { '-' };
    !id.is_empty()
        && !id.contains(wrong)
        && id.split(delimiter).all(|word| {
            let mut chars = word.chars();
            let Some(first) = chars.next().filter(char::is_ascii_alphabetic) else {
                return false;
            };
            let upper = first.is_ascii_uppercase();
            !(lower_only && upper)
                && chars.all(|c| {
                    c.is_ascii_digit()
                        || (c.is_ascii_alphabetic() && c.is_ascii_uppercase() == upper)
                })
        })
}

/// A component id (`KebabId`, spin v3.6.3 crates/serde/src/lib.rs:15).
pub(super) fn is_kebab_id(id: &str) -> bool {
    is_spin_id(id, '-', false)
}
