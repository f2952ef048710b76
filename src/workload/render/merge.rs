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
        // Multi-line text (an embedded runtime-config.toml): merge its lines.
        (Some(Value::String(o)), Some(Value::String(t)))
            if (o.contains('\n') || t.contains('\n')) && base.is_none_or(Value::is_string) =>
        {
            let merged = merge_lines(base.and_then(Value::as_str), o, t, force);
            conflicts.extend(merged.conflicts.iter().map(|c| format!("{path} ({c})")));
            let mut text = merged.result;
            if !t.ends_with('\n') && text.ends_with('\n') {
                text.pop();
            }
            Some(Value::String(text))
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

/// Merges text line by line (diff3). Changes of the two sides to separate base lines both apply; a
/// conflict names the line range in ours.
pub fn merge_lines<'a>(
    base: Option<&'a str>,
    ours: &'a str,
    theirs: &'a str,
    force: bool,
) -> Merged<String> {
    let base: Vec<&str> = base.map(|b| b.lines().collect()).unwrap_or_default();
    let ours: Vec<&str> = ours.lines().collect();
    let theirs: Vec<&str> = theirs.lines().collect();
    let mut hunks: Vec<(Side, Hunk)> = hunks(&base, &ours)
        .into_iter()
        .map(|h| (Side::Ours, h))
        .chain(hunks(&base, &theirs).into_iter().map(|h| (Side::Theirs, h)))
        .collect();
    hunks.sort_by_key(|(side, h)| (h.start, h.end, *side));

    let mut out: Vec<&'a str> = Vec::new();
    let mut conflicts = Vec::new();
    let (mut pos, mut ours_line) = (0, 0);
    let mut rest = hunks.into_iter().peekable();
    while let Some(first) = rest.next() {
        // A group: hunks whose base ranges overlap or start at the same line.
        let (start, mut end) = (first.1.start, first.1.end);
        let mut group = vec![first];
        while let Some((_, next)) = rest.peek() {
            if next.start < end || next.start == start {
                end = end.max(next.end);
                group.push(rest.next().expect("peeked"));
            } else {
                break;
            }
        }
        out.extend_from_slice(&base[pos..start]);
        ours_line += start - pos;
        let version = |side: Side, lines: &[&'a str]| -> Vec<&'a str> {
            let mut text = Vec::new();
            let mut at = start;
            for (_, hunk) in group.iter().filter(|(s, _)| *s == side) {
                text.extend_from_slice(&base[at..hunk.start]);
                text.extend_from_slice(&lines[hunk.side_start..hunk.side_end]);
                at = hunk.end;
            }
            text.extend_from_slice(&base[at..end]);
            text
        };
        let mine = version(Side::Ours, &ours);
        let new = version(Side::Theirs, &theirs);
        let one_sided = group.iter().all(|(s, _)| *s == group[0].0);
        let take_new = if one_sided {
            group[0].0 == Side::Theirs
        } else if mine == new {
            false
        } else {
            conflicts.push(if mine.is_empty() {
                format!("lines removed after line {ours_line}")
            } else {
                format!("lines {}-{}", ours_line + 1, ours_line + mine.len())
            });
            force
        };
        out.extend_from_slice(if take_new { &new } else { &mine });
        ours_line += mine.len();
        pos = end;
    }
    out.extend_from_slice(&base[pos..]);
    let mut result = out.join("\n");
    if !result.is_empty() {
        result.push('\n');
    }
    Merged { result, conflicts }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Ours,
    Theirs,
}

/// Base lines `start..end` replaced by the side's lines `side_start..side_end`.
#[derive(Debug)]
struct Hunk {
    start: usize,
    end: usize,
    side_start: usize,
    side_end: usize,
}

/// The changes that turn `base` into `side`.
fn hunks(base: &[&str], side: &[&str]) -> Vec<Hunk> {
    let map = matches(base, side);
    let mut hunks = Vec::new();
    let (mut i, mut j) = (0, 0);
    loop {
        let next = (i..base.len()).find_map(|b| Some((b, map[b]?)));
        let (bi, sj) = next.unwrap_or((base.len(), side.len()));
        if bi > i || sj > j {
            hunks.push(Hunk {
                start: i,
                end: bi,
                side_start: j,
                side_end: sj,
            });
        }
        if next.is_none() {
            break;
        }
        (i, j) = (bi + 1, sj + 1);
    }
    hunks
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
    fn yaml_multiline_strings_merge_by_line() {
        let secret = |toml: &str| json!({"kind": "Secret", "metadata": {"name": "rc"}, "stringData": {"runtime-config.toml": toml}});
        let base = [secret("[a]\ntoken = \"PLACEHOLDER\"\n")];
        let ours = [secret("[a]\ntoken = \"mine\"\n")];
        let theirs = [secret("[a]\ntoken = \"PLACEHOLDER\"\n\n[b]\nurl = \"x\"\n")];
        let merged = merge_yaml(Some(&base), &ours, &theirs, false);
        assert!(merged.conflicts.is_empty());
        assert_eq!(
            merged.result,
            [secret("[a]\ntoken = \"mine\"\n\n[b]\nurl = \"x\"\n")]
        );
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

    #[test]
    fn lines_insertion_next_to_an_edit_applies_both() {
        let merged = merge_lines(Some("a\nb\n"), "a\nB\n", "a\nb\nc\n", false);
        assert_eq!(
            merged,
            Merged {
                result: "a\nB\nc\n".into(),
                conflicts: vec![]
            }
        );
    }

    #[test]
    fn lines_same_change_on_both_sides_is_no_conflict_but_different_insertions_are() {
        assert!(merge_lines(Some("a\n"), "a\nx\n", "a\nx\n", false)
            .conflicts
            .is_empty());
        let merged = merge_lines(Some("a\n"), "a\nx\n", "a\ny\n", false);
        assert_eq!(merged.conflicts, ["lines 2-2"]);
        assert_eq!(merged.result, "a\nx\n");
    }

    #[test]
    fn lines_without_a_base_conflict_wherever_they_differ() {
        let merged = merge_lines(None, "a\n", "b\n", false);
        assert_eq!(merged.conflicts, ["lines 1-1"]);
        assert!(merge_lines(None, "same\n", "same\n", false)
            .conflicts
            .is_empty());
    }
}
