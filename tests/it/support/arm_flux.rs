//! The fake ARM's Flux configurations (`Microsoft.KubernetesConfiguration/fluxConfigurations`), as
//! the AKS Flux extension serves them: stateful, validated with ARM's error bodies, written and
//! deleted through long-running operations, and backed by a rig: the extension's fluxconfig-agent
//! is played by applying the configuration's OCIRepository and Kustomization there.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use hyper::StatusCode;
use serde_json::{json, Value};

use super::{arm_error, reply, Cluster, Reply, Shared};

/// What the fake knows about Flux configurations.
#[derive(Debug, Default)]
pub struct FluxWorld {
    /// The admin kubeconfig of the rig the extension's agent writes into (none: nothing applied).
    pub kubeconfig: Option<PathBuf>,
    /// Configuration id (lower case) → the resource as ARM returns it.
    pub configurations: HashMap<String, Value>,
}

const SOURCE_KINDS: [&str; 4] = ["GitRepository", "Bucket", "AzureBlob", "OCIRepository"];

impl Shared {
    /// GET, PUT and DELETE of `…/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/<name>`.
    pub(super) fn flux_configuration(
        &self,
        method: &str,
        cluster: &Cluster,
        name: &str,
        path: &str,
        body: Value,
    ) -> Reply {
        let key = path.to_ascii_lowercase();
        let cluster_key = cluster.resource["id"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase();
        let mut w = self.world.lock().unwrap();
        let kubeconfig = w.flux.kubeconfig.clone();
        match method {
            "GET" => match w.flux.configurations.get(&key) {
                Some(configuration) => {
                    let mut configuration = configuration.clone();
                    if let Some(kubeconfig) = &kubeconfig {
                        compliance(&mut configuration, name, kubeconfig);
                    }
                    reply(StatusCode::OK, configuration)
                }
                None => arm_error(
                    StatusCode::NOT_FOUND,
                    "ResourceNotFound",
                    &format!("The Resource 'Microsoft.KubernetesConfiguration/fluxConfigurations/{name}' was not found."),
                ),
            },
            "PUT" => {
                if !w.extensions.contains_key(&cluster_key) {
                    return arm_error(
                        StatusCode::BAD_REQUEST,
                        "ExtensionNotFound",
                        "The microsoft.flux extension is not installed on the cluster; install it before creating Flux configurations.",
                    );
                }
                if let Err(message) = validate(&body["properties"]) {
                    return arm_error(StatusCode::BAD_REQUEST, "InvalidRequestParameter", &message);
                }
                let mut properties = body["properties"].clone();
                properties["provisioningState"] = json!("Succeeded");
                properties["complianceState"] = json!("Pending");
                properties["statuses"] = json!([]);
                let configuration = json!({
                    "id": path,
                    "name": name,
                    "type": "Microsoft.KubernetesConfiguration/fluxConfigurations",
                    "systemData": {"createdBy": "spin-aks", "createdByType": "User"},
                    "properties": properties,
                });
                if let Some(kubeconfig) = &kubeconfig {
                    kubectl(kubeconfig, &["apply", "-f", "-"], Some(&agent_objects(name, &body["properties"])));
                }
                w.flux.configurations.insert(key, configuration.clone());
                self.aks_accepted(&mut w, configuration, cluster)
            }
            "DELETE" => {
                let Some(configuration) = w.flux.configurations.remove(&key) else {
                    return reply(StatusCode::NO_CONTENT, Value::Null);
                };
                if let Some(kubeconfig) = &kubeconfig {
                    let properties = &configuration["properties"];
                    let namespace = properties["namespace"].as_str().unwrap_or("default");
                    let kustomizations = properties["kustomizations"].as_object().cloned().unwrap_or_default();
                    for kustomization in kustomizations.keys() {
                        let object = format!("kustomization/{name}-{kustomization}");
                        kubectl(kubeconfig, &["delete", "-n", namespace, &object, "--wait=false"], None);
                    }
                    kubectl(kubeconfig, &["delete", "-n", namespace, &format!("ocirepository/{name}"), "--wait=false"], None);
                }
                let mut accepted = self.aks_accepted(&mut w, Value::Null, cluster);
                *accepted.status_mut() = StatusCode::ACCEPTED;
                accepted
            }
            _ => arm_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "The requested method is not allowed."),
        }
    }
}

