//! The fake ARM's provisioning: resource groups, a registry created after `checkNameAvailability`,
//! and managed clusters written, updated and deleted as long-running operations. A cluster's
//! creation stands up a real cluster (the test's provisioner, e.g. a bare rig with Flux) and ends
//! only when it answers; its nodes get the pool's `nodeLabels`; its user kubeconfig is the rig's.
//! Refusals speak ARM's bodies: quota, VM size, region (sync 400s) and 409 while another
//! operation runs on the cluster.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{arm_error, reply, Cluster, Reply, Shared, World, TENANT};
use hyper::StatusCode;

/// Starts a cluster for a creation (blocking; run off the server's threads) and returns the path
/// of its admin kubeconfig, or why it could not (the operation then fails with it).
pub type Provisioner = Arc<dyn Fn(&str) -> Result<PathBuf, String> + Send + Sync>;

/// How an operation ended (`None` while it runs; `Err` with the failure's message).
type Done = Arc<Mutex<Option<Result<(), String>>>>;

/// The provisioning part of the fake's world.
#[derive(Default)]
pub struct Provisioning {
    pub resource_groups: Vec<Value>,
    pub provisioner: Option<Provisioner>,
    /// A refusal every cluster creation gets: (status, code, message).
    pub refuse_creation: Option<(u16, String, String)>,
    /// A creation is finished before its PUT is answered (with a provisioner that returns at
    /// once, every run then makes the same requests: no poll finds it still running).
    pub synchronous: bool,
    /// The creation a synchronous fake finishes before it answers.
    creating: Option<tokio::task::JoinHandle<()>>,
    /// How many more cluster writes get 409 because another operation runs on the cluster.
    pub busy_writes: u32,
    /// Cluster name → its Deployment Safeguards resource (`deploymentSafeguards/default`).
    pub safeguards: HashMap<String, Value>,
    /// Registry names taken elsewhere in Azure.
    pub taken_registry_names: Vec<String>,
    /// Operation id → the cluster creation or deletion it follows (done when `Some`).
    operations: HashMap<String, Done>,
}

