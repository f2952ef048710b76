//! A native build of the Kustomize features scaffold writes and teams commonly add: resources,
//! namespace, images (with `configurations` field specs), labels, annotations and patches.
//! Any other field is refused by name, so nothing in a kustomization is silently ignored.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::documents::{is_kustomization, read_documents};
use super::patch;
use crate::bad_input;
use crate::oci::reference::ImageRef;

const SUPPORTED: [&str; 12] = [
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "images",
    "labels",
    "commonLabels",
    "commonAnnotations",
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "configurations",
];

/// Kinds that have no namespace (the `namespace:` field leaves them alone).
const CLUSTER_SCOPED: [&str; 9] = [
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "RuntimeClass",
    "PersistentVolume",
    "StorageClass",
    "IngressClass",
    "PriorityClass",
];

/// The objects `kubectl kustomize <dir>` would print, for the supported fields, each with the
/// resource file it was read from.
pub fn build(dir: &Path) -> anyhow::Result<Vec<(PathBuf, Value)>> {
    let root = dir
        .canonicalize()
        .map_err(|e| bad_input!("{}: cannot read the directory: {e}", dir.display()))?;
    let built = build_root(
        &Root {
            shown: dir,
            real: &root,
        },
        &mut Vec::new(),
    )?;
    Ok(built.files.into_iter().zip(built.objects).collect())
}

/// A kustomization's directory: as the user named it (for messages), and with links resolved
/// (what kustomize's checks compare).
struct Root<'a> {
    shown: &'a Path,
    real: &'a Path,
}

/// The objects of a kustomization and, at the same index, the file each was read from.
#[derive(Default)]
struct Built {
    objects: Vec<Value>,
    files: Vec<PathBuf>,
}

/// Builds the kustomization at `root`; `visited` holds the roots that led here (a resource
/// directory containing one of them is a cycle, as kustomize's loader refuses it).
fn build_root(root: &Root, visited: &mut Vec<PathBuf>) -> anyhow::Result<Built> {
    let (file, kustomization) = read_kustomization(root.shown)?;
    let at = |field: &str| format!("{}: `{field}`", file.display());
    visited.push(root.real.to_path_buf());
    let mut built = Built::default();
    for resource in strings(&kustomization, "resources", &at)? {
        let loaded = load_resource(root, &resource, &at("resources"), visited)?;
        built.objects.extend(loaded.objects);
        built.files.extend(loaded.files);
    }
    visited.pop();
    let objects = &mut built.objects;
    for path in strings(&kustomization, "patchesStrategicMerge", &at)? {
        let patch = read_patch_file(root, &path, &at("patchesStrategicMerge"))?;
        apply_patch(objects, &patch, None, &at("patchesStrategicMerge"))?;
    }
    for entry in list(&kustomization, "patches", &at)? {
        let patch = patch_body(root, entry, &at("patches"))?;
        apply_patch(objects, &patch, entry.get("target"), &at("patches"))?;
    }
    for entry in list(&kustomization, "patchesJson6902", &at)? {
        let patch = patch_body(root, entry, &at("patchesJson6902"))?;
        apply_patch(objects, &patch, entry.get("target"), &at("patchesJson6902"))?;
    }
    if let Some(namespace) = kustomization.get("namespace").and_then(Value::as_str) {
        set_namespace(objects, namespace);
    }
    if let Some(labels) = kustomization.get("commonLabels") {
        add_labels(objects, object(labels, &at("commonLabels"))?, true, true);
    }
    for entry in list(&kustomization, "labels", &at)? {
        let pairs = object(&entry["pairs"], &at("labels.pairs"))?;
        let selectors = entry["includeSelectors"].as_bool().unwrap_or(false);
        let templates = selectors || entry["includeTemplates"].as_bool().unwrap_or(false);
        add_labels(objects, pairs, selectors, templates);
    }
    if let Some(annotations) = kustomization.get("commonAnnotations") {
        add_annotations(objects, object(annotations, &at("commonAnnotations"))?);
    }
    let image_paths = image_field_specs(root, &kustomization, &at)?;
    for entry in list(&kustomization, "images", &at)? {
        set_images(objects, entry, &image_paths, &at("images"))?;
    }
    Ok(built)
}

