//! Builds what runs the app: a SpinApp's spec, or a Deployment's with its container, probes and
//! environment, each with resources, pull secrets and volumes (the runtime-config Secret's too).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DeploymentSpec;
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, KeyToPath, LocalObjectReference,
    PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SecretKeySelector, SecretVolumeSource,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::model::{VariableSource, WorkloadOptions, WorkloadVariable};
use super::naming::{env_name, HTTP_PORT, NAME_LABEL, RUNTIME_CONFIG_KEY};
use crate::workload::spinapp::{
    self, HealthChecks, HealthProbe, HttpGet, Resources, SpinAppSpec, SpinVar,
};

/// What the pod gets besides the container: service account, labels and volumes.
#[derive(Default)]
pub(super) struct PodExtras {
    pub(super) runtime_config_secret: Option<String>,
    pub(super) service_account: Option<String>,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) volumes: Vec<(Volume, VolumeMount)>,
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

fn quantities(entries: [(&str, &Option<String>); 2]) -> BTreeMap<String, Quantity> {
    entries
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), Quantity(v.clone()))))
        .collect()
}

fn limits_and_requests(
    options: &WorkloadOptions,
) -> (BTreeMap<String, Quantity>, BTreeMap<String, Quantity>) {
    let r = &options.settings.resources;
    let limits = quantities([("cpu", &r.cpu_limit), ("memory", &r.memory_limit)]);
    let mut requests = quantities([("cpu", &r.cpu_request), ("memory", &r.memory_request)]);
    // CPU utilization is measured against the request: autoscaling needs one.
    if options.settings.autoscale.is_some() && !requests.contains_key("cpu") {
        if let Some(cpu) = &r.cpu_limit {
            requests.insert("cpu".to_string(), Quantity(cpu.clone()));
        }
    }
    (limits, requests)
}

pub(super) fn spinapp_spec(
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
            .settings
            .image_pull_secrets
            .iter()
            .map(|n| LocalObjectReference { name: n.clone() })
            .collect(),
        replicas: options
            .settings
            .autoscale
            .is_none()
            .then_some(options.settings.replicas),
        enable_autoscaling: options.settings.autoscale.as_ref().map(|_| true),
        checks: options
            .settings
            .health_path
            .as_ref()
            .map(|path| HealthChecks {
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

pub(super) fn deployment(
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
        replicas: options
            .settings
            .autoscale
            .is_none()
            .then_some(options.settings.replicas),
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
                runtime_class_name: Some(options.settings.runtime_class.clone()),
                service_account_name: pod.service_account,
                image_pull_secrets: (!options.settings.image_pull_secrets.is_empty()).then(|| {
                    options
                        .settings
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
                    readiness_probe: options.settings.health_path.as_ref().map(probe),
                    liveness_probe: options.settings.health_path.as_ref().map(probe),
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
