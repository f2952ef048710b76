//! The SpinKube `SpinApp` custom resource (`core.spinkube.dev/v1alpha1`) as a typed Rust value.
//! The whole spec as spin-operator v0.6.1 defines it (docs/cluster.md), so the CRD schema can be generated from it (`SpinApp::crd()`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVarSource, LocalObjectReference, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The executor SpinKube installs for containerd-shim-spin.
pub const SHIM_EXECUTOR: &str = "containerd-shim-spin";

/// A Spin application run by the SpinKube operator.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "core.spinkube.dev",
    version = "v1alpha1",
    kind = "SpinApp",
    namespaced,
    status = "SpinAppStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct SpinAppSpec {
    /// The SpinAppExecutor that runs the app, usually `containerd-shim-spin`.
    pub executor: String,
    /// The OCI reference of the app.
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// At least 1 unless autoscaling is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_autoscaling: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<HealthChecks>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_config: Option<RuntimeConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<SpinVar>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deployment_annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// The subset of components to run; all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Per-invocation limits applied by the executor, by name (e.g. `memory: 64Mi`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub invocation_limits: BTreeMap<String, String>,
}

/// Readiness and liveness probes.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct HealthChecks {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<HealthProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<HealthProbe>,
}

/// One HTTP probe; SpinKube's defaults are 10 s delay, 1 s timeout, 10 s period, 1 success, 3 failures.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthProbe {
    pub http_get: HttpGet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i32>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpGet {
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<HttpHeader>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

/// Spin runtime configuration: a Secret holding `runtime-config.toml`, or typed entries.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfig {
    /// Name of a Secret with the key `runtime-config.toml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_from_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_value_stores: Vec<RuntimeConfigEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sqlite_databases: Vec<RuntimeConfigEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_compute: Option<LlmCompute>,
}

/// A key-value store or database: `{name, type, options}`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct RuntimeConfigEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<RuntimeConfigOption>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfigOption {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvVarSource>,
}

/// Where LLM inference runs.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LlmCompute {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<RuntimeConfigOption>,
}

/// A Spin variable: a literal value or a reference (Secret, ConfigMap, field).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SpinVar {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvVarSource>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Quantity>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, Quantity>,
}

/// What the operator reports.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SpinAppStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub ready_replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// The scheduler currently placing this app (newer operators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_scheduler: Option<String>,
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;

    #[test]
    fn crd_schema_is_generated_for_the_spinkube_group() {
        let crd = SpinApp::crd();
        assert_eq!(crd.spec.group, "core.spinkube.dev");
        assert_eq!(crd.spec.names.kind, "SpinApp");
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
        let spec = &schema["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(spec["required"], serde_json::json!(["executor", "image"]));
        let properties = &spec["properties"];
        assert!(properties["runtimeConfig"]["properties"]["loadFromSecret"].is_object());
        // As in the operator's CRD: a map of limit name to value.
        assert_eq!(
            properties["invocationLimits"]["additionalProperties"]["type"],
            "string"
        );
        let fields: Vec<&str> = properties
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for field in [
            "checks",
            "components",
            "deploymentAnnotations",
            "enableAutoscaling",
            "executor",
            "image",
            "imagePullSecrets",
            "invocationLimits",
            "podAnnotations",
            "podLabels",
            "replicas",
            "resources",
            "runtimeConfig",
            "serviceAccountName",
            "serviceAnnotations",
            "variables",
            "volumeMounts",
            "volumes",
        ] {
            assert!(
                fields.contains(&field),
                "spec.{field} missing from the schema"
            );
        }
    }
}
