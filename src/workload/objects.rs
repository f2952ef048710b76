//! The workload objects for an app: a SpinApp, or a Deployment and Service, plus what they reference
//! (runtime-config Secret, Key Vault objects, HPA). Typed values built from the app model and explicit options only.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, KeyToPath, LocalObjectReference,
    PodSpec, PodTemplateSpec, Probe, ResourceRequirements, Secret, SecretKeySelector,
    SecretVolumeSource, Service, ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use crate::app::{App, Component};
use crate::oci::reference::ImageRef;
use crate::workload::key_vault::{
    self, IdentityOptions, KeyVaultMode, KeyVaultOptions, SecretProviderClass,
};
use crate::workload::runtime_config::{libsql_token_env, Backend, RuntimeConfigToml, RuntimeStore};
use crate::workload::spinapp::{
    self, HealthChecks, HealthProbe, HttpGet, Resources, SpinApp, SpinAppSpec, SpinVar,
};

/// The runtime class containerd-shim-spin registers.
pub const DEFAULT_RUNTIME_CLASS: &str = "wasmtime-spin-v2";
pub const MANAGED_BY: &str = "spin-aks";
const NAME_LABEL: &str = "app.kubernetes.io/name";
const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
const WORKLOAD_IDENTITY_LABEL: &str = "azure.workload.identity/use";
const RUNTIME_CONFIG_KEY: &str = "runtime-config.toml";
const HTTP_PORT: i32 = 80;

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

