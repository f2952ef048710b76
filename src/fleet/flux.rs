//! The two Flux objects that make a cluster follow the deploy artifact: an OCIRepository pulling
//! `<repository>:<env>` and a Kustomization applying it, healthy when the workload runs its image.

use std::time::Duration;

use serde_json::{json, Value};

use crate::oci::flux_artifact::CONTENT_MEDIA_TYPE;
use crate::registry::host;

pub const SOURCE_API: &str = "source.toolkit.fluxcd.io/v1";
pub const KUSTOMIZE_API: &str = "kustomize.toolkit.fluxcd.io/v1";

/// How a cluster follows the artifact.
#[derive(Clone, Debug)]
pub struct Follow<'a> {
    /// The app's name: both objects are named after it, in its namespace.
    pub name: &'a str,
    pub namespace: &'a str,
    /// `registry/repository` of the deploy artifact.
    pub repository: &'a str,
    pub env: &'a str,
    pub interval: Duration,
    pub timeout: Duration,
    /// Plain HTTP to the registry (always for a loopback one).
    pub insecure: bool,
}

/// The OCIRepository: the env tag, Flux's content layer extracted; ACR pulled with the
/// cluster's workload identity (`provider: azure`).
pub fn source(follow: &Follow) -> Value {
    let registry = follow.repository.split('/').next().unwrap_or_default();
    let mut spec = json!({
        "interval": seconds(follow.interval),
        "url": format!("oci://{}", follow.repository),
        "ref": {"tag": follow.env},
        "layerSelector": {"mediaType": CONTENT_MEDIA_TYPE, "operation": "extract"},
    });
    if follow.insecure || host::is_loopback(registry) {
        spec["insecure"] = json!(true);
    }
    if host::is_acr(registry) {
        spec["provider"] = json!("azure");
    }
    json!({
        "apiVersion": SOURCE_API,
        "kind": "OCIRepository",
        "metadata": {"name": follow.name, "namespace": follow.namespace},
        "spec": spec,
    })
}

/// The Kustomization: server-side applies the artifact into the namespace, prunes what a new
/// artifact drops, and is healthy only when each workload rolled out: for a SpinApp the operator's
/// Deployment of the same name, whose template runs the SpinApp's pinned image, with every replica
/// updated and ready (kstatus); the SpinApp itself must exist.
pub fn kustomization(follow: &Follow, objects: &[Value]) -> Value {
    let namespace = follow.namespace;
    let check = |api_version: &Value, kind: &str, name: &str| json!({"apiVersion": api_version, "kind": kind, "name": name, "namespace": namespace});
    let mut checks = Vec::new();
    for object in objects {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        match object["kind"].as_str() {
            Some("SpinApp") => {
                checks.push(check(&object["apiVersion"], "SpinApp", name));
                checks.push(check(&json!("apps/v1"), "Deployment", name));
            }
            Some("Deployment") => checks.push(check(&json!("apps/v1"), "Deployment", name)),
            _ => {}
        }
    }
    json!({
        "apiVersion": KUSTOMIZE_API,
        "kind": "Kustomization",
        "metadata": {"name": follow.name, "namespace": namespace},
        "spec": {
            "interval": seconds(follow.interval),
            "retryInterval": seconds(follow.interval.min(Duration::from_secs(30))),
            "sourceRef": {"kind": "OCIRepository", "name": follow.name},
            "path": "./",
            "prune": true,
            "targetNamespace": namespace,
            "timeout": seconds(follow.timeout),
            "healthChecks": checks,
        },
    })
}

/// The key of the one kustomization of an AKS Flux configuration; the extension names the
/// in-cluster Kustomization `<configuration>-<key>`.
pub const AKS_KUSTOMIZATION: &str = "objects";

/// The Kustomization that applies the app on a cluster: ours, or the one the AKS extension makes.
pub fn kustomization_name(name: &str, aks: bool) -> String {
    if aks {
        format!("{name}-{AKS_KUSTOMIZATION}")
    } else {
        name.to_string()
    }
}

/// The same as ARM's `fluxConfigurations` properties (the AKS Flux extension): a namespaced
/// configuration with an OCIRepository source (ACR through the cluster's workload identity) and
/// one kustomization that waits for what it applied.
pub fn configuration(follow: &Follow) -> Value {
    let registry = follow.repository.split('/').next().unwrap_or_default();
    let mut source = json!({
        "url": format!("oci://{}", follow.repository),
        "repositoryRef": {"tag": follow.env},
        "syncIntervalInSeconds": follow.interval.as_secs().max(1),
        "timeoutInSeconds": 600,
        "layerSelector": {"mediaType": CONTENT_MEDIA_TYPE, "operation": "extract"},
        "useWorkloadIdentity": host::is_acr(registry),
    });
    if follow.insecure || host::is_loopback(registry) {
        source["insecure"] = json!(true);
    }
    json!({
        "scope": "namespace",
        "namespace": follow.namespace,
        "sourceKind": "OCIRepository",
        "suspend": false,
        "ociRepository": source,
        "kustomizations": {AKS_KUSTOMIZATION: {
            "path": "./",
            "prune": true,
            "wait": true,
            "syncIntervalInSeconds": follow.interval.as_secs().max(1),
            "retryIntervalInSeconds": follow.interval.as_secs().clamp(1, 30),
            "timeoutInSeconds": follow.timeout.as_secs().max(1),
        }},
    })
}

/// A Go duration Flux parses: whole seconds.
fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follow(repository: &str) -> Follow<'_> {
        Follow {
            name: "hello",
            namespace: "shop",
            repository,
            env: "prod",
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(300),
            insecure: false,
        }
    }

    #[test]
    fn loopback_registries_are_insecure_and_acr_pulls_with_workload_identity() {
        let local = source(&follow("127.0.0.1:5000/hello-deploy"));
        assert_eq!(local["spec"]["insecure"], true);
        assert_eq!(local["spec"]["url"], "oci://127.0.0.1:5000/hello-deploy");
        assert_eq!(local["spec"]["ref"]["tag"], "prod");
        let acr = source(&follow("myacr.azurecr.io/hello-deploy"));
        assert_eq!(acr["spec"]["provider"], "azure");
        assert!(acr["spec"].get("insecure").is_none());
    }

    #[test]
    fn a_spinapp_is_checked_through_itself_and_its_deployment() {
        let objects = [
            json!({"apiVersion": "core.spinkube.dev/v1alpha1", "kind": "SpinApp", "metadata": {"name": "hello"}}),
        ];
        let k = kustomization(&follow("r.example/hello-deploy"), &objects);
        let kinds: Vec<&str> = k["spec"]["healthChecks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["SpinApp", "Deployment"]);
        assert_eq!(k["spec"]["targetNamespace"], "shop");
    }
}