impl std::fmt::Debug for Provisioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioning")
            .field("resource_groups", &self.resource_groups)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The provisioning routes; `None` for every other request.
    pub(super) async fn route_provision(
        &self,
        method: &str,
        lower: &[&str],
        segments: &[&str],
        body: &Value,
    ) -> Option<Reply> {
        Some(match (method, lower) {
            ("GET", ["subscriptions", _, "resourcegroups", _]) => {
                self.get_group(segments[1], segments[3])
            }
            ("PUT", ["subscriptions", _, "resourcegroups", _]) => {
                self.put_group(segments[1], segments[3], body)
            }
            (
                "POST",
                ["subscriptions", _, "providers", "microsoft.containerregistry", "checknameavailability"],
            ) => self.registry_name_check(body),
            (
                _,
                ["subscriptions", _, "resourcegroups", _, "providers", "microsoft.containerregistry", "registries", _],
            ) => self.registry(method, segments, body),
            (
                "GET",
                ["subscriptions", _, "providers", _, "locations", _, "operationresults", id],
            ) => self.operation_result(id),
            (
                "GET",
                ["subscriptions", _, "providers", _, "locations", _, "operationstatuses", id],
            ) => self.operation_status(id),
            (
                "PUT" | "DELETE",
                ["subscriptions", _, "resourcegroups", _, "providers", "microsoft.containerservice", "managedclusters", _],
            ) => {
                let id = format!("/{}", segments[..8].join("/"));
                match method {
                    "PUT" => self.put_cluster(&id, segments, body).await,
                    _ => self.delete_cluster(&id),
                }
            }
            (
                "GET",
                ["subscriptions", _, "providers", "microsoft.containerservice", "locations", _, "operations", id],
            ) if self.is_provisioning_operation(id) => self.operation_status(id),
            (
                "GET",
                ["subscriptions", _, "resourcegroups", _, "providers", "microsoft.containerservice", "managedclusters", _, "providers", "microsoft.containerservice", "deploymentsafeguards", "default"],
            ) => {
                let found = self
                    .world
                    .lock()
                    .unwrap()
                    .provisioning
                    .safeguards
                    .get(segments[7])
                    .cloned();
                match found {
                    Some(safeguards) => reply(StatusCode::OK, safeguards),
                    None => arm_error(StatusCode::NOT_FOUND, "NotFound", "The Resource 'Microsoft.ContainerService/deploymentSafeguards/default' was not found."),
                }
            }
            _ => return None,
        })
    }

    fn get_group(&self, subscription: &str, group: &str) -> Reply {
        let w = self.world.lock().unwrap();
        let prefix =
            format!("/subscriptions/{subscription}/resourcegroups/{group}/").to_ascii_lowercase();
        let listed = (w.provisioning.resource_groups.iter())
            .find(|g| g["name"].as_str().unwrap().eq_ignore_ascii_case(group));
        if let Some(found) = listed {
            return reply(StatusCode::OK, found.clone());
        }
        let holds = |id: &Value| {
            (id.as_str().unwrap_or_default().to_ascii_lowercase()).starts_with(&prefix)
        };
        let used = w.clusters.iter().any(|c| holds(&c.resource["id"]))
            || w.registries.iter().any(|r| holds(&r["id"]));
        if used {
            let group = json!({"id": format!("/subscriptions/{subscription}/resourceGroups/{group}"), "name": group, "location": "westeurope", "properties": {"provisioningState": "Succeeded"}});
            return reply(StatusCode::OK, group);
        }
        arm_error(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            &format!("Resource group '{group}' could not be found."),
        )
    }

    fn put_group(&self, subscription: &str, group: &str, body: &Value) -> Reply {
        let Some(location) = body["location"].as_str() else {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "LocationRequired",
                "The location property is required for this definition.",
            );
        };
        let resource = json!({
            "id": format!("/subscriptions/{subscription}/resourceGroups/{group}"),
            "name": group,
            "type": "Microsoft.Resources/resourceGroups",
            "location": location,
            "properties": {"provisioningState": "Succeeded"},
        });
        let mut w = self.world.lock().unwrap();
        w.provisioning.resource_groups.push(resource.clone());
        reply(StatusCode::CREATED, resource)
    }

    fn registry_name_check(&self, body: &Value) -> Reply {
        let name = body["name"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let w = self.world.lock().unwrap();
        let taken = w.provisioning.taken_registry_names.contains(&name)
            || (w.registries.iter())
                .any(|r| r["name"].as_str().unwrap().eq_ignore_ascii_case(&name));
        match taken {
            true => reply(
                StatusCode::OK,
                json!({"nameAvailable": false, "reason": "AlreadyExists", "message": format!("The registry {name} is already in use.")}),
            ),
            false => reply(StatusCode::OK, json!({"nameAvailable": true})),
        }
    }

    fn registry(&self, method: &str, segments: &[&str], body: &Value) -> Reply {
        let id = format!("/{}", segments[..8].join("/"));
        let name = segments[7];
        let mut w = self.world.lock().unwrap();
        let found = (w.registries.iter())
            .find(|r| r["id"].as_str().unwrap().eq_ignore_ascii_case(&id))
            .cloned();
        match (method, found) {
            ("GET", Some(registry)) => reply(StatusCode::OK, registry),
            ("GET", None) => arm_error(StatusCode::NOT_FOUND, "ResourceNotFound", &format!("The Resource 'Microsoft.ContainerRegistry/registries/{name}' under resource group '{}' was not found.", segments[3])),
            ("PUT", _) => {
                if w.provisioning.taken_registry_names.contains(&name.to_ascii_lowercase()) {
                    return arm_error(StatusCode::CONFLICT, "AlreadyInUse", &format!("The registry DNS name {name}.azurecr.io is already in use. You can check if the name is already claimed using following API: https://docs.microsoft.com/en-us/rest/api/containerregistry/registries/checknameavailability"));
                }
                let registry = json!({
                    "id": id,
                    "name": name,
                    "type": "Microsoft.ContainerRegistry/registries",
                    "location": body["location"],
                    "sku": {"name": body["sku"]["name"], "tier": body["sku"]["name"]},
                    "properties": {"loginServer": format!("{}.azurecr.io", name.to_ascii_lowercase()), "adminUserEnabled": false, "provisioningState": "Succeeded", "roleAssignmentMode": "LegacyRegistryPermissions"},
                });
                w.registries.retain(|r| r["id"] != registry["id"]);
                w.registries.push(registry.clone());
                let done = Arc::new(Mutex::new(Some(Ok(()))));
                let operation = self.start_operation(&mut w, done);
                let mut accepted = reply(StatusCode::CREATED, registry);
                let status = format!("{}/subscriptions/{}/providers/Microsoft.ContainerRegistry/locations/westeurope/operationStatuses/{operation}?api-version=2025-11-01", self.endpoint, segments[1]);
                accepted.headers_mut().insert("azure-asyncoperation", status.parse().unwrap());
                accepted
            }
            _ => arm_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "The method is not allowed."),
        }
    }

    /// A cluster write: a creation (standing up a real cluster), or an update of one that exists.
    async fn put_cluster(&self, id: &str, segments: &[&str], body: &Value) -> Reply {
        let name = segments[7].to_string();
        let subscription = segments[1].to_string();
        let mut w = self.world.lock().unwrap();
        if w.provisioning.busy_writes > 0 {
            w.provisioning.busy_writes -= 1;
            return arm_error(StatusCode::CONFLICT, "OperationNotAllowed", &format!("Operation is not allowed because there's an in progress update managed cluster operation on the managed cluster '{name}' started at 2026-12-01T09:00:00Z. Please wait for it to finish. See https://aka.ms/aks-pending-operation for more details"));
        }
        if let Some((status, code, message)) = w.provisioning.refuse_creation.clone() {
            return arm_error(StatusCode::from_u16(status).unwrap(), &code, &message);
        }
        let props = &body["properties"];
        if !props["agentPoolProfiles"].is_array() || !body["location"].is_string() {
            return arm_error(StatusCode::BAD_REQUEST, "InvalidParameter", "Provisioning of resource(s) for container service failed. Message: The agentPoolProfiles and location are required.");
        }
        if props.get("provisioningState").is_some() || props.get("fqdn").is_some() {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                "Read-only properties provisioningState and fqdn cannot be set.",
            );
        }
        let group_exists = {
            let group = segments[3];
            (w.provisioning.resource_groups.iter())
                .any(|g| g["name"].as_str().unwrap().eq_ignore_ascii_case(group))
                || w.clusters
                    .iter()
                    .any(|c| c.resource["id"].as_str().unwrap().eq_ignore_ascii_case(id))
        };
        if !group_exists {
            return arm_error(
                StatusCode::NOT_FOUND,
                "ResourceGroupNotFound",
                &format!("Resource group '{}' could not be found.", segments[3]),
            );
        }
        let existing = (w.clusters.iter_mut())
            .find(|c| c.resource["id"].as_str().unwrap().eq_ignore_ascii_case(id));
        if let Some(cluster) = existing {
            // An update: the written properties over what only ARM sets.
            let kept = cluster.resource["properties"].clone();
            let mut properties = props.clone();
            for only_arm in [
                "fqdn",
                "identityProfile",
                "powerState",
                "currentKubernetesVersion",
            ] {
                properties[only_arm] = kept[only_arm].clone();
            }
            if properties["oidcIssuerProfile"]["enabled"] == true {
                properties["oidcIssuerProfile"]["issuerURL"] = json!(format!(
                    "https://westeurope.oic.prod-aks.azure.com/{TENANT}/{name}/"
                ));
            }
            properties["provisioningState"] = json!("Succeeded");
            cluster.resource["properties"] = properties;
            let resource = cluster.resource.clone();
            let done = Arc::new(Mutex::new(Some(Ok(()))));
            return self.accepted(&mut w, &subscription, done, StatusCode::OK, resource);
        }
        let Some(provisioner) = w.provisioning.provisioner.clone() else {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                "this fake has no provisioner for new clusters",
            );
        };
        let mut properties = props.clone();
        properties["provisioningState"] = json!("Creating");
        properties["powerState"] = json!({"code": "Running"});
        properties["fqdn"] = json!(format!(
            "{}-abc123.hcp.westeurope.azmk8s.io",
            props["dnsPrefix"].as_str().unwrap_or(&name)
        ));
        properties["identityProfile"] = json!({"kubeletidentity": {
            "resourceId": format!("/subscriptions/{subscription}/resourcegroups/MC_{}_{name}_westeurope/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool", segments[3]),
            "clientId": format!("client-{name}"),
            "objectId": format!("kubelet-{name}"),
        }});
        if properties["oidcIssuerProfile"]["enabled"] == true {
            properties["oidcIssuerProfile"]["issuerURL"] = json!(format!(
                "https://westeurope.oic.prod-aks.azure.com/{TENANT}/{name}/"
            ));
        }
        let resource = json!({
            "id": id,
            "name": name,
            "type": "Microsoft.ContainerService/ManagedClusters",
            "location": body["location"],
            "tags": body["tags"],
            "sku": body["sku"],
            "identity": {"type": "SystemAssigned", "principalId": format!("cluster-identity-{name}"), "tenantId": TENANT},
            "properties": properties,
        });
        let pools: Vec<Value> = (props["agentPoolProfiles"].as_array().unwrap().iter())
            .map(|p| {
                let mut pool_props = p.clone();
                pool_props["provisioningState"] = json!("Succeeded");
                json!({"id": format!("{id}/agentPools/{}", p["name"].as_str().unwrap_or("nodepool1")), "name": p["name"], "type": "Microsoft.ContainerService/managedClusters/agentPools", "properties": pool_props})
            })
            .collect();
        w.agent_pools.insert(id.to_ascii_lowercase(), pools.clone());
        w.clusters.push(Cluster {
            resource: resource.clone(),
            user_kubeconfig: String::new(),
        });
        let done = Arc::new(Mutex::new(None));
        let finished = done.clone();
        let world = self.world.clone();
        let (key, cluster_name) = (id.to_ascii_lowercase(), name.clone());
        let creation = tokio::task::spawn_blocking(move || {
            let kubeconfig = match provisioner(&cluster_name) {
                Ok(kubeconfig) => kubeconfig,
                Err(why) => {
                    *finished.lock().unwrap() = Some(Err(why));
                    return;
                }
            };
            for pool in &pools {
                label_nodes(&kubeconfig, &pool["properties"]["nodeLabels"]);
            }
            let text = std::fs::read_to_string(&kubeconfig).unwrap_or_default();
            let mut w = world.lock().unwrap();
            if let Some(cluster) = (w.clusters.iter_mut())
                .find(|c| c.resource["id"].as_str().unwrap().to_ascii_lowercase() == key)
            {
                cluster.user_kubeconfig = text;
                // A fault may have made the creation fail meanwhile: that state stays.
                let state = &mut cluster.resource["properties"]["provisioningState"];
                if *state == "Creating" {
                    *state = json!("Succeeded");
                }
            }
            w.pool_nodes_kubeconfig = Some(kubeconfig);
            *finished.lock().unwrap() = Some(Ok(()));
        });
        if w.provisioning.synchronous {
            w.provisioning.creating = Some(creation);
        }
        self.accepted(&mut w, &subscription, done, StatusCode::CREATED, resource)
    }

    /// Waits for the creation a [`Provisioning::synchronous`] fake started, if any.
    pub(super) async fn finish_creation(&self) {
        let creating = self.world.lock().unwrap().provisioning.creating.take();
        if let Some(creating) = creating {
            creating.await.unwrap();
        }
    }

    fn delete_cluster(&self, id: &str) -> Reply {
        let subscription = id.split('/').nth(2).unwrap().to_string();
        let mut w = self.world.lock().unwrap();
        let before = w.clusters.len();
        w.clusters
            .retain(|c| !c.resource["id"].as_str().unwrap().eq_ignore_ascii_case(id));
        if w.clusters.len() == before {
            return reply(StatusCode::NO_CONTENT, Value::Null);
        }
        w.agent_pools.remove(&id.to_ascii_lowercase());
        let done = Arc::new(Mutex::new(Some(Ok(()))));
        let mut accepted = self.accepted(
            &mut w,
            &subscription,
            done,
            StatusCode::ACCEPTED,
            Value::Null,
        );
        let operation = accepted.headers()["azure-asyncoperation"]
            .to_str()
            .unwrap()
            .to_string();
        let location = operation.replace("/operations/", "/operationresults/");
        accepted
            .headers_mut()
            .insert("location", location.parse().unwrap());
        accepted
    }

    fn start_operation(&self, w: &mut World, done: Done) -> String {
        let operation = uuid::Uuid::new_v4().to_string();
        w.provisioning.operations.insert(operation.clone(), done);
        operation
    }

    /// `status` with the resource, and an `Azure-AsyncOperation` following `done`.
    fn accepted(
        &self,
        w: &mut World,
        subscription: &str,
        done: Done,
        status: StatusCode,
        body: Value,
    ) -> Reply {
        let operation = self.start_operation(w, done);
        let mut accepted = reply(status, body);
        let url = format!("{}/subscriptions/{subscription}/providers/Microsoft.ContainerService/locations/westeurope/operations/{operation}?api-version=2025-10-01", self.endpoint);
        accepted
            .headers_mut()
            .insert("azure-asyncoperation", url.parse().unwrap());
        accepted
    }

    fn is_provisioning_operation(&self, id: &str) -> bool {
        self.world
            .lock()
            .unwrap()
            .provisioning
            .operations
            .contains_key(id)
    }

    fn done(&self, id: &str) -> Option<Option<Result<(), String>>> {
        let w = self.world.lock().unwrap();
        let operation = w.provisioning.operations.get(id)?;
        let state = operation.lock().unwrap().clone();
        Some(state)
    }

    fn operation_status(&self, id: &str) -> Reply {
        match self.done(id) {
            None => arm_error(StatusCode::NOT_FOUND, "NotFound", "operation not found"),
            Some(None) => {
                let mut running = reply(
                    StatusCode::OK,
                    json!({"name": id, "status": "InProgress", "startTime": "2026-12-01T09:00:00Z"}),
                );
                running
                    .headers_mut()
                    .insert("retry-after", "2".parse().unwrap());
                running
            }
            Some(Some(Ok(()))) => reply(StatusCode::OK, json!({"name": id, "status": "Succeeded"})),
            Some(Some(Err(message))) => reply(
                StatusCode::OK,
                json!({"name": id, "status": "Failed", "error": {"code": "ProvisioningFailed", "message": message}}),
            ),
        }
    }

    fn operation_result(&self, id: &str) -> Reply {
        match self.done(id) {
            None => arm_error(StatusCode::NOT_FOUND, "NotFound", "operation not found"),
            Some(None) => reply(StatusCode::ACCEPTED, Value::Null),
            Some(Some(_)) => reply(StatusCode::NO_CONTENT, Value::Null),
        }
    }
}

/// What AKS does with a pool's `nodeLabels`: every node of the pool carries them.
fn label_nodes(kubeconfig: &std::path::Path, labels: &Value) {
    for (key, value) in labels.as_object().into_iter().flatten() {
        let label = format!("{key}={}", value.as_str().unwrap_or_default());
        let _ = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["label", "nodes", "--all", "--overwrite", &label])
            .output();
    }
}