/// Everything besides the app that shapes the objects.
#[derive(Clone, Debug)]
pub struct WorkloadOptions {
    pub kind: WorkloadKind,
    pub image: ImageRef,
    pub namespace: Option<String>,
    pub replicas: i32,
    pub runtime_class: String,
    pub key_vault: Option<KeyVaultOptions>,
    /// The workload identity (needed by Key Vault and keyless Cosmos DB stores); its
    /// ServiceAccount is generated and the pods run as it.
    pub identity: Option<IdentityOptions>,
    /// The pods' ServiceAccount when they have no workload identity.
    pub service_account: Option<String>,
    pub kv_stores: Vec<RuntimeStore>,
    pub sqlite: Vec<RuntimeStore>,
    pub resources: ResourceOptions,
    pub autoscale: Option<Autoscale>,
    pub health_path: Option<String>,
    pub image_pull_secrets: Vec<String>,
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

/// Turns an app name into a DNS-1123 label: lowercase, `-` for anything else, at most 63 characters.
pub fn dns_name(app_name: &str) -> String {
    let mut name = String::new();
    for c in app_name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let mut name: String = name.trim_matches('-').chars().take(63).collect();
    while name.ends_with('-') {
        name.pop();
    }
    if name.is_empty() {
        "spin-app".to_string()
    } else {
        name
    }
}

/// Builds the workload for `app`.
pub fn build(app: &App, options: &WorkloadOptions) -> Workload {
    let name = dns_name(&app.name);
    let mut warnings = Vec::new();
    if name != app.name {
        warnings.push(format!(
            "the app name `{}` is not a valid Kubernetes name; the objects are named `{name}`",
            app.name
        ));
    }
    store_warnings(app, options, &mut warnings);
    let variables = variables(app, options, &name, &mut warnings);

    let labels = BTreeMap::from([
        (NAME_LABEL.to_string(), name.clone()),
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
    ]);
    let meta = |object_name: String| ObjectMeta {
        name: Some(object_name),
        namespace: options.namespace.clone(),
        labels: Some(labels.clone()),
        ..ObjectMeta::default()
    };

    let runtime_config = RuntimeConfigToml {
        key_vault: options
            .key_vault
            .as_ref()
            .filter(|kv| kv.mode == KeyVaultMode::Provider)
            .map(|kv| kv.vault.url.as_str()),
        kv_stores: &options.kv_stores,
        sqlite: &options.sqlite,
    };
    let runtime_config_secret =
        (!runtime_config.is_empty()).then(|| format!("{name}-runtime-config"));

    let mut objects = Vec::new();
    let mut secrets = Vec::new();
    if let Some(secret_name) = &runtime_config_secret {
        let secret = Object::Secret(Box::new(Secret {
            metadata: meta(secret_name.clone()),
            type_: Some("Opaque".to_string()),
            string_data: Some(BTreeMap::from([(
                RUNTIME_CONFIG_KEY.to_string(),
                runtime_config.render(),
            )])),
            ..Secret::default()
        }));
        match runtime_config.holds_secrets() {
            true => secrets.push(secret),
            false => objects.push(secret),
        }
    }
    let mut pod = PodExtras {
        runtime_config_secret,
        ..PodExtras::default()
    };
    pod.service_account = options.service_account.clone();
    if let Some(identity) = &options.identity {
        pod.service_account = Some(identity.service_account.clone());
        pod.labels
            .insert(WORKLOAD_IDENTITY_LABEL.to_string(), "true".to_string());
        objects.push(Object::ServiceAccount(Box::new(
            key_vault::service_account(identity, meta(identity.service_account.clone())),
        )));
    }
    let mapped = vault_variables(&variables, &name);
    if let (Some(kv), Some(identity)) = (&options.key_vault, &options.identity) {
        if kv.mode == KeyVaultMode::Csi && !mapped.is_empty() {
            let metadata = meta(key_vault::synced_secret(&name));
            objects.push(Object::SecretProviderClass(Box::new(
                key_vault::provider_class(kv, identity, metadata, &mapped),
            )));
            pod.volumes.push(key_vault::csi_volume(&name));
        }
    }
    match options.kind {
        WorkloadKind::Spinapp => {
            let spec = spinapp_spec(options, &variables, pod);
            objects.push(Object::SpinApp(Box::new(SpinApp {
                metadata: meta(name.clone()),
                spec,
                status: None,
            })));
        }
        WorkloadKind::Deployment => {
            let deployment = deployment(options, &name, &labels, &variables, pod);
            objects.push(Object::Deployment(Box::new(Deployment {
                metadata: meta(name.clone()),
                spec: Some(deployment),
                status: None,
            })));
            objects.push(Object::Service(Box::new(Service {
                metadata: meta(name.clone()),
                spec: Some(ServiceSpec {
                    selector: Some(BTreeMap::from([(NAME_LABEL.to_string(), name.clone())])),
                    ports: Some(vec![ServicePort {
                        name: Some("http-app".to_string()),
                        port: HTTP_PORT,
                        target_port: Some(IntOrString::Int(HTTP_PORT)),
                        protocol: Some("TCP".to_string()),
                        ..ServicePort::default()
                    }]),
                    type_: Some("ClusterIP".to_string()),
                    ..ServiceSpec::default()
                }),
                status: None,
            })));
        }
    }
    if let Some(autoscale) = &options.autoscale {
        objects.push(Object::Hpa(Box::new(HorizontalPodAutoscaler {
            metadata: meta(name.clone()),
            spec: Some(HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".to_string()),
                    kind: "Deployment".to_string(),
                    name: name.clone(),
                },
                min_replicas: Some(options.replicas),
                max_replicas: autoscale.max_replicas,
                metrics: Some(vec![MetricSpec {
                    type_: "Resource".to_string(),
                    resource: Some(ResourceMetricSource {
                        name: "cpu".to_string(),
                        target: MetricTarget {
                            type_: "Utilization".to_string(),
                            average_utilization: Some(autoscale.target_cpu_utilization),
                            ..MetricTarget::default()
                        },
                    }),
                    ..MetricSpec::default()
                }]),
                behavior: None,
            }),
            status: None,
        })));
    }
    Workload {
        name,
        objects,
        secrets,
        warnings,
    }
}

/// What the pod gets besides the container: service account, labels and volumes.
#[derive(Default)]
struct PodExtras {
    runtime_config_secret: Option<String>,
    service_account: Option<String>,
    labels: BTreeMap<String, String>,
    volumes: Vec<(Volume, VolumeMount)>,
}

impl PodExtras {
    /// The runtime-config Secret volume (the Deployment's; SpinKube mounts it itself) and the others.
    fn volumes(&self, with_runtime_config: bool) -> (Vec<Volume>, Vec<VolumeMount>) {
        let runtime_config = self
            .runtime_config_secret
            .as_ref()
            .filter(|_| with_runtime_config)
            .map(|secret| runtime_config_volume(secret));
        runtime_config
            .into_iter()
            .chain(self.volumes.iter().cloned())
            .unzip()
    }
}

/// The variables the CSI driver syncs: those read from the synced Secret.
fn vault_variables(variables: &[WorkloadVariable], name: &str) -> Vec<String> {
    let synced = key_vault::synced_secret(name);
    variables
        .iter()
        .filter(
            |v| matches!(&v.source, VariableSource::SecretKey { secret, .. } if *secret == synced),
        )
        .map(|v| v.name.clone())
        .collect()
}