fn read_kustomization(dir: &Path) -> anyhow::Result<(PathBuf, Map<String, Value>)> {
    let file = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .map(|f| dir.join(f))
        .find(|f| f.is_file())
        .ok_or_else(|| bad_input!("{}: no kustomization.yaml", dir.display()))?;
    let text = std::fs::read_to_string(&file)
        .map_err(|e| bad_input!("cannot read {}: {e}", file.display()))?;
    let value: Value = serde_saphyr::from_str(&text)
        .map_err(|e| bad_input!("{}: not valid YAML: {e}", file.display()))?;
    let Value::Object(map) = value else {
        return Err(bad_input!(
            "{}: not a Kustomization mapping",
            file.display()
        ));
    };
    if let Some(field) = map.keys().find(|k| !SUPPORTED.contains(&k.as_str())) {
        return Err(bad_input!(
            "{}: `{field}` is not supported by spin-aks's built-in Kustomize (it handles {}); render the directory with `kubectl kustomize` into a directory of YAML and pass that with --dir",
            file.display(),
            SUPPORTED[2..].join(", ")
        ));
    }
    Ok((file, map))
}

fn list<'a>(
    map: &'a Map<String, Value>,
    field: &str,
    at: &dyn Fn(&str) -> String,
) -> anyhow::Result<&'a [Value]> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(bad_input!("{} must be a list", at(field))),
    }
}

fn strings(
    map: &Map<String, Value>,
    field: &str,
    at: &dyn Fn(&str) -> String,
) -> anyhow::Result<Vec<String>> {
    list(map, field, at)?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad_input!("{} must list strings, found {v}", at(field)))
        })
        .collect()
}

fn object<'a>(value: &'a Value, at: &str) -> anyhow::Result<&'a Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| bad_input!("{at} must be a mapping"))
}

/// A file or a directory holding a kustomization, as kustomize's default load restrictor
/// (`LoadRestrictionsRootOnly`) allows them: a file in or below the kustomization's directory
/// (links resolved), a directory by a relative path, anywhere but around a kustomization that led
/// here; remote resources are refused.
fn load_resource(
    root: &Root,
    resource: &str,
    at: &str,
    visited: &mut Vec<PathBuf>,
) -> anyhow::Result<Built> {
    if resource.contains("://") || resource.starts_with("github.com/") {
        return Err(bad_input!(
            "{at}: remote resource `{resource}` is not supported; vendor it into the directory"
        ));
    }
    let shown = root.shown.join(resource);
    if !root.real.join(resource).is_dir() {
        let file = file_in_root(root, resource, at)?;
        let objects = read_documents(&file)?;
        let files = vec![shown; objects.len()];
        return Ok(Built { objects, files });
    }
    if Path::new(resource).is_absolute() {
        return Err(bad_input!(
            "{at}: `{resource}` is an absolute directory, which kustomize refuses; name it relative to {}",
            root.shown.display()
        ));
    }
    if !is_kustomization(&shown) {
        return Err(bad_input!(
            "{at}: `{resource}` is a directory without a kustomization.yaml"
        ));
    }
    let real = (root.real.join(resource).canonicalize())
        .map_err(|e| bad_input!("{at}: cannot read `{resource}`: {e}"))?;
    if let Some(first) = visited.iter().position(|seen| seen.starts_with(&real)) {
        let cycle: Vec<String> = (visited[first..].iter().chain([&real]))
            .map(|dir| dir.display().to_string())
            .collect();
        return Err(bad_input!(
            "{at}: `{resource}` makes a cycle ({}): a kustomization cannot include itself or a directory around it; remove the entry",
            cycle.join(" → ")
        ));
    }
    // kustomize names a base by its resolved path too.
    build_root(
        &Root {
            shown: &real,
            real: &real,
        },
        visited,
    )
}

