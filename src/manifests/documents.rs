//! Reading the user's object files: every YAML document of a file checked to be a Kubernetes
//! object, and whether a directory is a Kustomization.

use std::path::Path;

use serde_json::Value;

use crate::bad_input;

const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Whether `dir` holds a Kustomization file.
pub fn is_kustomization(dir: &Path) -> bool {
    KUSTOMIZATION_FILES.iter().any(|f| dir.join(f).is_file())
}

/// Every non-empty YAML document of `file`, each checked to be a Kubernetes object.
pub fn read_documents(file: &Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| bad_input!("cannot read {}: {e}", file.display()))?;
    parse_documents(&text, &file.display().to_string())
}

/// Every non-empty YAML document of `text` (named `what` in errors), each checked to be a
/// Kubernetes object.
pub fn parse_documents(text: &str, what: &str) -> anyhow::Result<Vec<Value>> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| bad_input!("{what}: not valid YAML: {e}"))?;
    let mut objects = Vec::new();
    for (i, document) in documents.into_iter().enumerate() {
        if document.is_null() {
            continue;
        }
        check_object(&document)
            .map_err(|problem| bad_input!("{what} (document {}): {problem}", i + 1))?;
        objects.push(document);
    }
    Ok(objects)
}

fn check_object(document: &Value) -> Result<(), String> {
    if !document.is_object() {
        return Err("not a Kubernetes object (a mapping with apiVersion, kind, metadata)".into());
    }
    for field in ["apiVersion", "kind"] {
        if !document[field].is_string() {
            return Err(format!("`{field}` is missing or not a string"));
        }
    }
    if !document["metadata"]["name"].is_string() {
        return Err("`metadata.name` is missing".into());
    }
    Ok(())
}
