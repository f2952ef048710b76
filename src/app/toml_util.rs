//! Small helpers for reading spin.toml as data: typed field access with path-named errors, and
//! TOML → JSON conversion for settings we keep as data.

use crate::bad_input;

/// Reads `table` into `T`, naming the failing field as `<prefix>.<field path>` in the error.
pub fn deserialize<T: serde::de::DeserializeOwned>(
    manifest: &std::path::Path,
    prefix: &str,
    value: toml::Value,
) -> anyhow::Result<T> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let inner = err.path().to_string();
        let path = match (prefix.is_empty(), inner.as_str()) {
            (true, _) => inner.clone(),
            (false, ".") => prefix.to_string(),
            (false, _) => format!("{prefix}.{inner}"),
        };
        bad_input!(
            "{}: `{path}`: {}",
            manifest.display(),
            err.inner().message().trim_end()
        )
    })
}

/// Converts TOML data to JSON data (datetimes become strings).
pub fn to_json(value: &toml::Value) -> serde_json::Value {
    match value {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Value::from(*f),
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        toml::Value::Table(table) => {
            serde_json::Value::Object(table.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

/// Line and column (1-based) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The spin.toml line a warning is about, when it names one: a component (`component `id``) by its
/// `[component.id]` table, the app's version (`version `x``) by its `version =` key.
pub fn warning_line(text: &str, warning: &str) -> Option<usize> {
    let quoted = |after: &str| -> Option<String> {
        let start = warning.find(after)? + after.len();
        let end = warning[start..].find('`')?;
        Some(warning[start..start + end].to_string())
    };
    let position = text.lines().position(|line| {
        let line = line.trim();
        if let Some(id) = quoted("component `") {
            let header = line.replace(' ', "");
            header == format!("[component.{id}]") || header == format!("[component.\"{id}\"]")
        } else if warning.starts_with("version `") {
            line.strip_prefix("version")
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        } else {
            false
        }
    })?;
    Some(position + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_line_finds_the_component_table_or_the_version_key() {
        let text = "spin_manifest_version = 2\n[application]\nname = \"a\"\nversion = \"1 0\"\n\n[component.api]\nsource = \"a.wasm\"\n[component.\"web-ui\"]\n";
        assert_eq!(
            warning_line(text, "component `api` uses AI models (x)"),
            Some(6)
        );
        assert_eq!(
            warning_line(text, "component `web-ui`: files entry x matches no file"),
            Some(8)
        );
        assert_eq!(
            warning_line(text, "version `1 0` is not a valid image tag; using `1-0`"),
            Some(4)
        );
        assert_eq!(warning_line(text, "component `gone` is not here"), None);
        assert_eq!(warning_line(text, "the app has `redis` triggers"), None);
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
