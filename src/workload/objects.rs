//! The workload objects for an app: a SpinApp, or a Deployment and Service, plus what they reference
//! (runtime-config Secret, Key Vault objects, HPA). Typed values built from the app model and explicit options only.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{Secret, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use self::naming::{
    HTTP_PORT, MANAGED_BY_LABEL, NAME_LABEL, RUNTIME_CONFIG_KEY, WORKLOAD_IDENTITY_LABEL,
};
use self::references::{store_warnings, variables, vault_variables};
use self::spec::{deployment, spinapp_spec, PodExtras};
use crate::app::App;
use crate::workload::key_vault::{self, KeyVaultMode};
use crate::workload::runtime_config::RuntimeConfigToml;
use crate::workload::spinapp::SpinApp;

mod model;
mod naming;
mod references;
mod spec;

pub use self::model::{
    Autoscale, Object, ResourceOptions, VariableSource, Workload, WorkloadKind, WorkloadOptions,
    WorkloadSettings, WorkloadVariable,
};
pub use self::naming::{dns_name, env_name, DEFAULT_RUNTIME_CLASS, MANAGED_BY};

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
        kv_stores: &options.settings.kv_stores,
        sqlite: &options.settings.sqlite,
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
    pod.service_account = options.settings.service_account.clone();
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
    if let Some(autoscale) = &options.settings.autoscale {
        objects.push(Object::Hpa(Box::new(HorizontalPodAutoscaler {
            metadata: meta(name.clone()),
            spec: Some(HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".to_string()),
                    kind: "Deployment".to_string(),
                    name: name.clone(),
                },
                min_replicas: Some(options.settings.replicas),
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

#[cfg(test)]
mod tests;
