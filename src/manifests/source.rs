//! Where apply's objects come from: `--dir` (plain YAML, a Kustomize directory built natively, or a
//! Helm chart), else `<app dir>/deploy` when scaffold wrote it, else the objects scaffold would write.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::documents::{is_kustomization, read_documents};
use super::kustomize;
use crate::bad_input;
use crate::oci::reference::ImageRef;

/// The marker scaffold leaves in every directory it writes.
const SCAFFOLD_MARKER: &str = ".spin-aks-scaffold";

/// The objects to apply, or a chart to hand to helm.
#[derive(Debug)]
pub enum Objects {
    Manifests(Vec<Value>),
    HelmChart(PathBuf),
}

/// `<app dir>/deploy` when scaffold wrote it.
pub fn scaffolded_dir(app_dir: &Path) -> Option<PathBuf> {
    let dir = app_dir.join("deploy");
    dir.join(SCAFFOLD_MARKER).is_dir().then_some(dir)
}

/// Reads the objects in `dir`: a chart, a Kustomize directory (or scaffold's tree with exactly one
/// overlay), or the YAML files directly in it.
pub fn load_dir(dir: &Path) -> anyhow::Result<Objects> {
    Ok(match load_traced(dir)? {
        Some(traced) => Objects::Manifests(traced.into_iter().map(|(_, o)| o).collect()),
        None => Objects::HelmChart(dir.to_path_buf()),
    })
}

/// [`load_dir`]'s objects, each with the file it is read from; `None` for a Helm chart.
pub fn load_traced(dir: &Path) -> anyhow::Result<Option<Vec<(PathBuf, Value)>>> {
    if !dir.is_dir() {
        return Err(bad_input!(
            "--dir {}: not a directory; pass the directory scaffold wrote",
            dir.display()
        ));
    }
    if dir.join("Chart.yaml").is_file() {
        return Ok(None);
    }
    if is_kustomization(dir) {
        return Ok(Some(kustomize::build(dir)?));
    }
    if let Some(overlay) = single_overlay(dir)? {
        return Ok(Some(kustomize::build(&overlay)?));
    }
    let files = yaml_files(dir)?;
    if files.is_empty() {
        return Err(bad_input!(
            "{}: no YAML files, kustomization or Chart.yaml; write one with `spin-aks scaffold`",
            dir.display()
        ));
    }
    let mut objects = Vec::new();
    for file in files {
        let read = read_documents(&file)?;
        objects.extend(read.into_iter().map(|o| (file.clone(), o)));
    }
    Ok(Some(objects))
}

/// Scaffold's Kustomize tree (`base/`, `overlays/<env>/`): the overlay, when there is one.
fn single_overlay(dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    let overlays = dir.join("overlays");
    if !overlays.is_dir() {
        return Ok(None);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(&overlays)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_kustomization(p))
        .collect();
    found.sort();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(bad_input!(
            "{} has several overlays ({}); pass --dir {}/<overlay>",
            dir.display(),
            found
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
                .join(", "),
            overlays.display()
        )),
    }
}

/// `*.yaml` / `*.yml` directly in `dir`, sorted, hidden files skipped.
fn yaml_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Points the app's workload at `image`: a SpinApp's `spec.image`, and in pod templates the
/// containers running the same repository (or the only container). Returns how many were set.
pub fn set_image(objects: &mut [Value], image: &ImageRef) -> usize {
    let mut set = 0;
    for object in objects.iter_mut() {
        if object["kind"] == "SpinApp" {
            object["spec"]["image"] = Value::String(image.to_string());
            set += 1;
        } else if let Some(containers) = object
            .pointer_mut("/spec/template/spec/containers")
            .and_then(Value::as_array_mut)
        {
            let only = containers.len() == 1;
            for container in containers.iter_mut() {
                let current = container["image"].as_str().unwrap_or_default();
                let same_repo = ImageRef::parse(current).is_ok_and(|c| c.name() == image.name());
                if only || same_repo {
                    container["image"] = Value::String(image.to_string());
                    set += 1;
                }
            }
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_goes_to_spinapps_and_matching_containers() {
        let image = ImageRef::parse("r.example/hello@sha256:".to_string().as_str()).err();
        assert!(image.is_some(), "a short digest is refused");
        let image = ImageRef::parse(&format!("r.example/hello@sha256:{}", "a".repeat(64))).unwrap();
        let mut objects = vec![
            json!({"kind": "SpinApp", "spec": {"image": "hello:1"}}),
            json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "r.example/hello:1"},
                {"name": "sidecar", "image": "other/proxy:2"}
            ]}}}}),
            json!({"kind": "Service", "spec": {}}),
        ];
        assert_eq!(set_image(&mut objects, &image), 2);
        assert_eq!(objects[0]["spec"]["image"], image.to_string());
        assert_eq!(
            objects[1]["spec"]["template"]["spec"]["containers"][0]["image"],
            image.to_string()
        );
        assert_eq!(
            objects[1]["spec"]["template"]["spec"]["containers"][1]["image"],
            "other/proxy:2"
        );
    }
}
