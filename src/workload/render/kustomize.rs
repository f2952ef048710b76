//! The `kustomize` renderer: `base/` with the objects (no namespace) and `overlays/<env>/` that sets
//! the image through the `images:` transformer and the namespace.

use serde_json::{json, Value};

use super::{object_values, objects_file, yaml_stream, GeneratedFile, RenderOptions};
use crate::workload::objects::Workload;

pub fn render(workload: &Workload, options: &RenderOptions) -> Vec<GeneratedFile> {
    let objects_file = objects_file(workload).to_string_lossy().into_owned();
    let mut objects = object_values(workload);
    for object in &mut objects {
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("namespace");
        }
    }
    let base = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [objects_file],
    });

    let name = options.image.name();
    let mut image = json!({ "name": name, "newName": name });
    if let Some(tag) = options.image.tag() {
        image["newTag"] = json!(tag);
    }
    if let Some(digest) = options.image.digest() {
        image["digest"] = json!(digest);
    }
    let mut overlay = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../../base"],
        "images": [image],
    });
    let mut files = vec![
        GeneratedFile::yaml(format!("base/{objects_file}"), yaml_stream(&objects)),
        GeneratedFile::yaml("base/kustomization.yaml", yaml_stream(&[base])),
    ];
    let overlay_dir = format!("overlays/{}", options.overlay);
    if let Some(namespace) = &options.namespace {
        overlay["namespace"] = json!(namespace);
    }
    if objects.iter().any(|o| o["kind"] == "SpinApp") {
        // The images transformer only knows Pod templates; teach it where a SpinApp keeps its image.
        overlay["configurations"] = json!(["kustomizeconfig.yaml"]);
        let config: Value = json!({ "images": [{ "kind": "SpinApp", "path": "spec/image" }] });
        files.push(GeneratedFile::yaml(
            format!("{overlay_dir}/kustomizeconfig.yaml"),
            yaml_stream(&[config]),
        ));
    }
    files.push(GeneratedFile::yaml(
        format!("{overlay_dir}/kustomization.yaml"),
        yaml_stream(&[overlay]),
    ));
    files
}
