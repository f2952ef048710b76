//! Three-way merge of a generated file: the previous generation (base), the file on disk (ours, maybe
//! edited by the user) and the new generation (theirs). YAML by field and object; other text by line.

use serde_json::{Map, Value};

/// The merged result and the places where the user and the generator changed the same thing differently.
#[derive(Debug, PartialEq)]
pub struct Merged<T> {
    pub result: T,
    pub conflicts: Vec<String>,
}

/// Merges YAML document streams. Documents are matched by `kind/metadata.name` (or position),
/// mappings by key, lists of named entries (`name:`) by name. At a conflict, `force` takes theirs.
pub fn merge_yaml(
    base: Option<&[Value]>,
    ours: &[Value],
    theirs: &[Value],
    force: bool,
) -> Merged<Vec<Value>> {
    let key_docs = |docs: &[Value]| -> Vec<(String, Value)> {
        docs.iter()
            .enumerate()
            .map(|(i, d)| {
                (
                    document_key(d).unwrap_or_else(|| format!("document {}:", i + 1)),
                    d.clone(),
                )
            })
            .collect()
    };
    let base = base.map(key_docs).unwrap_or_default();
    let ours = key_docs(ours);
    let theirs = key_docs(theirs);
    let mut conflicts = Vec::new();
    let mut result = Vec::new();
    for key in ordered_keys(&ours, &theirs) {
        let merged = merge_value(
            find(&base, &key),
            find(&ours, &key),
            find(&theirs, &key),
            &key,
            force,
            &mut conflicts,
        );
        result.extend(merged);
    }
    Merged { result, conflicts }
}

fn find<'a>(entries: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn document_key(doc: &Value) -> Option<String> {
    Some(format!(
        "{}/{}:",
        doc["kind"].as_str()?,
        doc["metadata"]["name"].as_str()?
    ))
}

