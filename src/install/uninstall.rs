//! `cluster uninstall`: what `cluster install` applied, removed in the order that lets each part
//! clean up after itself (the Shim while runtime-class-manager runs, then the charts through
//! helm-controller), refused while SpinApps exist unless forced.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use serde::Serialize;
use serde_json::{json, Value};

use super::objects::{NAMESPACE, NODE_LABEL};
use crate::bad_input;
use crate::cluster::apply::{self, parent_group_kinds, ServedApis, FIELD_MANAGER};
use crate::cluster::connect::Connection;
use crate::cluster::errors::{explain, ApiCall};
use crate::output::Output;

/// What `cluster uninstall` reports.
#[derive(Debug, Serialize)]
pub struct UninstallReport {
    pub cluster: String,
    /// `kind/name` of each deleted object.
    pub deleted: Vec<String>,
    /// Nodes whose shim label (set by install) was removed.
    pub unlabelled_nodes: Vec<String>,
}

/// Removes SpinKube as `cluster install` put it there.
pub async fn uninstall(
    conn: &Connection,
    force: bool,
    timeout: Duration,
    out: &Output,
) -> anyhow::Result<UninstallReport> {
    let resources = ServedApis::discover(conn).await?;
    let spinapps = list(conn, &resources, "SpinApp").await?;
    if !spinapps.is_empty() && !force {
        let names: Vec<String> = spinapps
            .iter()
            .map(|(ns, name)| format!("{ns}/{name}"))
            .collect();
        return Err(bad_input!(
            "SpinApps run on {}: {}. Uninstalling SpinKube deletes its CRDs and with them every SpinApp; delete the apps first (`spin-aks delete` in each app), or pass --force to delete them with it",
            conn.context,
            names.join(", ")
        ));
    }
    let mut deleted = Vec::new();
    // SpinApps, then the executors, while the operator still runs: it holds a finalizer on each
    // executor (released once no SpinApp uses it), which would keep its CRD from going away.
    for kind in ["SpinApp", "SpinAppExecutor"] {
        let Some(resource) = spinkube_resource(&resources, kind) else {
            continue;
        };
        for (namespace, name) in list(conn, &resources, kind).await? {
            apply::delete(conn, &resource, true, &namespace, &name, false).await?;
            gone(conn, &resource, Some(&namespace), &name, timeout).await?;
            deleted.push(format!("{}/{namespace}/{name}", kind.to_ascii_lowercase()));
        }
    }
    let set = super::install_set();
    let group_kinds = parent_group_kinds(conn, &set).await?;
    let mut members = apply::members(conn, &resources, &set, &group_kinds).await?;
    // The Shim first (runtime-class-manager removes the shim from the nodes), then the charts
    // (helm-controller uninstalls them), then the sources and the CRDs.
    let rank = |kind: &str| match kind {
        "Shim" => 0,
        "HelmRelease" => 1,
        _ => 2,
    };
    members.sort_by_key(|(resource, _, _)| rank(&resource.kind));
    for (resource, namespaced, object) in &members {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        apply::delete(conn, resource, *namespaced, NAMESPACE, name, false).await?;
        // A CRD is gone only once the API server has deleted its objects: an install right
        // after must not apply it while it is terminating (it would vanish after the install).
        if rank(&resource.kind) < 2 || resource.kind == "CustomResourceDefinition" {
            out.info(format!(
                "waiting for {}/{name} to be cleaned up",
                resource.kind.to_ascii_lowercase()
            ));
            let namespace = namespaced.then_some(NAMESPACE);
            gone(conn, resource, namespace, name, timeout).await?;
        }
        deleted.push(format!("{}/{name}", resource.kind.to_ascii_lowercase()));
    }
    let unlabelled_nodes = unlabel_nodes(conn).await?;
    if !group_kinds.is_empty() {
        let (secret, _) = resources.resolve("v1", "Secret")?;
        apply::delete(conn, &secret, true, NAMESPACE, &set.parent_name, false).await?;
        let (namespace, _) = resources.resolve("v1", "Namespace")?;
        apply::delete(conn, &namespace, false, "", NAMESPACE, false).await?;
        // Gone before we return, so that an install right after finds no terminating namespace.
        gone(conn, &namespace, None, NAMESPACE, timeout).await?;
        deleted.push(format!("namespace/{NAMESPACE}"));
    }
    Ok(UninstallReport {
        cluster: conn.context.clone(),
        deleted,
        unlabelled_nodes,
    })
}

/// The resource of SpinKube's `kind` in the group the cluster serves, if it does.
fn spinkube_resource(resources: &ServedApis, kind: &str) -> Option<ApiResource> {
    let group = resources.spinapp_group()?;
    let (resource, _) = resources.resolve(&format!("{group}/v1alpha1"), kind).ok()?;
    Some(resource)
}

/// `(namespace, name)` of every object of SpinKube's `kind` (none when it is not served).
async fn list(
    conn: &Connection,
    resources: &ServedApis,
    kind: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let Some(resource) = spinkube_resource(resources, kind) else {
        return Ok(Vec::new());
    };
    let api: Api<DynamicObject> = Api::all_with(conn.client.clone(), &resource);
    let listed = api
        .list(&ListParams::default())
        .await
        .map_err(|e| explain(e, conn, ApiCall::new("list", &resource.plural, None)))?;
    let name = |o: &DynamicObject| {
        let namespace = o.metadata.namespace.clone().unwrap_or_default();
        (namespace, o.metadata.name.clone().unwrap_or_default())
    };
    Ok(listed.items.iter().map(name).collect())
}

/// Waits until the object is gone (its finalizers done).
async fn gone(
    conn: &Connection,
    resource: &ApiResource,
    namespace: Option<&str>,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let api: Api<DynamicObject> = match namespace {
        Some(namespace) => Api::namespaced_with(conn.client.clone(), namespace, resource),
        None => Api::all_with(conn.client.clone(), resource),
    };
    let started = Instant::now();
    loop {
        let found = api
            .get_opt(name)
            .await
            .map_err(|e| explain(e, conn, ApiCall::new("get", &resource.plural, namespace)))?;
        if found.is_none() {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            anyhow::bail!(
                "{}/{name} is still there after {}s: its controller did not finish cleaning up (see its status and the controller's logs)",
                resource.kind.to_ascii_lowercase(),
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Removes the shim label from the nodes where install set it (spin-aks owns that field).
async fn unlabel_nodes(conn: &Connection) -> anyhow::Result<Vec<String>> {
    let nodes: Api<Node> = Api::all(conn.client.clone());
    let list = nodes
        .list(&ListParams::default())
        .await
        .map_err(|e| explain(e, conn, ApiCall::new("list", "nodes", None)))?;
    let mut unlabelled = Vec::new();
    for node in list.items {
        let ours = node.metadata.managed_fields.iter().flatten().any(|f| {
            f.manager.as_deref() == Some(FIELD_MANAGER)
                && f.fields_v1.as_ref().is_some_and(|v| {
                    v.0["f:metadata"]["f:labels"][format!("f:{}", NODE_LABEL.0)] != Value::Null
                })
        });
        if !ours {
            continue;
        }
        let name = node.metadata.name.clone().unwrap_or_default();
        // Applying none of the fields spin-aks owned removes them.
        let empty = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}});
        nodes
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Apply(empty),
            )
            .await
            .map_err(|e| explain(e, conn, ApiCall::new("patch", "nodes", None)))?;
        unlabelled.push(name);
    }
    Ok(unlabelled)
}
