//! What runs for an app: its SpinApp or Deployment, the image digest the pods run, ready/desired
//! replicas, the Deployment's conditions, and the endpoint if one is exposed.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DynamicObject};
use serde::Serialize;

use super::apply::ServedApis;
use super::connect::Connection;
use super::errors::{explain, ApiCall};
use super::expose::{ingress_address, public_service, service_address};

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

/// What a status is made of, however it was read: whether the SpinApp exists, and the
/// Deployment, the public Service and the Ingress of that name.
#[derive(Debug, Default)]
pub struct Observed {
    pub spinapp: bool,
    pub deployment: Option<Deployment>,
    pub service: Option<Service>,
    pub ingress: Option<Ingress>,
}

/// Where the status was read: the cluster (context or AKS name), namespace and app name.
pub struct Place<'a> {
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// The status of app `name` in `namespace` through the API; an error when nothing of it runs there.
pub async fn read(
    conn: &Connection,
    resources: &ServedApis,
    namespace: &str,
    name: &str,
) -> anyhow::Result<AppStatus> {
    let deployments: Api<Deployment> = Api::namespaced(conn.client.clone(), namespace);
    let services: Api<Service> = Api::namespaced(conn.client.clone(), namespace);
    let ingresses: Api<Ingress> = Api::namespaced(conn.client.clone(), namespace);
    let observed = Observed {
        spinapp: spinapp_exists(conn, resources, namespace, name).await?,
        deployment: deployments
            .get_opt(name)
            .await
            .map_err(|e| explain(e, conn, ApiCall::new("get", "deployments", Some(namespace))))?,
        service: services.get_opt(&public_service(name)).await.ok().flatten(),
        ingress: ingresses.get_opt(name).await.ok().flatten(),
    };
    let place = Place {
        cluster: &conn.context,
        namespace,
        name,
    };
    compose(&place, observed)
}

/// The status from what was observed; an error when nothing of the app runs there.
pub fn compose(place: &Place<'_>, observed: Observed) -> anyhow::Result<AppStatus> {
    let Place {
        cluster,
        namespace,
        name,
    } = *place;
    let kind = if observed.spinapp {
        "SpinApp"
    } else {
        "Deployment"
    };
    let deployment = observed.deployment;
    if deployment.is_none() && !observed.spinapp {
        anyhow::bail!(
            "{name} is not deployed in namespace {namespace} of `{cluster}`; deploy it with `spin-aks up`"
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
        cluster: cluster.to_string(),
        namespace: namespace.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        image,
        digest,
        ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
        desired: spec.and_then(|s| s.replicas).unwrap_or(0),
        endpoint: endpoint(observed.service, observed.ingress),
        conditions,
    })
}

async fn spinapp_exists(
    conn: &Connection,
    resources: &ServedApis,
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
        .map_err(|e| explain(e, conn, ApiCall::new("get", "spinapps", Some(namespace))))?;
    Ok(found.is_some())
}

/// The LoadBalancer Service's address or the Ingress host, when exposed and assigned.
fn endpoint(service: Option<Service>, ingress: Option<Ingress>) -> Option<String> {
    if let Some(service) = service {
        return Some(format!("http://{}", service_address(&service)?));
    }
    let ingress = ingress?;
    ingress_address(&ingress)?;
    let host = ingress.spec?.rules?.first()?.host.clone()?;
    Some(format!("http://{host}"))
}
