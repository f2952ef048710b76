//! YAML as spin-aks writes it for people and for kubectl: block style, multi-line strings as `|`
//! blocks, and long lines (image references with digests) never folded.

use serde::Serialize;

/// One document as block YAML, ending with a newline: multi-line strings as `|` blocks, long
/// single-line strings (image references with digests) kept on one line rather than folded.
pub fn to_yaml<T: Serialize>(document: &T) -> String {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.folded_wrap_chars = usize::MAX;
    let mut text = serde_saphyr::to_string_with_options(document, options)
        .expect("JSON-shaped values serialize to YAML");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}