/// One kind of runtime store: how to name it, and which labels components use.
struct StoreKind<'a> {
    what: &'static str,
    flag: &'static str,
    example: &'static str,
    configured: &'a [RuntimeStore],
    labels: fn(&Component) -> &[String],
}

/// Warns about store labels components use but no flag configures, flags no component uses, and
/// the libsql token placeholder.
fn store_warnings(app: &App, options: &WorkloadOptions, warnings: &mut Vec<String>) {
    let kinds = [
        StoreKind {
            what: "key-value store",
            flag: "--kv-store",
            example: "redis:redis://<host>:6379",
            configured: &options.kv_stores,
            labels: |c| &c.key_value_stores,
        },
        StoreKind {
            what: "SQLite database",
            flag: "--sqlite",
            example: "libsql:https://<host>",
            configured: &options.sqlite,
            labels: |c| &c.sqlite_databases,
        },
    ];
    for kind in kinds {
        let StoreKind {
            what,
            flag,
            example,
            configured,
            labels,
        } = kind;
        let mut warned: Vec<&str> = Vec::new();
        for component in &app.components {
            for label in labels(component) {
                let configured = configured.iter().any(|s| &s.label == label);
                if configured || warned.contains(&label.as_str()) {
                    continue;
                }
                warned.push(label);
                // Spin serves an unconfigured `default` itself, from a file inside each pod.
                let fallback = match label.as_str() {
                    "default" => " (Spin keeps it in a file inside each pod: not shared by replicas, lost on restart)",
                    _ => "",
                };
                warnings.push(format!(
                    "component `{}` uses the {what} `{label}`, which nothing configures{fallback}; add {flag} {label}={example}",
                    component.id
                ));
            }
        }
        for store in configured {
            let label = &store.label;
            if !app.components.iter().any(|c| labels(c).contains(label)) {
                warnings.push(format!(
                    "{flag} {label}: no component uses the {what} `{label}`"
                ));
            }
            if let Backend::Libsql { .. } = store.backend {
                warnings.push(format!(
                    "{flag} {label}: apply and up read the libsql token from {}",
                    libsql_token_env(label)
                ));
            }
        }
    }
}

/// The variables the workload sets: defaults as values; secret or required ones from the
/// `<name>-variables` Secret, or with Key Vault from the CSI-synced Secret (or left to Spin's provider).
fn variables(
    app: &App,
    options: &WorkloadOptions,
    name: &str,
    warnings: &mut Vec<String>,
) -> Vec<WorkloadVariable> {
    let key_vault = options.key_vault.as_ref();
    let secret_name = match key_vault.map(|kv| kv.mode) {
        None => Some(format!("{name}-variables")),
        Some(KeyVaultMode::Csi) => Some(key_vault::synced_secret(name)),
        Some(KeyVaultMode::Provider) => None,
    };
    let mut variables = Vec::new();
    let mut from_secret = Vec::new();
    let mut read_secret = |variable: &str, has_default: bool, variables: &mut Vec<_>| {
        let secret = secret_name.clone()?;
        from_secret.push(variable.to_string());
        variables.push(WorkloadVariable {
            name: variable.to_string(),
            source: VariableSource::SecretKey {
                secret: secret.clone(),
                key: variable.to_string(),
                optional: has_default && key_vault.is_none(),
            },
        });
        Some(secret)
    };
    for (var_name, var) in &app.variables {
        if var.secret || var.required {
            read_secret(var_name, var.default.is_some(), &mut variables);
        } else if let Some(default) = &var.default {
            variables.push(WorkloadVariable {
                name: var_name.clone(),
                source: VariableSource::Value(default.clone()),
            });
        }
    }
    if let Some(address) = redis_address(app) {
        if !address.contains("{{") && !app.variables.contains_key("redis_address") {
            let found = if address.is_empty() {
                "the redis trigger has no address in spin.toml".to_string()
            } else {
                format!(
                    "the redis trigger address `{}` is fixed in spin.toml",
                    crate::redact::redact_userinfo(&address)
                )
            };
            let source = match read_secret("redis_address", false, &mut variables) {
                Some(secret) => format!("from key redis_address of Secret {secret}"),
                None => "from Key Vault".to_string(),
            };
            warnings.push(format!(
                "{found}; set `address = \"{{{{ redis_address }}}}\"` under [application.trigger.redis] and declare a secret `redis_address` variable so the pod takes the address {source}"
            ));
        }
    }
    warnings.extend(secret_source_warning(
        app,
        key_vault,
        &from_secret,
        secret_name,
    ));
    variables
}