/// The file `value` names for a kustomization, refused (as kustomize refuses it) unless it lies
/// in or below the kustomization's directory once links are resolved.
fn file_in_root(root: &Root, value: &str, at: &str) -> anyhow::Result<PathBuf> {
    let path = root.real.join(value);
    let real = match path.canonicalize() {
        Ok(real) if real.is_file() => real,
        Ok(_) | Err(_) if !path.exists() => {
            return Err(bad_input!("{at}: `{value}` does not exist"))
        }
        Ok(_) => return Err(bad_input!("{at}: `{value}` is not a file")),
        Err(e) => return Err(bad_input!("{at}: cannot read `{value}`: {e}")),
    };
    if !real.starts_with(root.real) {
        return Err(bad_input!(
            "{at}: `{value}` is outside {} (kustomize reads files only in or below a kustomization's directory, links resolved); move the file under it, or list a directory with a kustomization of its own under `resources`",
            root.shown.display()
        ));
    }
    Ok(real)
}

fn read_patch_file(root: &Root, path: &str, at: &str) -> anyhow::Result<Value> {
    let file = file_in_root(root, path, at)?;
    let text = std::fs::read_to_string(&file)
        .map_err(|e| bad_input!("{at}: cannot read `{path}`: {e}"))?;
    serde_saphyr::from_str(&text).map_err(|e| bad_input!("{at}: `{path}` is not valid YAML: {e}"))
}

/// The patch of a `patches`/`patchesJson6902` entry: inline `patch`, or the file at `path`.
fn patch_body(root: &Root, entry: &Value, at: &str) -> anyhow::Result<Value> {
    match (entry["patch"].as_str(), entry["path"].as_str()) {
        (Some(text), None) => {
            serde_saphyr::from_str(text).map_err(|e| bad_input!("{at}: inline patch: {e}"))
        }
        (None, Some(path)) => read_patch_file(root, path, at),
        _ => Err(bad_input!(
            "{at}: each entry needs exactly one of `patch` or `path`"
        )),
    }
}

/// Applies one patch to the objects its target (or, for a merge patch, its own kind and name) selects.
fn apply_patch(
    objects: &mut [Value],
    patch: &Value,
    target: Option<&Value>,
    at: &str,
) -> anyhow::Result<()> {
    let selector = match target {
        Some(target) => target.clone(),
        None if patch.is_object() => serde_json::json!({
            "kind": patch["kind"], "name": patch["metadata"]["name"],
        }),
        None => return Err(bad_input!("{at}: a JSON 6902 patch needs a `target`")),
    };
    let mut matched = 0;
    for object in objects.iter_mut().filter(|o| selects(&selector, o)) {
        matched += 1;
        match patch {
            Value::Array(operations) => {
                patch::json6902(object, operations).map_err(|e| bad_input!("{at}: {e}"))?
            }
            _ => patch::strategic_merge(object, &without_identity(patch)),
        }
    }
    if matched == 0 {
        return Err(bad_input!(
            "{at}: the patch for {} matches no resource",
            describe(&selector)
        ));
    }
    Ok(())
}

/// A merge patch's own apiVersion/kind/name identify its target; they are not merged.
fn without_identity(patch: &Value) -> Value {
    let mut patch = patch.clone();
    if let Some(map) = patch.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
    }
    if let Some(meta) = patch["metadata"].as_object_mut() {
        meta.remove("name");
        meta.remove("namespace");
    }
    patch
}

fn selects(target: &Value, object: &Value) -> bool {
    let (group, version) = match object["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .split_once('/')
    {
        Some((g, v)) => (g, v),
        None => ("", object["apiVersion"].as_str().unwrap_or_default()),
    };
    let same = |field: &str, actual: &str| target[field].as_str().is_none_or(|want| want == actual);
    same("group", group)
        && same("version", version)
        && same("kind", object["kind"].as_str().unwrap_or_default())
        && same(
            "name",
            object["metadata"]["name"].as_str().unwrap_or_default(),
        )
        && same(
            "namespace",
            object["metadata"]["namespace"].as_str().unwrap_or_default(),
        )
        && target["labelSelector"].as_str().is_none_or(|selector| {
            selector.split(',').all(|pair| match pair.split_once('=') {
                Some((k, v)) => object["metadata"]["labels"][k.trim()] == v.trim(),
                None => false,
            })
        })
}

fn describe(selector: &Value) -> String {
    format!(
        "{} `{}`",
        selector["kind"].as_str().unwrap_or("any kind"),
        selector["name"].as_str().unwrap_or("*")
    )
}

fn set_namespace(objects: &mut [Value], namespace: &str) {
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        if !CLUSTER_SCOPED.contains(&kind) {
            object["metadata"]["namespace"] = Value::String(namespace.to_string());
        }
    }
}

