//! Waiting for a rollout as `kubectl rollout status` does (generation observed, updated, old replicas
//! gone, available), watching rather than polling, and requiring the pod template to run exactly the
//! pushed image. Pods are watched too, so image pulls, crashes and a missing shim fail fast with a fix.

use std::time::{Duration, Instant};

use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DynamicObject, ListParams, LogParams};
use kube::discovery::ApiResource;
use kube::runtime::{watcher, WatchStreamExt};
use serde::Serialize;

use super::connect::Connection;
use super::logs::{is_ready, pod_selector, pods_of};

/// A finished rollout.
#[derive(Clone, Debug, Serialize)]
pub struct Rollout {
    pub ready: i32,
    pub desired: i32,
    pub seconds: f64,
}

/// Where a Deployment is in its rollout.
#[derive(Debug, PartialEq)]
pub enum RolloutProgress {
    Done { ready: i32, desired: i32 },
    Waiting(String),
    Failed(String),
}

/// What one run expects a workload to roll out: the image it pushed, set in the object it
/// applied (a SpinApp, whose operator writes the Deployment, or the Deployment itself).
pub struct Expected<'a> {
    pub image: &'a str,
    pub applied: ApiResource,
}

/// After how long without an event a wait reads what it waits for itself. A watch can stay open
/// and quiet while its objects change: an API server that has just restarted serves it from a
/// watch cache that may lag for minutes (helm-controller's cache lagged with it: "failed to wait
/// for object to sync in-cache after patching"), where a read goes to etcd.
pub const RECHECK: Duration = Duration::from_secs(5);