/// Where the secret values must be put for the pods to start.
fn secret_source_warning(
    app: &App,
    key_vault: Option<&KeyVaultOptions>,
    from_secret: &[String],
    secret_name: Option<String>,
) -> Option<String> {
    let Some(kv) = key_vault else {
        let secret_name = secret_name?;
        let literals: Vec<String> = from_secret
            .iter()
            .map(|k| format!("--from-literal={k}=<value>"))
            .collect();
        return (!from_secret.is_empty()).then(|| format!(
            "variables {} come from Secret {secret_name}: `spin-aks apply --secret <name>` fills it, or kubectl create secret generic {secret_name} {}",
            from_secret.join(", "),
            literals.join(" ")
        ));
    };
    let vault = &kv.vault.name;
    match kv.mode {
        KeyVaultMode::Csi => (!from_secret.is_empty()).then(|| {
            let mapped: Vec<String> = from_secret
                .iter()
                .map(|v| format!("{v} ← {}", crate::azure::vault::secret_name(v)))
                .collect();
            format!(
                "variables come from Key Vault {vault} through the Secrets RuntimeStore CSI driver (AKS add-on azure-keyvault-secrets-provider): {}; each secret must exist before the pods start: spin-aks secrets set <variable>",
                mapped.join(", ")
            )
        }),
        KeyVaultMode::Provider => (!app.variables.is_empty()).then(|| {
            format!(
                "with --key-vault-mode provider Spin looks up every variable in Key Vault {vault} under its own name before any default: all of {} must exist there (spin-aks secrets set <variable>)",
                app.variables.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        }),
    }
}

/// The address of the app's redis trigger, if it has one.
fn redis_address(app: &App) -> Option<String> {
    let trigger = app.triggers.iter().find(|t| t.trigger_type == "redis")?;
    trigger
        .settings
        .get("address")
        .or_else(|| {
            app.trigger_settings
                .get("redis")
                .and_then(|s| s.get("address"))
        })
        .and_then(|a| a.as_str())
        .map(str::to_string)
        .or_else(|| Some(String::new()))
}

fn quantities(entries: [(&str, &Option<String>); 2]) -> BTreeMap<String, Quantity> {
    entries
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), Quantity(v.clone()))))
        .collect()
}

fn limits_and_requests(
    options: &WorkloadOptions,
) -> (BTreeMap<String, Quantity>, BTreeMap<String, Quantity>) {
    let r = &options.resources;
    let limits = quantities([("cpu", &r.cpu_limit), ("memory", &r.memory_limit)]);
    let mut requests = quantities([("cpu", &r.cpu_request), ("memory", &r.memory_request)]);
    // CPU utilization is measured against the request: autoscaling needs one.
    if options.autoscale.is_some() && !requests.contains_key("cpu") {
        if let Some(cpu) = &r.cpu_limit {
            requests.insert("cpu".to_string(), Quantity(cpu.clone()));
        }
    }
    (limits, requests)
}

fn spinapp_spec(
    options: &WorkloadOptions,
    variables: &[WorkloadVariable],
    pod: PodExtras,
) -> SpinAppSpec {
    let (volumes, volume_mounts) = pod.volumes(false);
    let (limits, requests) = limits_and_requests(options);
    let probe = |path: &String| HealthProbe {
        http_get: HttpGet {
            path: path.clone(),
            http_headers: Vec::new(),
        },
        initial_delay_seconds: Some(10),
        timeout_seconds: Some(1),
        period_seconds: Some(10),
        success_threshold: Some(1),
        failure_threshold: Some(3),
    };
    SpinAppSpec {
        executor: spinapp::SHIM_EXECUTOR.to_string(),
        image: options.image.to_string(),
        image_pull_secrets: options
            .image_pull_secrets
            .iter()
            .map(|n| LocalObjectReference { name: n.clone() })
            .collect(),
        replicas: options.autoscale.is_none().then_some(options.replicas),
        enable_autoscaling: options.autoscale.as_ref().map(|_| true),
        checks: options.health_path.as_ref().map(|path| HealthChecks {
            readiness: Some(probe(path)),
            liveness: Some(probe(path)),
        }),
        runtime_config: pod
            .runtime_config_secret
            .map(|secret| spinapp::RuntimeConfig {
                load_from_secret: Some(secret),
                ..spinapp::RuntimeConfig::default()
            }),
        variables: variables
            .iter()
            .map(|v| SpinVar {
                name: v.name.clone(),
                value: match &v.source {
                    VariableSource::Value(value) => Some(value.clone()),
                    VariableSource::SecretKey { .. } => None,
                },
                value_from: value_from(&v.source),
            })
            .collect(),
        volumes,
        volume_mounts,
        pod_labels: pod.labels,
        resources: (!limits.is_empty() || !requests.is_empty())
            .then_some(Resources { limits, requests }),
        service_account_name: pod.service_account,
        ..SpinAppSpec::default()
    }
}

