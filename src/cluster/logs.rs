//! The app's pods and their logs through the API server: one stream per pod, lines prefixed with
//! the pod name when there are several, followed with `-f`.

use std::time::Duration;

use futures_util::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};

use super::connect::Connection;
use super::errors::{explain, ApiCall};

/// The pods of Deployment `name` (by its selector), sorted by name.
pub async fn pods_of(conn: &Connection, namespace: &str, name: &str) -> anyhow::Result<Vec<Pod>> {
    let deployments: Api<Deployment> = Api::namespaced(conn.client.clone(), namespace);
    let deployment = deployments
        .get_opt(name)
        .await
        .map_err(|e| explain(e, conn, ApiCall::new("get", "deployments", Some(namespace))))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no Deployment {name} in namespace {namespace} of context `{}`: apply the app first (`spin-aks up`)",
                conn.context
            )
        })?;
    let selector = pod_selector(&deployment).unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(conn.client.clone(), namespace);
    let mut list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| explain(e, conn, ApiCall::new("list", "pods", Some(namespace))))?
        .items;
    list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(list)
}

/// The label selector (`k=v,…`) of a Deployment's pods.
pub fn pod_selector(deployment: &Deployment) -> Option<String> {
    let labels = deployment.spec.as_ref()?.selector.match_labels.as_ref()?;
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Some(pairs.join(","))
}

/// True when the pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// How to read the logs.
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub since: Option<Duration>,
    pub tail: Option<i64>,
}

/// Sends each line of each pod's log to `line` (pod name, text) until the streams end.
pub async fn stream(
    conn: &Connection,
    namespace: &str,
    pods: &[Pod],
    options: &LogOptions,
    line: &(dyn Fn(&str, &str) + Sync),
) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(conn.client.clone(), namespace);
    let params = LogParams {
        follow: options.follow,
        since_seconds: options.since.map(|d| d.as_secs() as i64),
        tail_lines: options.tail,
        ..LogParams::default()
    };
    let readers = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .map(|name| {
            let api = api.clone();
            let params = params.clone();
            async move {
                let reader = api.log_stream(&name, &params).await.map_err(|e| {
                    explain(
                        e,
                        conn,
                        ApiCall::new("get logs of", "pods", Some(namespace)),
                    )
                })?;
                let mut lines = reader.lines();
                while let Some(text) = lines.next().await {
                    line(&name, &text?);
                }
                anyhow::Ok(())
            }
        });
    for result in futures_util::future::join_all(readers).await {
        result?;
    }
    Ok(())
}
