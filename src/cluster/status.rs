//! What runs for an app: its SpinApp or Deployment, the image digest the pods run, ready/desired
//! replicas, the Deployment's conditions, and the endpoint if one is exposed.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DynamicObject};
use serde::Serialize;

use super::apply::Resources;
use super::connect::Connection;
use super::errors::{explain, Action};
use super::expose::address_of;

#[derive(Debug, Serialize)]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AppStatus {
    pub cluster: String,
    pub namespace: String,
    /// `SpinApp` or `Deployment`.
    pub kind: String,
    pub name: String,
    pub image: Option<String>,
    pub digest: Option<String>,
    pub ready: i32,
    pub desired: i32,
    pub endpoint: Option<String>,
    pub conditions: Vec<Condition>,
}

/// The status of app `name` in `namespace`; an error when nothing of it runs there.
pub async fn read(
    conn: &Connection,
    resources: &Resources,
    namespace: &str,
    name: &str,
) -> anyhow::Result<AppStatus> {
    let kind = if spinapp_exists(conn, resources, namespace, name).await? {
        "SpinApp"
    } else {
        "Deployment"
    };
    let deployments: Api<Deployment> = Api::namespaced(conn.client.clone(), namespace);
    let deployment = deployments
        .get_opt(name)
        .await
        .map_err(|e| explain(e, conn, Action::new("get", "deployments", Some(namespace))))?;
    if deployment.is_none() && kind == "Deployment" {
        anyhow::bail!(
            "{name} is not deployed in namespace {namespace} of context `{}`; deploy it with `spin-aks up`",
            conn.context
        );
    }
    let spec = deployment.as_ref().and_then(|d| d.spec.as_ref());
    let status = deployment.as_ref().and_then(|d| d.status.as_ref());
    let image = spec
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .and_then(|c| c.image.clone());
    let digest = image
        .as_deref()
        .and_then(|i| i.split_once('@'))
        .map(|(_, d)| d.to_string());
    let conditions = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .map(|c| Condition {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
        })
        .collect();
    Ok(AppStatus {
        cluster: conn.context.clone(),
        namespace: namespace.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        image,
        digest,
        ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
        desired: spec.and_then(|s| s.replicas).unwrap_or(0),
        endpoint: endpoint(conn, namespace, name).await,
        conditions,
    })
}

async fn spinapp_exists(
    conn: &Connection,
    resources: &Resources,
    namespace: &str,
    name: &str,
) -> anyhow::Result<bool> {
    let Some(group) = resources.spinapp_group() else {
        return Ok(false);
    };
    let (resource, _) = resources.resolve(&format!("{group}/v1alpha1"), "SpinApp")?;
    let api: Api<DynamicObject> = Api::namespaced_with(conn.client.clone(), namespace, &resource);
    let found = api
        .get_opt(name)
        .await
        .map_err(|e| explain(e, conn, Action::new("get", "spinapps", Some(namespace))))?;
    Ok(found.is_some())
}

/// The LoadBalancer Service's address or the Ingress host, when exposed and assigned.
async fn endpoint(conn: &Connection, namespace: &str, name: &str) -> Option<String> {
    let services: Api<Service> = Api::namespaced(conn.client.clone(), namespace);
    if let Ok(Some(service)) = services.get_opt(&format!("{name}-public")).await {
        let address = address_of(&service.status?.load_balancer?.ingress?)?;
        return Some(format!("http://{address}"));
    }
    let ingresses: Api<Ingress> = Api::namespaced(conn.client.clone(), namespace);
    let ingress = ingresses.get_opt(name).await.ok()??;
    let assigned = ingress
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?;
    if assigned.is_empty() {
        return None;
    }
    let host = ingress.spec?.rules?.first()?.host.clone()?;
    Some(format!("http://{host}"))
}