fn value_from(source: &VariableSource) -> Option<EnvVarSource> {
    match source {
        VariableSource::Value(_) => None,
        VariableSource::SecretKey {
            secret,
            key,
            optional,
        } => Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.clone(),
                key: key.clone(),
                optional: optional.then_some(true),
            }),
            ..EnvVarSource::default()
        }),
    }
}

/// The environment variable the shim maps to Spin variable `name`.
pub fn env_name(variable: &str) -> String {
    format!("SPIN_VARIABLE_{}", variable.to_ascii_uppercase())
}

fn deployment(
    options: &WorkloadOptions,
    name: &str,
    labels: &BTreeMap<String, String>,
    variables: &[WorkloadVariable],
    pod: PodExtras,
) -> DeploymentSpec {
    let (limits, requests) = limits_and_requests(options);
    let probe = |path: &String| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.clone()),
            port: IntOrString::Int(HTTP_PORT),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(10),
        timeout_seconds: Some(1),
        period_seconds: Some(10),
        success_threshold: Some(1),
        failure_threshold: Some(3),
        ..Probe::default()
    };
    let mut pod_labels = labels.clone();
    pod_labels.extend(pod.labels.clone());
    let (volumes, volume_mounts) = pod.volumes(true);
    let env: Vec<EnvVar> = variables
        .iter()
        .map(|v| EnvVar {
            name: env_name(&v.name),
            value: match &v.source {
                VariableSource::Value(value) => Some(value.clone()),
                VariableSource::SecretKey { .. } => None,
            },
            value_from: value_from(&v.source),
        })
        .collect();
    DeploymentSpec {
        replicas: options.autoscale.is_none().then_some(options.replicas),
        selector: LabelSelector {
            match_labels: Some(BTreeMap::from([(NAME_LABEL.to_string(), name.to_string())])),
            ..LabelSelector::default()
        },
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(pod_labels),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                runtime_class_name: Some(options.runtime_class.clone()),
                service_account_name: pod.service_account,
                image_pull_secrets: (!options.image_pull_secrets.is_empty()).then(|| {
                    options
                        .image_pull_secrets
                        .iter()
                        .map(|n| LocalObjectReference { name: n.clone() })
                        .collect()
                }),
                containers: vec![Container {
                    name: name.to_string(),
                    image: Some(options.image.to_string()),
                    command: Some(vec!["/".to_string()]),
                    ports: Some(vec![ContainerPort {
                        name: Some("http-app".to_string()),
                        container_port: HTTP_PORT,
                        protocol: Some("TCP".to_string()),
                        ..ContainerPort::default()
                    }]),
                    env: (!env.is_empty()).then_some(env),
                    resources: (!limits.is_empty() || !requests.is_empty()).then(|| {
                        ResourceRequirements {
                            limits: (!limits.is_empty()).then_some(limits),
                            requests: (!requests.is_empty()).then_some(requests),
                            ..ResourceRequirements::default()
                        }
                    }),
                    readiness_probe: options.health_path.as_ref().map(probe),
                    liveness_probe: options.health_path.as_ref().map(probe),
                    volume_mounts: (!volume_mounts.is_empty()).then_some(volume_mounts),
                    ..Container::default()
                }],
                volumes: (!volumes.is_empty()).then_some(volumes),
                ..PodSpec::default()
            }),
        },
        ..DeploymentSpec::default()
    }
}

