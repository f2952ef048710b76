//! Holds the types of a workload: the options that shape its objects (besides the app) and what
//! building it yields, from the typed objects and their variables to the finished Workload.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use serde::Serialize;

use crate::azure::vault::Vault;
use crate::oci::reference::ImageRef;
use crate::workload::key_vault::{
    IdentityOptions, KeyVaultMode, KeyVaultOptions, SecretProviderClass,
};
use crate::workload::runtime_config::RuntimeStore;
use crate::workload::spinapp::SpinApp;

/// What runs the app in the cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// A SpinKube SpinApp; the operator creates the Deployment and Service
    #[default]
    Spinapp,
    /// A Deployment on the wasmtime-spin-v2 RuntimeClass and a Service (no SpinKube needed)
    Deployment,
}

impl WorkloadKind {
    /// The name in `--workload` and in JSON reports.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Spinapp => "spinapp",
            WorkloadKind::Deployment => "deployment",
        }
    }
}

/// CPU and memory limits and requests, as Kubernetes quantities.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceOptions {
    pub cpu_limit: Option<String>,
    pub memory_limit: Option<String>,
    pub cpu_request: Option<String>,
    pub memory_request: Option<String>,
}

/// A HorizontalPodAutoscaler between the replica count and `max_replicas`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Autoscale {
    pub max_replicas: i32,
    pub target_cpu_utilization: i32,
}

/// Everything besides the app that shapes the objects: the workload flags, and what the command
/// decided for this deploy (the kind, the image, the namespace, the vault and identity resolved).
#[derive(Clone, Debug)]
pub struct WorkloadOptions {
    pub kind: WorkloadKind,
    pub image: ImageRef,
    pub namespace: Option<String>,
    pub key_vault: Option<KeyVaultOptions>,
    /// The workload identity (needed by Key Vault and keyless Cosmos DB stores); its
    /// ServiceAccount is generated and the pods run as it.
    pub identity: Option<IdentityOptions>,
    /// The flags: replicas, runtime class, stores, resources, autoscaling, probes, pull secrets;
    /// `settings.service_account` is the pods' ServiceAccount when they have no workload identity.
    pub settings: WorkloadSettings,
}

/// The workload flags, each validated: made only by `cli` (`WorkloadArgs::settings`), and read by
/// the object builders through `WorkloadOptions::settings`.
#[derive(Clone, Debug)]
pub struct WorkloadSettings {
    /// SpinApp or Deployment; asked for (scaffold) or the default when not given.
    pub kind: Option<WorkloadKind>,
    pub replicas: i32,
    pub runtime_class: String,
    pub key_vault: Option<Vault>,
    pub key_vault_mode: KeyVaultMode,
    pub identity_client_id: Option<String>,
    pub tenant_id: Option<String>,
    pub service_account: Option<String>,
    pub kv_stores: Vec<RuntimeStore>,
    /// SQLite stores, libsql tokens taken from the environment.
    pub sqlite: Vec<RuntimeStore>,
    pub resources: ResourceOptions,
    /// With at least the replicas as maximum and a CPU request to scale on.
    pub autoscale: Option<Autoscale>,
    pub health_path: Option<String>,
    pub image_pull_secrets: Vec<String>,
}

#[cfg(test)]
impl WorkloadSettings {
    /// The settings of a bare `scaffold` with no workload flags, for the builders' tests.
    pub(crate) fn for_tests() -> Self {
        WorkloadSettings {
            kind: None,
            replicas: 2,
            runtime_class: super::naming::DEFAULT_RUNTIME_CLASS.to_string(),
            key_vault: None,
            key_vault_mode: KeyVaultMode::default(),
            identity_client_id: None,
            tenant_id: None,
            service_account: None,
            kv_stores: Vec::new(),
            sqlite: Vec::new(),
            resources: ResourceOptions::default(),
            autoscale: None,
            health_path: None,
            image_pull_secrets: Vec::new(),
        }
    }
}

/// One object of the workload, typed.
#[derive(Clone, Debug)]
pub enum Object {
    SpinApp(Box<SpinApp>),
    Deployment(Box<Deployment>),
    Service(Box<Service>),
    Secret(Box<Secret>),
    Hpa(Box<HorizontalPodAutoscaler>),
    ServiceAccount(Box<ServiceAccount>),
    SecretProviderClass(Box<SecretProviderClass>),
}

impl Object {
    /// The object as a JSON value (apiVersion and kind included), the form renderers work on.
    pub fn to_value(&self) -> serde_json::Value {
        let value = match self {
            Object::SpinApp(o) => serde_json::to_value(o),
            Object::Deployment(o) => serde_json::to_value(o),
            Object::Service(o) => serde_json::to_value(o),
            Object::Secret(o) => serde_json::to_value(o),
            Object::Hpa(o) => serde_json::to_value(o),
            Object::ServiceAccount(o) => serde_json::to_value(o),
            Object::SecretProviderClass(o) => serde_json::to_value(o),
        };
        value.expect("Kubernetes objects serialize to JSON")
    }
}

/// A variable of the workload: a literal, or taken from a Secret key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadVariable {
    /// The Spin variable name (lowercase).
    pub name: String,
    pub source: VariableSource,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VariableSource {
    Value(String),
    /// `secret`/`key`; `optional` when the app has a default to fall back on.
    SecretKey {
        secret: String,
        key: String,
        optional: bool,
    },
}

/// The built objects, the workload's name, and what the user should know.
#[derive(Clone, Debug)]
pub struct Workload {
    pub name: String,
    pub objects: Vec<Object>,
    /// Objects carrying secret values (a runtime config with a Redis URL or a libsql token):
    /// sent to the API server by apply, never written to a file.
    pub secrets: Vec<Object>,
    pub warnings: Vec<String>,
}

impl Workload {
    /// Why objects holding secret values are missing from the files, and who creates them.
    pub fn unwritten_secrets(&self) -> Vec<String> {
        self.secrets
        .iter()
        .map(|secret| {
            let name = secret.to_value()["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            format!(
                "the runtime config holds a Redis URL or a libsql token, so Secret {name} is not written to a file: `spin-aks apply` (or `up`) with the same --kv-store/--sqlite flags sends it to the cluster; without spin-aks: kubectl create secret generic {name} --from-file=runtime-config.toml=<file>"
            )
        })
        .collect()
    }
}