/// What ARM checks before accepting a configuration (the OCIRepository source kind in detail).
fn validate(properties: &Value) -> Result<(), String> {
    let kind = properties["sourceKind"].as_str().unwrap_or("GitRepository");
    if !SOURCE_KINDS.contains(&kind) {
        return Err(format!(
            "sourceKind '{kind}' is not supported; use one of {}",
            SOURCE_KINDS.join(", ")
        ));
    }
    if properties["namespace"].as_str().is_none_or(str::is_empty) {
        return Err("namespace must be set.".into());
    }
    if kind == "OCIRepository" {
        let source = &properties["ociRepository"];
        if !source["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("oci://"))
        {
            return Err("ociRepository.url must start with oci://.".into());
        }
        let reference = &source["repositoryRef"];
        if ["tag", "semver", "digest"]
            .iter()
            .all(|k| reference[k].is_null())
        {
            return Err(
                "ociRepository.repositoryRef must set one of tag, semver or digest.".into(),
            );
        }
    }
    if properties["kustomizations"]
        .as_object()
        .is_none_or(|k| k.is_empty())
    {
        return Err("At least one kustomization must be defined.".into());
    }
    Ok(())
}

/// The objects the extension's fluxconfig-agent makes: an OCIRepository named after the
/// configuration and a Kustomization `<configuration>-<key>` per kustomization, in its namespace.
fn agent_objects(name: &str, properties: &Value) -> String {
    let namespace = properties["namespace"].as_str().unwrap_or("default");
    let source = &properties["ociRepository"];
    let seconds = |v: &Value, default: u64| format!("{}s", v.as_u64().unwrap_or(default));
    let reference = &source["repositoryRef"];
    let mut spec = json!({
        "url": source["url"],
        "interval": seconds(&source["syncIntervalInSeconds"], 600),
        "timeout": seconds(&source["timeoutInSeconds"], 600),
        "ref": {"tag": reference["tag"], "semver": reference["semver"], "digest": reference["digest"]},
        "insecure": source["insecure"].as_bool().unwrap_or(false),
    });
    spec["ref"]
        .as_object_mut()
        .unwrap()
        .retain(|_, v| !v.is_null());
    if source["layerSelector"].is_object() {
        spec["layerSelector"] = source["layerSelector"].clone();
    }
    if source["useWorkloadIdentity"] == true {
        spec["provider"] = json!("azure");
    }
    let mut objects = vec![json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
        "metadata": {"name": name, "namespace": namespace, "labels": {"clusterconfig.azure.com/is-managed": "true"}},
        "spec": spec,
    })];
    for (key, k) in properties["kustomizations"].as_object().unwrap() {
        objects.push(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": format!("{name}-{key}"), "namespace": namespace, "labels": {"clusterconfig.azure.com/is-managed": "true"}},
            "spec": {
                "sourceRef": {"kind": "OCIRepository", "name": name},
                "path": k["path"].as_str().unwrap_or("./"),
                "prune": k["prune"].as_bool().unwrap_or(false),
                "wait": k["wait"].as_bool().unwrap_or(true),
                "interval": seconds(&k["syncIntervalInSeconds"], 600),
                "retryInterval": seconds(&k["retryIntervalInSeconds"], 600),
                "timeout": seconds(&k["timeoutInSeconds"], 600),
                "targetNamespace": namespace,
            },
        }));
    }
    json!({"apiVersion": "v1", "kind": "List", "items": objects}).to_string()
}

/// `complianceState` and `statuses` from the Kustomizations on the rig, as the extension reports.
fn compliance(configuration: &mut Value, name: &str, kubeconfig: &PathBuf) {
    let properties = &mut configuration["properties"];
    let namespace = properties["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let keys: Vec<String> = properties["kustomizations"]
        .as_object()
        .map(|k| k.keys().cloned().collect())
        .unwrap_or_default();
    let mut statuses = Vec::new();
    let mut all_ready = true;
    for key in keys {
        let object = format!("kustomization/{name}-{key}");
        let live = kubectl(
            kubeconfig,
            &["get", "-n", &namespace, &object, "-o", "json"],
            None,
        );
        let live: Value = serde_json::from_str(&live).unwrap_or(Value::Null);
        let conditions = live["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ready = conditions
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        all_ready &= ready;
        statuses.push(json!({
            "name": format!("{name}-{key}"), "namespace": namespace, "kind": "Kustomization",
            "complianceState": if ready { "Compliant" } else { "Non-Compliant" },
            "statusConditions": conditions,
        }));
    }
    properties["complianceState"] = json!(if all_ready {
        "Compliant"
    } else {
        "Non-Compliant"
    });
    properties["statuses"] = Value::Array(statuses);
}

fn kubectl(kubeconfig: &PathBuf, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run kubectl");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}
