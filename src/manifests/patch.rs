//! The two patch forms a kustomization carries: a strategic-merge-style patch (maps merged, lists of
//! named items merged by `name`, other lists replaced) and JSON 6902 operations (add/remove/replace/test).

use serde_json::Value;

/// Merges `patch` into `target`: maps key by key (`null` deletes), lists of items that all carry a
/// `name` merged by name (as Kubernetes' strategic merge does for containers, env, ports, volumes).
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    strategic_merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (Value::Array(target), Value::Array(patch)) if all_named(target) && all_named(patch) => {
            for item in patch {
                match target.iter_mut().find(|t| t["name"] == item["name"]) {
                    Some(existing) => strategic_merge(existing, item),
                    None => target.push(item.clone()),
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

fn all_named(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|i| i["name"].is_string())
}

/// Applies JSON 6902 `operations` to `target`; the error names the operation that failed.
pub fn json6902(target: &mut Value, operations: &[Value]) -> Result<(), String> {
    for (i, op) in operations.iter().enumerate() {
        let kind = op["op"].as_str().unwrap_or_default();
        let path = op["path"]
            .as_str()
            .ok_or_else(|| format!("operation {}: `path` is missing", i + 1))?;
        let result = match kind {
            "add" => add(target, path, op["value"].clone()),
            "replace" => replace(target, path, op["value"].clone()),
            "remove" => remove(target, path).map(drop),
            "test" => test(target, path, &op["value"]),
            other => Err(format!(
                "`op: {other}` is not supported (add, remove, replace, test are)"
            )),
        };
        result.map_err(|e| format!("operation {} ({kind} {path}): {e}", i + 1))?;
    }
    Ok(())
}

/// `/a/b/c` → (`/a/b`, `c`), with `~1` and `~0` unescaped in the last token.
fn split(path: &str) -> Result<(&str, String), String> {
    let i = path.rfind('/').ok_or("a path starts with `/`")?;
    Ok((
        &path[..i],
        path[i + 1..].replace("~1", "/").replace("~0", "~"),
    ))
}

fn add(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let (parent, last) = split(path)?;
    match target.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(last, value);
            Ok(())
        }
        Some(Value::Array(items)) if last == "-" => {
            items.push(value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            let index: usize = last.parse().map_err(|_| "not an array index")?;
            if index > items.len() {
                return Err("index past the end".into());
            }
            items.insert(index, value);
            Ok(())
        }
        _ => Err("the parent does not exist".into()),
    }
}

fn replace(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let slot = target.pointer_mut(path).ok_or("nothing at that path")?;
    *slot = value;
    Ok(())
}

fn remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split(path)?;
    match target.pointer_mut(parent) {
        Some(Value::Object(map)) => map
            .remove(&last)
            .ok_or_else(|| "nothing at that path".into()),
        Some(Value::Array(items)) => {
            let index: usize = last.parse().map_err(|_| "not an array index")?;
            (index < items.len())
                .then(|| items.remove(index))
                .ok_or_else(|| "index past the end".into())
        }
        _ => Err("the parent does not exist".into()),
    }
}

fn test(target: &Value, path: &str, expected: &Value) -> Result<(), String> {
    match target.pointer(path) {
        Some(actual) if actual == expected => Ok(()),
        _ => Err("the value differs".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_named_lists_and_replaces_others() {
        let mut object = json!({"spec": {"replicas": 2, "args": ["a"], "containers": [
            {"name": "app", "image": "x", "env": [{"name": "A", "value": "1"}]}
        ]}});
        strategic_merge(
            &mut object,
            &json!({"spec": {"replicas": null, "args": ["b"], "containers": [
                {"name": "app", "env": [{"name": "B", "value": "2"}]},
                {"name": "sidecar", "image": "y"}
            ]}}),
        );
        assert_eq!(
            object,
            json!({"spec": {"args": ["b"], "containers": [
                {"name": "app", "image": "x", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "sidecar", "image": "y"}
            ]}})
        );
    }

    #[test]
    fn json6902_adds_replaces_removes_and_tests() {
        let mut object = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1, 2]}});
        json6902(
            &mut object,
            &[
                json!({"op": "add", "path": "/metadata/labels/team~1name", "value": "x"}),
                json!({"op": "replace", "path": "/spec/list/0", "value": 9}),
                json!({"op": "add", "path": "/spec/list/-", "value": 3}),
                json!({"op": "remove", "path": "/metadata/labels/a"}),
                json!({"op": "test", "path": "/spec/list/1", "value": 2}),
            ],
        )
        .unwrap();
        assert_eq!(
            object,
            json!({"metadata": {"labels": {"team/name": "x"}}, "spec": {"list": [9, 2, 3]}})
        );
        let err = json6902(
            &mut object,
            &[json!({"op": "move", "path": "/a", "from": "/b"})],
        );
        assert!(err.unwrap_err().contains("`op: move` is not supported"));
    }
}
