//! `--diff`: live objects against what the server would make of ours, as a unified diff of YAML,
//! with server bookkeeping stripped and Secret values masked (`***`, or before/after when they change).

use serde_json::Value;
use similar::TextDiff;

use crate::yaml::to_yaml;

/// The unified diff for one object (`before` is None when it does not exist yet); empty when equal.
pub fn object_diff(label: &str, before: Option<&Value>, after: &Value) -> String {
    let mut before = before.map(clean).unwrap_or(Value::Null);
    let mut after = clean(after);
    mask_secret_values(&mut before, &mut after);
    let old = if before.is_null() {
        String::new()
    } else {
        to_yaml(&before)
    };
    let new = to_yaml(&after);
    if old == new {
        return String::new();
    }
    TextDiff::from_lines(&old, &new)
        .unified_diff()
        .header(&format!("live/{label}"), &format!("applied/{label}"))
        .to_string()
}

/// The object without fields the server maintains.
pub fn clean(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = object["metadata"].as_object_mut() {
        for field in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            meta.remove(field);
        }
    }
    object
}

fn mask_secret_values(before: &mut Value, after: &mut Value) {
    if after["kind"] != "Secret" {
        return;
    }
    for field in ["data", "stringData"] {
        let old = before[field].as_object().cloned().unwrap_or_default();
        let new = after[field].as_object().cloned().unwrap_or_default();
        for (key, value) in &new {
            let (masked_old, masked_new) = match old.get(key) {
                Some(previous) if previous == value => ("***", "***"),
                Some(_) => ("*** (before)", "*** (after)"),
                None => ("", "*** (after)"),
            };
            after[field][key] = Value::String(masked_new.into());
            if !masked_old.is_empty() {
                before[field][key] = Value::String(masked_old.into());
            }
        }
        for key in old.keys().filter(|k| !new.contains_key(*k)) {
            before[field][key] = Value::String("*** (before)".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_never_appear_and_changes_are_marked() {
        let before = json!({"kind": "Secret", "metadata": {"name": "s", "resourceVersion": "7"},
            "data": {"a": "c2VjcmV0LWE=", "b": "b2xkLWI="}});
        let after = json!({"kind": "Secret", "metadata": {"name": "s"},
            "data": {"a": "c2VjcmV0LWE=", "b": "bmV3LWI="}});
        let diff = object_diff("Secret/s", Some(&before), &after);
        assert!(
            diff.contains("-  b: '*** (before)'") || diff.contains("-  b: \"*** (before)\""),
            "{diff}"
        );
        assert!(!diff.contains("c2VjcmV0") && !diff.contains("bmV3") && !diff.contains("b2xk"));
        assert!(!diff.contains("resourceVersion"));
    }

    #[test]
    fn unchanged_objects_have_no_diff() {
        let object =
            json!({"kind": "Service", "metadata": {"name": "s", "uid": "1"}, "spec": {"a": 1}});
        assert_eq!(object_diff("Service/s", Some(&object), &clean(&object)), "");
    }
}