/// Waits until Deployment `name` runs the expected image (when given) on all its replicas, read
/// again after [`RECHECK`] without an event. When
/// the object this run applied is changed to name another image (a later run's apply), the wait
/// ends at once with an error that says which image superseded this run's.
pub async fn wait(
    conn: &Connection,
    namespace: &str,
    name: &str,
    expected: Option<Expected<'_>>,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> anyhow::Result<Rollout> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let image = expected.as_ref().map(|e| e.image);
    let by_name = || watcher::Config::default().fields(&format!("metadata.name={name}"));
    let deployments: Api<Deployment> = Api::namespaced(conn.client.clone(), namespace);
    let mut deployment_events = watcher(deployments.clone(), by_name())
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut applied_events = expected.as_ref().map(|e| {
        let api: Api<DynamicObject> =
            Api::namespaced_with(conn.client.clone(), namespace, &e.applied);
        watcher(api, by_name())
            .default_backoff()
            .applied_objects()
            .boxed()
    });
    let mut pod_events: Option<BoxStream<'static, Result<Pod, watcher::Error>>> = None;
    let mut last = format!(
        "Deployment {name} does not exist yet (is the operator running? `spin-aks cluster check`)"
    );
    let mut quiet = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
    loop {
        tokio::select! {
            deployment = async {
                tokio::select! {
                    event = deployment_events.next() => {
                        quiet.reset();
                        event.and_then(Result::ok)
                    }
                    // Nothing heard for a while: the Deployment as it is now, read.
                    _ = quiet.tick() => deployments.get_opt(name).await.ok().flatten(),
                }
            } => {
                let Some(deployment) = deployment else { continue };
                match assess(&deployment, image) {
                    RolloutProgress::Done { ready, desired } => {
                        return Ok(Rollout { ready, desired, seconds: started.elapsed().as_secs_f64() });
                    }
                    RolloutProgress::Failed(reason) => anyhow::bail!("the rollout of {name} failed: {reason}"),
                    RolloutProgress::Waiting(reason) => {
                        if reason != last {
                            progress(&reason);
                            last = reason;
                        }
                    }
                }
                if pod_events.is_none() {
                    pod_events = pod_watch(conn, namespace, &deployment);
                }
            }
            Some(event) = next_or_pending(&mut applied_events) => {
                let (Ok(object), Some(expected)) = (event, expected.as_ref()) else { continue };
                if let Some(now) = superseded_by(&object, expected.image) {
                    anyhow::bail!(
                        "{} {name} was applied again by another run while this one waited: it now \
                         runs {now} instead of {}. This run's image is pushed and intact; run \
                         `spin-aks up` again (or `spin-aks apply --image {}`) to deploy it",
                        expected.applied.kind,
                        expected.image,
                        expected.image,
                    );
                }
            }
            Some(event) = next_or_pending(&mut pod_events) => {
                let Ok(pod) = event else { continue };
                if let Some(failure) = pod_failure(conn, namespace, &pod, image).await {
                    anyhow::bail!("the rollout of {name} failed: {failure}");
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                let pods = describe_unready_pods(conn, namespace, name).await;
                anyhow::bail!(
                    "the rollout of {name} did not finish within {}: {last}{pods}",
                    humantime::format_duration(timeout)
                );
            }
        }
    }
}

async fn next_or_pending<S: Stream + Unpin>(stream: &mut Option<S>) -> Option<S::Item> {
    match stream {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

fn pod_watch(
    conn: &Connection,
    namespace: &str,
    deployment: &Deployment,
) -> Option<BoxStream<'static, Result<Pod, watcher::Error>>> {
    let selector = pod_selector(deployment)?;
    let pods: Api<Pod> = Api::namespaced(conn.client.clone(), namespace);
    let config = watcher::Config::default().labels(&selector);
    Some(
        watcher(pods, config)
            .default_backoff()
            .applied_objects()
            .boxed(),
    )
}

/// The image(s) an applied SpinApp (`spec.image`) or Deployment (its containers' images) now
/// names, when none of them is `image`: another apply replaced this run's.
pub fn superseded_by(object: &DynamicObject, image: &str) -> Option<String> {
    let spec = object.data.get("spec")?;
    let images: Vec<&str> = match spec.get("image") {
        Some(one) => one.as_str().into_iter().collect(),
        None => spec
            .pointer("/template/spec/containers")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("image").and_then(|i| i.as_str()))
            .collect(),
    };
    (!images.is_empty() && !images.contains(&image)).then(|| images.join(", "))
}

/// kubectl's rollout-status steps, plus the template's image and ReplicaFailure.
pub fn assess(deployment: &Deployment, image: Option<&str>) -> RolloutProgress {
    let name = deployment.metadata.name.as_deref().unwrap_or_default();
    let spec = deployment.spec.as_ref();
    if let Some(image) = image {
        let runs = spec
            .and_then(|s| s.template.spec.as_ref())
            .is_some_and(|p| {
                p.containers
                    .iter()
                    .any(|c| c.image.as_deref() == Some(image))
            });
        if !runs {
            return RolloutProgress::Waiting(format!("Deployment {name} does not run {image} yet"));
        }
    }
    let Some(status) = deployment.status.as_ref() else {
        return RolloutProgress::Waiting(format!("Deployment {name} has no status yet"));
    };
    let generation = deployment.metadata.generation.unwrap_or(0);
    if status.observed_generation.unwrap_or(0) < generation {
        return RolloutProgress::Waiting(format!(
            "Deployment {name}'s new spec is not observed yet"
        ));
    }
    for condition in status.conditions.iter().flatten() {
        let message = condition.message.clone().unwrap_or_default();
        if condition.type_ == "Progressing"
            && condition.reason.as_deref() == Some("ProgressDeadlineExceeded")
        {
            return RolloutProgress::Failed(format!("its progress deadline passed: {message}"));
        }
        if condition.type_ == "ReplicaFailure" && condition.status == "True" {
            // A new namespace's default ServiceAccount comes from the controller manager moments
            // later (longer after it lost the API server): the ReplicaSet tries again until then.
            if message.contains("serviceaccount \"default\" not found") {
                return RolloutProgress::Waiting(format!(
                    "pods wait for their namespace's default ServiceAccount: {message}"
                ));
            }
            return RolloutProgress::Failed(replica_failure(&message));
        }
    }
    let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < desired {
        return RolloutProgress::Waiting(format!("{updated} of {desired} replicas updated"));
    }
    if status.replicas.unwrap_or(0) > updated {
        return RolloutProgress::Waiting("old replicas are terminating".to_string());
    }
    if available < updated {
        return RolloutProgress::Waiting(format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    RolloutProgress::Done {
        ready: status.ready_replicas.unwrap_or(0),
        desired,
    }
}

fn replica_failure(message: &str) -> String {
    if message.contains("RuntimeClass") {
        format!("pods are rejected: {message}. Fix: install containerd-shim-spin and its RuntimeClass (SpinKube's runtime-class-manager), or pass --runtime-class; `spin-aks cluster check` shows what is missing")
    } else {
        format!("pods cannot be created: {message}")
    }
}

/// Why a pod of the new image can never become ready, with the fix; None while it may still.
async fn pod_failure(
    conn: &Connection,
    namespace: &str,
    pod: &Pod,
    image: Option<&str>,
) -> Option<String> {
    let name = pod.metadata.name.as_deref()?;
    let status = pod.status.as_ref()?;
    for container in status.container_statuses.iter().flatten() {
        if image.is_some_and(|i| container.image != i && !pod_runs(pod, i)) {
            continue;
        }
        let waiting = container.state.as_ref().and_then(|s| s.waiting.as_ref());
        let reason = waiting
            .and_then(|w| w.reason.as_deref())
            .unwrap_or_default();
        let message = waiting.and_then(|w| w.message.clone()).unwrap_or_default();
        match reason {
            "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" => {
                let events = pod_events(conn, namespace, name).await;
                return Some(format!(
                    "pod {name} cannot pull its image ({reason}: {message}){events}. Fix: let the cluster pull from the registry (`spin-aks cluster attach-acr` for ACR, or --image-pull-secret), and check the image exists (`spin-aks push`)"
                ));
            }
            "CrashLoopBackOff" => {
                let exit = container
                    .last_state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map(|t| format!(", exit code {}", t.exit_code))
                    .unwrap_or_default();
                let logs = last_log_lines(conn, namespace, name, &container.name).await;
                return Some(format!(
                    "pod {name} keeps crashing (CrashLoopBackOff{exit}); its last log lines:\n{logs}\nFix the app (`spin up` locally reproduces most start-up errors), then apply again"
                ));
            }
            "ContainerCreating" => {
                let events = pod_events(conn, namespace, name).await;
                if events.contains("no runtime for") {
                    return Some(format!(
                        "the node cannot run Spin pods{events}. Fix: install containerd-shim-spin on the nodes (SpinKube's runtime-class-manager labels them `spin-v2=provisioned`); `spin-aks cluster check` shows which nodes lack it"
                    ));
                }
            }
            _ => {}
        }
    }
    None
}

fn pod_runs(pod: &Pod, image: &str) -> bool {
    pod.spec.as_ref().is_some_and(|s| {
        s.containers
            .iter()
            .any(|c| c.image.as_deref() == Some(image))
    })
}

/// How long a failure's warning events are waited for: the kubelet posts a pod's status and its
/// events separately, so the events may land a moment after the status that shows the failure.
const EVENTS_LAG: Duration = Duration::from_secs(2);

/// `: <reason>: <message>; …` of the pod's warning events, or empty when none came within
/// [`EVENTS_LAG`].
async fn pod_events(conn: &Connection, namespace: &str, pod: &str) -> String {
    let deadline = tokio::time::Instant::now() + EVENTS_LAG;
    loop {
        let events = pod_warnings(conn, namespace, pod).await;
        if !events.is_empty() || tokio::time::Instant::now() >= deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `: <reason>: <message>; …` of the pod's warning events now, or empty.
async fn pod_warnings(conn: &Connection, namespace: &str, pod: &str) -> String {
    let events: Api<Event> = Api::namespaced(conn.client.clone(), namespace);
    let params = ListParams::default().fields(&format!("involvedObject.name={pod}"));
    let Ok(list) = events.list(&params).await else {
        return String::new();
    };
    let warnings: Vec<String> = list
        .items
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.as_deref().unwrap_or_default(),
                e.message.as_deref().unwrap_or_default()
            )
        })
        .collect();
    if warnings.is_empty() {
        String::new()
    } else {
        format!("; events: {}", warnings.join("; "))
    }
}

async fn last_log_lines(conn: &Connection, namespace: &str, pod: &str, container: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(conn.client.clone(), namespace);
    let params = LogParams {
        container: Some(container.to_string()),
        previous: true,
        tail_lines: Some(10),
        ..LogParams::default()
    };
    match pods.logs(pod, &params).await {
        Ok(text) => text
            .lines()
            .map(|l| format!("  | {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => format!("  (logs unavailable: {e})"),
    }
}

/// At a timeout: which pods are not ready, and what their events say.
async fn describe_unready_pods(conn: &Connection, namespace: &str, name: &str) -> String {
    let pods = pods_of(conn, namespace, name).await.unwrap_or_default();
    let mut lines = Vec::new();
    for pod in pods.iter().filter(|p| !is_ready(p)) {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        let events = pod_warnings(conn, namespace, &pod_name).await;
        lines.push(format!("\n  pod {pod_name} is not ready ({phase}){events}"));
    }
    lines.concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "app", "generation": 2},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
                "template": {"spec": {"containers": [{"name": "app", "image": "r/app@sha256:1"}]}}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn follows_kubectl_rollout_status() {
        let waiting = |s| {
            matches!(
                assess(&deployment(s), Some("r/app@sha256:1")),
                RolloutProgress::Waiting(_)
            )
        };
        assert!(waiting(
            json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2})
        ));
        assert!(waiting(
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1})
        ));
        assert!(waiting(
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2})
        ));
        assert!(waiting(
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1})
        ));
        let done = json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 2});
        assert_eq!(
            assess(&deployment(done.clone()), Some("r/app@sha256:1")),
            RolloutProgress::Done {
                ready: 2,
                desired: 2
            }
        );
        assert!(
            matches!(
                assess(&deployment(done), Some("r/app@sha256:2")),
                RolloutProgress::Waiting(_)
            ),
            "another image is not our rollout"
        );
    }

    #[test]
    fn deadline_and_replica_failure_fail() {
        let failed = |s| matches!(assess(&deployment(s), None), RolloutProgress::Failed(_));
        assert!(failed(
            json!({"observedGeneration": 2, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]})
        ));
        let RolloutProgress::Failed(message) = assess(
            &deployment(json!({"observedGeneration": 2, "conditions": [
            {"type": "ReplicaFailure", "status": "True", "message": "pod rejected: RuntimeClass \"wasmtime-spin-v2\" not found"}]})),
            None,
        ) else {
            panic!()
        };
        assert!(
            message.contains("install containerd-shim-spin"),
            "{message}"
        );
        // Not yet the namespace's default ServiceAccount: waited for, as the ReplicaSet does.
        let no_account = json!({"observedGeneration": 2, "conditions": [
            {"type": "ReplicaFailure", "status": "True", "message": "pods \"app-5fb657df99-\" is forbidden: error looking up service account ns/default: serviceaccount \"default\" not found"}]});
        assert!(matches!(
            assess(&deployment(no_account), None),
            RolloutProgress::Waiting(_)
        ));
        // Another, named one is the user's to create: it fails at once.
        assert!(failed(
            json!({"observedGeneration": 2, "conditions": [{"type": "ReplicaFailure", "status": "True", "message": "pods \"app-1\" is forbidden: error looking up service account ns/app: serviceaccount \"app\" not found"}]})
        ));
    }

    #[test]
    fn an_applied_object_naming_another_image_is_superseded() {
        let object = |spec: serde_json::Value| -> DynamicObject {
            serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "X", "metadata": {"name": "app"}, "spec": spec
            }))
            .unwrap()
        };
        let containers = |images: &[&str]| {
            let list: Vec<_> = images
                .iter()
                .map(|i| json!({"name": "c", "image": i}))
                .collect();
            json!({"template": {"spec": {"containers": list}}})
        };
        let cases = [
            (json!({"image": "r/a@sha256:1"}), None),
            (json!({"image": "r/a@sha256:2"}), Some("r/a@sha256:2")),
            (containers(&["side:1", "r/a@sha256:1"]), None),
            (containers(&["r/a@sha256:2"]), Some("r/a@sha256:2")),
            (
                containers(&["r/a@sha256:2", "side:1"]),
                Some("r/a@sha256:2, side:1"),
            ),
            // An object that names no image (yet) supersedes nothing.
            (json!({"replicas": 1}), None),
        ];
        for (spec, want) in cases {
            let got = superseded_by(&object(spec.clone()), "r/a@sha256:1");
            assert_eq!(got.as_deref(), want, "{spec}");
        }
    }
}
