//! The `kube` renderer: every object in one multi-document YAML file, ready for `kubectl apply -f`.
//! This is the reference rendering the Kustomize and Helm outputs are checked against.

use super::{object_values, objects_file, yaml_stream, GeneratedFile};
use crate::workload::objects::Workload;

pub fn render(workload: &Workload) -> Vec<GeneratedFile> {
    vec![GeneratedFile::yaml(
        objects_file(workload).to_string_lossy(),
        yaml_stream(&object_values(workload)),
    )]
}