/// The runtime-config Secret as the file `/runtime-config.toml`, where the shim reads it.
fn runtime_config_volume(secret: &str) -> (Volume, VolumeMount) {
    let volume = Volume {
        name: "runtime-config".to_string(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_string()),
            items: Some(vec![KeyToPath {
                key: RUNTIME_CONFIG_KEY.to_string(),
                path: RUNTIME_CONFIG_KEY.to_string(),
                mode: None,
            }]),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    };
    let mount = VolumeMount {
        name: "runtime-config".to_string(),
        mount_path: format!("/{RUNTIME_CONFIG_KEY}"),
        sub_path: Some(RUNTIME_CONFIG_KEY.to_string()),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    (volume, mount)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::app::{Trigger, Variable};

    fn options(kind: WorkloadKind) -> WorkloadOptions {
        WorkloadOptions {
            kind,
            image: ImageRef::parse("myacr.azurecr.io/app:1").unwrap(),
            namespace: None,
            replicas: 2,
            runtime_class: DEFAULT_RUNTIME_CLASS.to_string(),
            key_vault: None,
            identity: None,
            service_account: None,
            kv_stores: Vec::new(),
            sqlite: Vec::new(),
            resources: ResourceOptions::default(),
            autoscale: None,
            health_path: None,
            image_pull_secrets: Vec::new(),
        }
    }

    fn app() -> App {
        let variable = |default: Option<&str>, required, secret| Variable {
            default: default.map(str::to_string),
            required,
            secret,
            description: None,
        };
        App {
            dir: "/app".into(),
            manifest_path: "/app/spin.toml".into(),
            manifest: toml::Table::new(),
            name: "My App".to_string(),
            version: Some("1.0.0".to_string()),
            description: None,
            authors: Vec::new(),
            trigger_settings: BTreeMap::new(),
            variables: BTreeMap::from([
                ("plain".to_string(), variable(Some("x"), false, false)),
                ("token".to_string(), variable(None, true, true)),
                (
                    "key".to_string(),
                    variable(Some("s3cr3t-default"), false, true),
                ),
            ]),
            triggers: vec![Trigger {
                id: "t".into(),
                trigger_type: "redis".into(),
                component: Some("worker".into()),
                settings: serde_json::Map::from_iter([(
                    "address".to_string(),
                    json!("redis://u:pw@host:6379"),
                )]),
            }],
            components: vec![Component {
                id: "worker".into(),
                ..Component::default()
            }],
        }
    }

    #[test]
    fn dns_name_lowercases_replaces_and_trims() {
        assert_eq!(dns_name("My App"), "my-app");
        assert_eq!(dns_name("__Shop__Backend--"), "shop-backend");
        assert_eq!(dns_name("***"), "spin-app");
        assert_eq!(dns_name(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn secret_and_required_variables_come_from_a_secret_never_as_values() {
        let workload = build(&app(), &options(WorkloadKind::Spinapp));
        let spinapp = workload.objects[0].to_value();
        assert_eq!(spinapp["metadata"]["name"], "my-app");
        let vars = &spinapp["spec"]["variables"];
        assert_eq!(
            vars[0],
            json!({"name": "key", "valueFrom": {"secretKeyRef": {"name": "my-app-variables", "key": "key", "optional": true}}})
        );
        assert_eq!(vars[1], json!({"name": "plain", "value": "x"}));
        assert_eq!(vars[2]["valueFrom"]["secretKeyRef"]["key"], "token");
        assert_eq!(vars[3]["name"], "redis_address");
        assert!(
            !spinapp.to_string().contains("s3cr3t"),
            "a secret default is never written"
        );
        let warnings = workload.warnings.join("\n");
        assert!(warnings.contains("`My App` is not a valid Kubernetes name"));
        assert!(
            warnings.contains("redis://***@host:6379"),
            "credentials are redacted: {warnings}"
        );
        assert!(!warnings.contains("pw"));
    }

    #[test]
    fn deployment_maps_variables_to_spin_variable_env_and_runs_on_the_runtime_class() {
        let workload = build(&app(), &options(WorkloadKind::Deployment));
        let kinds: Vec<String> = workload
            .objects
            .iter()
            .map(|o| o.to_value()["kind"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(kinds, ["Deployment", "Service"]);
        let deployment = workload.objects[0].to_value();
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["runtimeClassName"], "wasmtime-spin-v2");
        assert_eq!(pod["containers"][0]["command"], json!(["/"]));
        assert_eq!(pod["containers"][0]["ports"][0]["containerPort"], 80);
        assert_eq!(
            pod["containers"][0]["env"][1],
            json!({"name": "SPIN_VARIABLE_PLAIN", "value": "x"})
        );
    }

    fn with_key_vault(mut options: WorkloadOptions, mode: KeyVaultMode) -> WorkloadOptions {
        options.key_vault = Some(KeyVaultOptions {
            vault: crate::azure::vault::Vault::parse("https://shop-kv.vault.azure.net/").unwrap(),
            mode,
        });
        options.identity = Some(IdentityOptions {
            client_id: "11111111-2222-3333-4444-555555555555".into(),
            tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
            service_account: "my-app".into(),
        });
        options
    }

    fn kinds(workload: &Workload) -> Vec<String> {
        workload
            .objects
            .iter()
            .map(|o| o.to_value()["kind"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn key_vault_csi_maps_secret_variables_to_dashed_vault_names_and_syncs_them() {
        for kind in [WorkloadKind::Spinapp, WorkloadKind::Deployment] {
            let opts = with_key_vault(options(kind), KeyVaultMode::Csi);
            let workload = build(&app(), &opts);
            let objects: Vec<_> = workload.objects.iter().map(Object::to_value).collect();
            let account = &objects[0];
            assert_eq!(account["kind"], "ServiceAccount");
            assert_eq!(
                account["metadata"]["annotations"]["azure.workload.identity/client-id"],
                "11111111-2222-3333-4444-555555555555"
            );
            let class = &objects[1];
            assert_eq!(class["kind"], "SecretProviderClass");
            assert_eq!(class["metadata"]["name"], "my-app-key-vault");
            let params = &class["spec"]["parameters"];
            assert_eq!(params["keyvaultName"], "shop-kv");
            let listed = params["objects"].as_str().unwrap();
            assert!(listed.contains("objectName: redis-address\n    objectType: secret\n    objectAlias: redis_address"), "{listed}");
            let synced: Vec<&str> = class["spec"]["secretObjects"][0]["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["key"].as_str().unwrap())
                .collect();
            assert_eq!(synced, ["key", "token", "redis_address"]);
            assert!(
                !objects.iter().any(|o| o["kind"] == "Secret"),
                "no Secret objects: the driver syncs it"
            );
            let text = serde_json::to_string(&objects).unwrap();
            assert!(text.contains("secrets-store.csi.k8s.io"));
            assert!(text.contains("\"azure.workload.identity/use\":\"true\""));
            assert!(
                !text.contains("s3cr3t"),
                "a secret default is never written"
            );
        }
    }

    #[test]
    fn key_vault_provider_mode_configures_spin_and_sets_no_secret_variables() {
        let opts = with_key_vault(options(WorkloadKind::Spinapp), KeyVaultMode::Provider);
        let workload = build(&app(), &opts);
        assert_eq!(kinds(&workload), ["Secret", "ServiceAccount", "SpinApp"]);
        let secret = workload.objects[0].to_value();
        assert!(secret["stringData"]["runtime-config.toml"]
            .as_str()
            .unwrap()
            .contains("azure_key_vault"));
        let spec = &workload.objects[2].to_value()["spec"];
        assert_eq!(
            spec["runtimeConfig"]["loadFromSecret"],
            "my-app-runtime-config"
        );
        assert_eq!(spec["serviceAccountName"], "my-app");
        assert_eq!(spec["variables"], json!([{"name": "plain", "value": "x"}]));
        assert!(workload
            .warnings
            .iter()
            .any(|w| w.contains("all of key, plain, token must exist")));
    }

    #[test]
    fn a_redis_store_url_goes_only_into_a_secret_kept_out_of_the_files() {
        let mut opts = options(WorkloadKind::Deployment);
        opts.kv_stores = vec![crate::workload::runtime_config::parse_kv_store(
            "default=redis:redis://:pw@cache:6379",
        )
        .unwrap()];
        let workload = build(&app(), &opts);
        let files = serde_json::to_string(
            &workload
                .objects
                .iter()
                .map(Object::to_value)
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert!(!files.contains("pw@cache"), "{files}");
        assert!(
            files.contains("my-app-runtime-config"),
            "the pod still mounts it"
        );
        let secret = workload.secrets[0].to_value();
        assert!(secret["stringData"]["runtime-config.toml"]
            .as_str()
            .unwrap()
            .contains("redis://:pw@cache:6379"));
    }
}