/// Keys in theirs' order, then the ones only ours has, in ours' order.
fn ordered_keys(ours: &[(String, Value)], theirs: &[(String, Value)]) -> Vec<String> {
    let mut keys: Vec<String> = theirs.iter().map(|(k, _)| k.clone()).collect();
    for (k, _) in ours {
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    keys
}

fn merge_value(
    base: Option<&Value>,
    ours: Option<&Value>,
    theirs: Option<&Value>,
    path: &str,
    force: bool,
    conflicts: &mut Vec<String>,
) -> Option<Value> {
    if ours == theirs || theirs == base {
        return ours.cloned();
    }
    if ours == base {
        return theirs.cloned();
    }
    match (ours, theirs) {
        (Some(Value::Object(o)), Some(Value::Object(t))) => {
            let b = base.and_then(Value::as_object);
            let mut merged = Map::new();
            let mut keys: Vec<&String> = t.keys().collect();
            keys.extend(o.keys().filter(|k| !t.contains_key(*k)));
            for key in keys {
                let child = if path.ends_with(':') {
                    format!("{path} {key}")
                } else {
                    format!("{path}.{key}")
                };
                let value = merge_value(
                    b.and_then(|b| b.get(key)),
                    o.get(key),
                    t.get(key),
                    &child,
                    force,
                    conflicts,
                );
                if let Some(value) = value {
                    merged.insert(key.clone(), value);
                }
            }
            Some(Value::Object(merged))
        }
        (Some(Value::Array(o)), Some(Value::Array(t))) if named(o) && named(t) => {
            let by_name = |items: &[Value]| -> Vec<(String, Value)> {
                items
                    .iter()
                    .map(|v| {
                        (
                            v["name"].as_str().unwrap_or_default().to_string(),
                            v.clone(),
                        )
                    })
                    .collect()
            };
            let b = base
                .and_then(Value::as_array)
                .filter(|b| named(b))
                .map(|b| by_name(b))
                .unwrap_or_default();
            let (o, t) = (by_name(o), by_name(t));
            let mut merged = Vec::new();
            for name in ordered_keys(&o, &t) {
                let child = format!("{path}[name={name}]");
                merged.extend(merge_value(
                    find(&b, &name),
                    find(&o, &name),
                    find(&t, &name),
                    &child,
                    force,
                    conflicts,
                ));
            }
            Some(Value::Array(merged))
        }
        _ => {
            conflicts.push(path.to_string());
            if force {
                theirs.cloned()
            } else {
                ours.cloned()
            }
        }
    }
}

/// A list whose entries are mappings with distinct `name`s (env, variables, ports, containers).
fn named(items: &[Value]) -> bool {
    let names: Vec<&str> = items
        .iter()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .collect();
    names.len() == items.len() && (1..names.len()).all(|i| !names[..i].contains(&names[i]))
}

/// Merges text line by line (diff3). A conflict names the line range in ours.
pub fn merge_lines(base: Option<&str>, ours: &str, theirs: &str, force: bool) -> Merged<String> {
    let base: Vec<&str> = base.map(|b| b.lines().collect()).unwrap_or_default();
    let ours: Vec<&str> = ours.lines().collect();
    let theirs: Vec<&str> = theirs.lines().collect();
    let to_ours = matches(&base, &ours);
    let to_theirs = matches(&base, &theirs);
    let mut out: Vec<&str> = Vec::new();
    let mut conflicts = Vec::new();
    let (mut i, mut j, mut k) = (0, 0, 0);
    loop {
        // The next base line both sides kept is an anchor; everything before it is one chunk.
        let anchor = (i..base.len()).find_map(|b| Some((b, to_ours[b]?, to_theirs[b]?)));
        let (bi, oj, tk) = anchor.unwrap_or((base.len(), ours.len(), theirs.len()));
        let (b, o, t) = (&base[i..bi], &ours[j..oj], &theirs[k..tk]);
        if o == t || t == b {
            out.extend_from_slice(o);
        } else if o == b {
            out.extend_from_slice(t);
        } else {
            conflicts.push(if o.is_empty() {
                format!("lines removed after line {j}")
            } else {
                format!("lines {}-{}", j + 1, oj)
            });
            out.extend_from_slice(if force { t } else { o });
        }
        if anchor.is_none() {
            break;
        }
        out.push(base[bi]);
        (i, j, k) = (bi + 1, oj + 1, tk + 1);
    }
    let mut result = out.join("\n");
    if !result.is_empty() {
        result.push('\n');
    }
    Merged { result, conflicts }
}

/// For each line of `a`, the line of `b` it is matched to in a longest common subsequence.
fn matches(a: &[&str], b: &[&str]) -> Vec<Option<usize>> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for x in (0..n).rev() {
        for y in (0..m).rev() {
            lcs[x][y] = if a[x] == b[y] {
                lcs[x + 1][y + 1] + 1
            } else {
                lcs[x + 1][y].max(lcs[x][y + 1])
            };
        }
    }
    let mut map = vec![None; n];
    let (mut x, mut y) = (0, 0);
    while x < n && y < m {
        if a[x] == b[y] {
            map[x] = Some(y);
            x += 1;
            y += 1;
        } else if lcs[x + 1][y] >= lcs[x][y + 1] {
            x += 1;
        } else {
            y += 1;
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn app(image: &str, replicas: i64) -> Value {
        json!({"kind": "SpinApp", "metadata": {"name": "hello"}, "spec": {"image": image, "replicas": replicas,
            "variables": [{"name": "a", "value": "1"}]}})
    }

    #[test]
    fn yaml_keeps_user_edit_and_takes_new_image() {
        let base = [app("hello:1", 2)];
        let ours = [app("hello:1", 5)];
        let theirs = [app("hello:2", 2)];
        let merged = merge_yaml(Some(&base), &ours, &theirs, false);
        assert!(merged.conflicts.is_empty());
        assert_eq!(merged.result, [app("hello:2", 5)]);
    }

    #[test]
    fn yaml_conflict_names_the_object_and_field() {
        let merged = merge_yaml(
            Some(&[app("hello:1", 2)]),
            &[app("mine:1", 2)],
            &[app("hello:2", 2)],
            false,
        );
        assert_eq!(merged.conflicts, ["SpinApp/hello: spec.image"]);
        assert_eq!(merged.result[0]["spec"]["image"], "mine:1");
        let forced = merge_yaml(
            Some(&[app("hello:1", 2)]),
            &[app("mine:1", 2)],
            &[app("hello:2", 2)],
            true,
        );
        assert_eq!(forced.result[0]["spec"]["image"], "hello:2");
    }

    #[test]
    fn yaml_named_lists_merge_entries_by_name() {
        let mut ours = app("hello:1", 2);
        ours["spec"]["variables"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "mine", "value": "x"}));
        let mut theirs = app("hello:1", 2);
        theirs["spec"]["variables"] =
            json!([{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]);
        let merged = merge_yaml(Some(&[app("hello:1", 2)]), &[ours], &[theirs], false);
        assert_eq!(
            merged.result[0]["spec"]["variables"],
            json!([{"name": "a", "value": "1"}, {"name": "b", "value": "2"}, {"name": "mine", "value": "x"}])
        );
    }

    #[test]
    fn yaml_user_deleted_object_stays_deleted_and_user_added_object_stays() {
        let extra = json!({"kind": "ConfigMap", "metadata": {"name": "mine"}});
        let merged = merge_yaml(
            Some(&[app("a:1", 2)]),
            std::slice::from_ref(&extra),
            &[app("a:1", 2)],
            false,
        );
        assert_eq!(merged.result, [extra]);
    }

    #[test]
    fn lines_merge_independent_edits_and_flag_overlaps() {
        let base = "a\nb\nc\nd\n";
        let merged = merge_lines(Some(base), "a\nB\nc\nd\n", "a\nb\nc\nD\n", false);
        assert_eq!(
            merged,
            Merged {
                result: "a\nB\nc\nD\n".into(),
                conflicts: vec![]
            }
        );
        let conflict = merge_lines(Some(base), "a\nX\nc\nd\n", "a\nY\nc\nd\n", false);
        assert_eq!(conflict.conflicts, ["lines 2-2"]);
        assert_eq!(
            merge_lines(Some(base), "a\nX\nc\nd\n", "a\nY\nc\nd\n", true).result,
            "a\nY\nc\nd\n"
        );
    }
}
