//! Where the app answers: a LoadBalancer Service or an AKS app-routing Ingress (applied with the app,
//! then watched until the cloud gives it an address), or, by default, the port-forward command.

use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::Api;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use super::connect::Connection;

/// The AKS application routing add-on's IngressClass.
pub const INGRESS_CLASS: &str = "webapprouting.kubernetes.azure.com";

/// How the app is reached from outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exposure {
    None,
    LoadBalancer,
    Ingress { host: String },
}

/// The Service/Ingress for `exposure`, routing to the pods `selector` picks (the app's Service for
/// an Ingress).
pub fn objects(exposure: &Exposure, app: &str, selector: &Map<String, Value>) -> Vec<Value> {
    match exposure {
        Exposure::None => Vec::new(),
        Exposure::LoadBalancer => vec![json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": public_service(app)},
            "spec": {
                "type": "LoadBalancer",
                "selector": selector,
                "ports": [{"name": "http", "port": 80, "targetPort": 80, "protocol": "TCP"}],
            },
        })],
        Exposure::Ingress { host } => vec![json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": app},
            "spec": {
                "ingressClassName": INGRESS_CLASS,
                "rules": [{"host": host, "http": {"paths": [{
                    "path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": app, "port": {"number": 80}}},
                }]}}],
            },
        })],
    }
}

/// The labels of the app's pods: the operator's for a SpinApp, else the Deployment's selector.
pub fn pod_selector(objects: &[Value], app: &str) -> Map<String, Value> {
    if objects.iter().any(|o| o["kind"] == "SpinApp") {
        let mut map = Map::new();
        map.insert(
            "core.spinkube.dev/app-name".into(),
            Value::String(app.into()),
        );
        return map;
    }
    objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .and_then(|d| d["spec"]["selector"]["matchLabels"].as_object().cloned())
        .unwrap_or_default()
}

/// Watches the Service or Ingress until it has an address; returns the URL the app answers on.
pub async fn wait_for_address(
    conn: &Connection,
    namespace: &str,
    exposure: &Exposure,
    app: &str,
    timeout: Duration,
) -> anyhow::Result<Option<String>> {
    let wait = async {
        match exposure {
            Exposure::None => Ok(None),
            Exposure::LoadBalancer => {
                let address =
                    first_address(conn, namespace, &public_service(app), service_address).await?;
                Ok(Some(format!("http://{address}")))
            }
            Exposure::Ingress { host } => {
                first_address(conn, namespace, app, ingress_address).await?;
                Ok(Some(format!("http://{host}")))
            }
        }
    };
    tokio::time::timeout(timeout, wait).await.map_err(|_| {
        anyhow::anyhow!(
            "the {} of {app} got no address within {}: does the cluster have a load balancer (AKS does) or the app routing add-on for ingress (`az aks approuting enable`)?",
            match exposure { Exposure::Ingress { .. } => "Ingress", _ => "LoadBalancer Service" },
            humantime::format_duration(timeout)
        )
    })?
}

/// The name of the LoadBalancer Service `--expose loadbalancer` makes for `app`.
pub fn public_service(app: &str) -> String {
    format!("{app}-public")
}

/// The first IP or host name a load balancer reported.
fn address_of(ingress: &[k8s_openapi::api::core::v1::LoadBalancerIngress]) -> Option<String> {
    ingress
        .iter()
        .find_map(|a| a.ip.clone().or_else(|| a.hostname.clone()))
}

/// The address a LoadBalancer Service was given, once it has one.
pub fn service_address(service: &Service) -> Option<String> {
    address_of(
        service
            .status
            .as_ref()?
            .load_balancer
            .as_ref()?
            .ingress
            .as_ref()?,
    )
}

/// The address the ingress controller's load balancer gave an Ingress, once it has one.
pub fn ingress_address(ingress: &Ingress) -> Option<String> {
    let status = ingress.status.as_ref()?.load_balancer.as_ref()?;
    status
        .ingress
        .as_ref()?
        .iter()
        .find_map(|a| a.ip.clone().or_else(|| a.hostname.clone()))
}

async fn first_address<K>(
    conn: &Connection,
    namespace: &str,
    name: &str,
    address: impl Fn(&K) -> Option<String>,
) -> anyhow::Result<String>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let api: Api<K> = Api::namespaced(conn.client.clone(), namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher(api, config)
        .default_backoff()
        .applied_objects()
        .boxed();
    while let Some(event) = events.next().await {
        if let Some(found) = event.ok().as_ref().and_then(&address) {
            return Ok(found);
        }
    }
    anyhow::bail!("the watch on {name} ended")
}
