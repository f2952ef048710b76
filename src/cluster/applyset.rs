//! Membership as kubectl's ApplySet (KEP-3659): a parent Secret with the set's id label, tooling and
//! contains-group-kinds annotations, and a part-of label on every member, so `--prune` and `delete`
//! find exactly what this app applied, and kubectl recognises the set.

use std::collections::BTreeSet;

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const ID_LABEL: &str = "applyset.kubernetes.io/id";
pub const PART_OF_LABEL: &str = "applyset.kubernetes.io/part-of";
pub const TOOLING_ANNOTATION: &str = "applyset.kubernetes.io/tooling";
pub const GROUP_KINDS_ANNOTATION: &str = "applyset.kubernetes.io/contains-group-kinds";

/// The set of one app in one namespace; its parent is a Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplySet {
    pub parent_name: String,
    pub namespace: String,
    pub id: String,
}

impl ApplySet {
    /// The set of the app whose objects are named `app` (parent `<app>-applyset`).
    pub fn for_app(app: &str, namespace: &str) -> Self {
        let parent_name = format!("{app}-applyset");
        let id = id(&parent_name, namespace, "Secret", "");
        ApplySet {
            parent_name,
            namespace: namespace.to_string(),
            id,
        }
    }

    /// Labels `object` as a member.
    pub fn label_member(&self, object: &mut Value) {
        if !object["metadata"]["labels"].is_object() {
            object["metadata"]["labels"] = json!({});
        }
        object["metadata"]["labels"][PART_OF_LABEL] = Value::String(self.id.clone());
    }

    /// The parent Secret listing `group_kinds`.
    pub fn parent(&self, group_kinds: &BTreeSet<String>) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.parent_name,
                "namespace": self.namespace,
                "labels": {ID_LABEL: self.id},
                "annotations": {
                    TOOLING_ANNOTATION: format!("spin-aks/v{}", env!("CARGO_PKG_VERSION")),
                    GROUP_KINDS_ANNOTATION: group_kinds.iter().cloned().collect::<Vec<_>>().join(","),
                },
            },
            "type": "Opaque",
        })
    }

    /// The group-kinds a live parent lists.
    pub fn listed_group_kinds(parent: &Value) -> BTreeSet<String> {
        parent["metadata"]["annotations"][GROUP_KINDS_ANNOTATION]
            .as_str()
            .unwrap_or_default()
            .split(',')
            .filter(|gk| !gk.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// `applyset-<base64url(sha256(<name>.<namespace>.<kind>.<group>))>-v1`, as kubectl computes it.
pub fn id(name: &str, namespace: &str, kind: &str, group: &str) -> String {
    let hash = Sha256::digest(format!("{name}.{namespace}.{kind}.{group}"));
    format!(
        "applyset-{}-v1",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash)
    )
}

/// `Kind.group`, or `Kind` for the core group: the annotation's format.
pub fn group_kind(api_version: &str, kind: &str) -> String {
    match api_version.split_once('/') {
        Some((group, _)) => format!("{kind}.{group}"),
        None => kind.to_string(),
    }
}

/// `Kind.group` back to (group, kind).
pub fn split_group_kind(group_kind: &str) -> (&str, &str) {
    match group_kind.split_once('.') {
        Some((kind, group)) => (group, kind),
        None => ("", group_kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_matches_kubectl_for_a_secret_parent() {
        // sha256("hello-applyset.demo.Secret.") in base64url without padding.
        let expected = {
            let hash = Sha256::digest(b"hello-applyset.demo.Secret.");
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash)
        };
        let set = ApplySet::for_app("hello", "demo");
        assert_eq!(set.id, format!("applyset-{expected}-v1"));
        assert_eq!(set.id.len(), "applyset-".len() + 43 + "-v1".len());
    }

    #[test]
    fn group_kinds_round_trip() {
        assert_eq!(group_kind("apps/v1", "Deployment"), "Deployment.apps");
        assert_eq!(group_kind("v1", "Secret"), "Secret");
        assert_eq!(
            split_group_kind("SpinApp.core.spinkube.dev"),
            ("core.spinkube.dev", "SpinApp")
        );
        assert_eq!(split_group_kind("Secret"), ("", "Secret"));
        let parent = ApplySet::for_app("a", "n").parent(&BTreeSet::from([
            "Secret".to_string(),
            "Deployment.apps".to_string(),
        ]));
        assert_eq!(
            parent["metadata"]["annotations"][GROUP_KINDS_ANNOTATION],
            "Deployment.apps,Secret"
        );
        assert_eq!(ApplySet::listed_group_kinds(&parent).len(), 2);
    }
}