/// Pod-template paths kustomize's label and annotation transformers know.
const TEMPLATE_KINDS: [&str; 5] = [
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
];

fn add_labels(objects: &mut [Value], pairs: &Map<String, Value>, selectors: bool, templates: bool) {
    for object in objects {
        merge_into(&mut object["metadata"]["labels"], pairs);
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        if templates && TEMPLATE_KINDS.contains(&kind.as_str()) {
            merge_into(&mut object["spec"]["template"]["metadata"]["labels"], pairs);
        }
        if selectors {
            if TEMPLATE_KINDS.contains(&kind.as_str()) {
                merge_into(&mut object["spec"]["selector"]["matchLabels"], pairs);
            } else if kind == "Service" {
                merge_into(&mut object["spec"]["selector"], pairs);
            }
        }
    }
}

fn add_annotations(objects: &mut [Value], pairs: &Map<String, Value>) {
    for object in objects {
        merge_into(&mut object["metadata"]["annotations"], pairs);
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        if TEMPLATE_KINDS.contains(&kind.as_str()) {
            merge_into(
                &mut object["spec"]["template"]["metadata"]["annotations"],
                pairs,
            );
        }
    }
}

fn merge_into(slot: &mut Value, pairs: &Map<String, Value>) {
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    let map = slot.as_object_mut().expect("made an object above");
    for (k, v) in pairs {
        map.insert(k.clone(), v.clone());
    }
}

/// Where images live: containers of pod templates, plus `configurations` entries `{kind, path}`.
fn image_field_specs(
    root: &Root,
    kustomization: &Map<String, Value>,
    at: &dyn Fn(&str) -> String,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut specs = Vec::new();
    for file in strings(kustomization, "configurations", at)? {
        let config = read_patch_file(root, &file, &at("configurations"))?;
        if let Some(field) = config
            .as_object()
            .and_then(|m| m.keys().find(|k| k.as_str() != "images"))
        {
            return Err(bad_input!(
                "{}: `{file}` configures `{field}`; only `images` field specs are supported",
                at("configurations")
            ));
        }
        for spec in config["images"].as_array().into_iter().flatten() {
            if let (Some(kind), Some(path)) = (spec["kind"].as_str(), spec["path"].as_str()) {
                specs.push((kind.to_string(), format!("/{path}")));
            }
        }
    }
    Ok(specs)
}

fn set_images(
    objects: &mut [Value],
    entry: &Value,
    extra_paths: &[(String, String)],
    at: &str,
) -> anyhow::Result<()> {
    let name = entry["name"]
        .as_str()
        .ok_or_else(|| bad_input!("{at}: each entry needs a `name`"))?;
    let rewrite = |current: &str| -> Option<String> {
        let parsed = ImageRef::parse(current).ok()?;
        let parsed_name = parsed.name();
        if parsed_name != name {
            return None;
        }
        let mut image = entry["newName"]
            .as_str()
            .unwrap_or(&parsed_name)
            .to_string();
        match (entry["digest"].as_str(), entry["newTag"].as_str()) {
            (Some(digest), _) => image = format!("{image}@{digest}"),
            (None, Some(tag)) => image = format!("{image}:{tag}"),
            (None, None) => {
                if let Some(tag) = parsed.tag() {
                    image = format!("{image}:{tag}");
                }
                if let Some(digest) = parsed.digest() {
                    image = format!("{image}@{digest}");
                }
            }
        }
        Some(image)
    };
    for object in objects.iter_mut() {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        for (_, path) in extra_paths.iter().filter(|(k, _)| *k == kind) {
            if let Some(slot) = object.pointer_mut(path) {
                if let Some(new) = slot.as_str().and_then(&rewrite) {
                    *slot = Value::String(new);
                }
            }
        }
        for list in [
            "/spec/template/spec/containers",
            "/spec/template/spec/initContainers",
        ] {
            for container in object
                .pointer_mut(list)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(new) = container["image"].as_str().and_then(&rewrite) {
                    container["image"] = Value::String(new);
                }
            }
        }
    }
    Ok(())
}
