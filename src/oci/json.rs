//! Canonical JSON: object keys sorted, no whitespace. Same value → same bytes → same digest.

use serde::Serialize;

/// Serializes `value` canonically. serde_json's maps are B-trees (the `preserve_order` feature
/// is off, which a test guards), so keys come out sorted whatever order they were inserted in.
pub fn to_canonical_vec<T: Serialize>(value: &T) -> anyhow::Result<Vec<u8>> {
    let value = serde_json::to_value(value)?;
    Ok(serde_json::to_vec(&value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_and_whitespace_free() {
        let mut map = serde_json::Map::new();
        map.insert("zeta".into(), serde_json::json!({"b": 1, "a": [1, 2]}));
        map.insert("alpha".into(), serde_json::json!(null));
        let bytes = to_canonical_vec(&map).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"alpha":null,"zeta":{"a":[1,2],"b":1}}"#
        );
    }
}
