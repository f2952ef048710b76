//! Waiting for the install's stages, watched: Flux's CRDs and Deployments, a HelmRelease applied
//! by helm-controller and then its Deployments rolled out, cert-manager's API, the Shim's nodes.

use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::watcher::Event;
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::{json, Value};

use super::objects::{chart_name, NAMESPACE};
use crate::cluster::apply::FIELD_MANAGER;
use crate::cluster::connect::Connection;
use crate::cluster::errors::{explain, ApiCall};
use crate::cluster::rollout::RECHECK;

/// How often cert-manager's API is asked again while its webhook does not answer (there is
/// nothing to watch for that).
const API_POLL: Duration = Duration::from_millis(250);
/// The Issuer cert-manager's API is asked to take (a dry run: it is never stored).
const API_CHECK_ISSUER: &str = "spin-aks-api-check";
/// How often a release's HelmChart is looked at for a pull error while the release is waited for.
const CHART_POLL: Duration = Duration::from_secs(2);

/// The `Ready` reasons of a Helm action that failed (helm-controller's v2 API).
const FAILED_ACTIONS: [&str; 4] = [
    "InstallFailed",
    "UpgradeFailed",
    "RollbackFailed",
    "UninstallFailed",
];

/// Waits until HelmRelease `name` is Ready for its current generation; fails at once when Flux
/// gave up (Stalled), else after `timeout`, with Flux's last message.
pub async fn release_ready(
    conn: &Connection,
    name: &str,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> anyhow::Result<()> {
    let releases = resource(
        "helm.toolkit.fluxcd.io",
        "v2",
        "HelmRelease",
        "helmreleases",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(conn.client.clone(), NAMESPACE, &releases);
    let until = |object: &DynamicObject| {
        release_outcome(object.metadata.generation, &object.data["status"])
    };
    // The chart's own status says why when it cannot be pulled (helm-controller names its
    // HelmChart `<namespace>-<release>`; the release's message does not repeat it).
    let chart_resource = resource("source.toolkit.fluxcd.io", "v1", "HelmChart", "helmcharts");
    let charts: Api<DynamicObject> =
        Api::namespaced_with(conn.client.clone(), NAMESPACE, &chart_resource);
    let chart_name = chart_name(name);
    let chart_failure = || async {
        let chart = charts.get_opt(&chart_name).await.ok().flatten()?;
        let (state, message) = condition(&chart.data["status"], "Ready")?;
        (state == "False").then(|| message.to_string())
    };
    let watch_chart = async {
        let mut said = String::new();
        loop {
            if let Some(message) = chart_failure().await.filter(|m| *m != said) {
                progress(&format!("its chart: {message}"));
                said = message;
            }
            tokio::time::sleep(CHART_POLL).await;
        }
    };
    let action = ApiCall::new("get", "helmreleases", Some(NAMESPACE));
    let released = watch_until(conn, &api, name, &action, timeout, progress, &until);
    let why = tokio::select! {
        result = released => match result {
            Ok(()) => return Ok(()),
            Err(why) => why,
        },
        never = watch_chart => never,
        never = recover_lost_ready(&api, name, progress) => match never {},
    };
    let pulled = chart_failure().await;
    Err(match pulled {
        Some(message) => anyhow::anyhow!(
            "the HelmRelease {NAMESPACE}/{name} did not become ready: its chart cannot be pulled: {message}. The cluster must reach the chart registry (name a mirror it reaches with --chart-registry) and the registry must hold that chart version; see `kubectl describe helmchart -n {NAMESPACE} {chart_name}`"
        ),
        _ => anyhow::anyhow!(
            "the HelmRelease {NAMESPACE}/{name} did not become ready: {why:#}; see `kubectl describe helmrelease -n {NAMESPACE} {name}` and helm-controller's logs"
        ),
    })
}

/// Looks at HelmRelease `name` every [`RECHECK`] for the state helm-controller can leave after its
/// cache fell behind the API server (one restarted, fluxcd/helm-controller#1409): the release
/// recorded deployed with the desired chart and values, but the conditions patch, sent with the
/// stale resourceVersion, refused, so `Ready` keeps "Running 'install' action…" and every later
/// reconcile finds the release in sync and writes nothing. helm-controller leaves that state
/// only through a forced upgrade (`flux reconcile helmrelease --force`'s annotations), asked for
/// here, again if the forced upgrade ended the same way. Runs until dropped.
async fn recover_lost_ready(
    api: &Api<DynamicObject>,
    name: &str,
    progress: &dyn Fn(&str),
) -> std::convert::Infallible {
    let mut asked: Option<String> = None;
    loop {
        tokio::time::sleep(RECHECK).await;
        let Ok(Some(object)) = api.get_opt(name).await else {
            continue;
        };
        let status = &object.data["status"];
        // Our request is still to be handled (helm-controller records it as it takes it).
        let pending = asked
            .as_deref()
            .is_some_and(|token| status["lastHandledForceAt"].as_str() != Some(token));
        if pending || !lost_ready(object.metadata.generation, status) {
            continue;
        }
        let token = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        let patch = Patch::Merge(json!({"metadata": {"annotations": {
            "reconcile.fluxcd.io/requestedAt": token,
            "reconcile.fluxcd.io/forceAt": token,
        }}}));
        if api
            .patch(name, &PatchParams::default(), &patch)
            .await
            .is_ok()
        {
            progress("helm-controller recorded the release deployed but lost its Ready condition (fluxcd/helm-controller#1409); asked it to upgrade the release in place (`flux reconcile helmrelease --force`)");
            asked = Some(token);
        }
    }
}

/// Whether a HelmRelease's `status` is helm-controller's lost `Ready`: its last Helm action,
/// for the current generation, recorded deployed with the chart version and values digest it
/// attempted, yet `Ready` still says the action runs, with no `Reconciling` (set beside it while
/// an action really runs) and no `Released` (written before the history, in the same patch as
/// `Ready=True`, so absent only when that patch was refused).
fn lost_ready(generation: Option<i64>, status: &Value) -> bool {
    let generation = generation.unwrap_or(0);
    let latest = &status["history"][0];
    let same = |ours: &str, theirs: &str| {
        status[ours]
            .as_str()
            .is_some_and(|v| Some(v) == latest[theirs].as_str())
    };
    let progressing = condition(status, "Ready").is_some_and(|(state, _)| state == "Unknown")
        && ready_reason(status) == Some("Progressing");
    status["observedGeneration"].as_i64() == Some(generation)
        && status["lastAttemptedGeneration"].as_i64() == Some(generation)
        && latest["status"] == "deployed"
        && same("lastAttemptedRevision", "chartVersion")
        && same("lastAttemptedConfigDigest", "configDigest")
        && progressing
        && condition(status, "Reconciling").is_none()
        && condition(status, "Released").is_none()
}

/// Waits until cert-manager's API takes an Issuer: a server-side dry run of a self-signed Issuer
/// in [`NAMESPACE`] goes through cert-manager's validating webhook (`failurePolicy: Fail`), so it
/// is accepted only once that webhook serves with its CA bundle injected. This is the check the
/// chart's `startupapicheck` hook Job makes (`cmctl check api`: a dry-run create, asked again
/// every 5 s), made from here and four times as often; called once the release is Ready, so its
/// webhook configurations exist. It is sent as a server-side apply of an Issuer that does not
/// exist — a create to the webhook — because the API server holds every `create` of a custom
/// resource for 2 s while its CRD is less than 2 s established (apiextensions-apiserver
/// customresource_handler.go, for HA servers to catch up), and the release is Ready that soon
/// after its CRDs now. A refusal other than "not served yet" (404) or a webhook that does not
/// answer (5xx) fails at once.
pub async fn cert_manager_api(
    conn: &Connection,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> anyhow::Result<()> {
    let issuers = resource("cert-manager.io", "v1", "Issuer", "issuers");
    let api: Api<DynamicObject> = Api::namespaced_with(conn.client.clone(), NAMESPACE, &issuers);
    let issuer = json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Issuer",
        "metadata": {"name": API_CHECK_ISSUER},
        "spec": {"selfSigned": {}},
    });
    let params = PatchParams::apply(FIELD_MANAGER).dry_run();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let message = match api
            .patch(API_CHECK_ISSUER, &params, &Patch::Apply(&issuer))
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 || status.code >= 500 => {
                status.message
            }
            Err(e) => {
                return Err(explain(
                    e,
                    conn,
                    ApiCall::new("patch", "issuers.cert-manager.io", Some(NAMESPACE)),
                )
                .context("cert-manager's API refused a dry-run Issuer"))
            }
        };
        if message != last {
            progress(&format!("its API: {message}"));
            last = message;
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "cert-manager's API did not take a dry-run Issuer within {}s: {last}; see `kubectl get pods -n cert-manager` and the cert-manager-webhook logs",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(API_POLL).await;
    }
}

/// Where a HelmRelease stands, from its `metadata.generation` and `status`.
fn release_outcome(generation: Option<i64>, status: &Value) -> Outcome {
    let generation = generation.unwrap_or(0);
    let observed = status["observedGeneration"].as_i64().unwrap_or(-1);
    let ready = condition(status, "Ready");
    let stalled = condition(status, "Stalled");
    // A failed Helm action is retried only after the release's interval: report it now.
    let failed_action = ready
        .filter(|(state, _)| *state == "False")
        .and_then(|_| ready_reason(status))
        .is_some_and(|reason| FAILED_ACTIONS.contains(&reason));
    match (observed >= generation, ready, stalled) {
        (true, Some(("True", _)), _) => Outcome::Done,
        (_, _, Some(("True", message))) => Outcome::Failed(message.to_string()),
        (true, Some((_, message)), _) if failed_action => Outcome::Failed(message.to_string()),
        (_, Some((_, message)), _) => Outcome::Waiting(message.to_string()),
        _ => Outcome::Waiting("waiting for helm-controller to pick it up".into()),
    }
}

/// Waits until the Shim `name` reports every node it selects provisioned (and at least one).
pub async fn shim_installed(
    conn: &Connection,
    name: &str,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> anyhow::Result<()> {
    let resource = resource("runtime.spinkube.dev", "v1alpha1", "Shim", "shims");
    let api: Api<DynamicObject> = Api::all_with(conn.client.clone(), &resource);
    let until = |object: &DynamicObject| -> Outcome {
        let status = &object.data["status"];
        let nodes = status["nodes"].as_i64().unwrap_or(0);
        let ready = status["nodesReady"].as_i64().unwrap_or(0);
        if nodes > 0 && ready >= nodes {
            Outcome::Done
        } else {
            Outcome::Waiting(format!("installed on {ready} of {nodes} labelled node(s)"))
        }
    };
    let action = ApiCall::new("get", "shims", None);
    watch_until(conn, &api, name, &action, timeout, progress, &until).await.map_err(|e| {
        anyhow::anyhow!(
            "the shim was not installed on the labelled nodes: {e:#}; see `kubectl get shim {name} -o yaml` and the runtime-class-manager logs"
        )
    })
}

/// Waits until CustomResourceDefinition `name` is Established (its kind served).
pub async fn crd_established(
    conn: &Connection,
    name: &str,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> anyhow::Result<()> {
    let resource = ApiResource::erase::<CustomResourceDefinition>(&());
    let api: Api<DynamicObject> = Api::all_with(conn.client.clone(), &resource);
    let until = |object: &DynamicObject| match condition(&object.data["status"], "Established") {
        Some(("True", _)) => Outcome::Done,
        Some((_, message)) if !message.is_empty() => Outcome::Waiting(format!("{name}: {message}")),
        _ => Outcome::Waiting(format!("{name}: not established yet")),
    };
    let action = ApiCall::new("get", "customresourcedefinitions", None);
    watch_until(conn, &api, name, &action, timeout, progress, &until).await
}

/// Waits until Deployment `namespace/name` has every replica of its current generation available.
pub async fn deployment_available(
    conn: &Connection,
    namespace: &str,
    name: &str,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> anyhow::Result<()> {
    let resource = ApiResource::erase::<Deployment>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(conn.client.clone(), namespace, &resource);
    let until = |object: &DynamicObject| {
        deployment_outcome(
            object.metadata.generation,
            &object.data["spec"],
            &object.data["status"],
        )
    };
    let action = ApiCall::new("get", "deployments", Some(namespace));
    watch_until(conn, &api, name, &action, timeout, progress, &until)
        .await
        .map_err(|e| anyhow::anyhow!("deployment/{name}: {e:#}"))
}

/// The annotation Helm puts on every object of a release, naming the release.
const HELM_RELEASE_NAME: &str = "meta.helm.sh/release-name";

/// Waits until every Deployment of Helm release `release` in `namespace` (those Helm annotated
/// with its name) has every replica of its current generation available — what helm-controller's
/// own wait checked, watched here rather than polled every 2 s (and listed after [`RECHECK`]
/// without an event). Called once the HelmRelease is Ready for its generation, so helm-controller
/// has applied them all. A Deployment past its progress deadline fails at once.
pub async fn workloads_available(
    conn: &Connection,
    release: &str,
    namespace: &str,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> anyhow::Result<()> {
    let resource = ApiResource::erase::<Deployment>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(conn.client.clone(), namespace, &resource);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut events = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    // Each Deployment of the release and where it stands; the list is complete once listed.
    let mut states = std::collections::BTreeMap::<String, Outcome>::new();
    let (mut listing, mut listed) = (std::collections::BTreeMap::new(), false);
    let mut last = String::new();
    let ours = |object: &DynamicObject| {
        let annotations = object.metadata.annotations.as_ref();
        annotations
            .and_then(|a| a.get(HELM_RELEASE_NAME))
            .map(String::as_str)
            == Some(release)
    };
    let outcome = |object: &DynamicObject| {
        deployment_outcome(
            object.metadata.generation,
            &object.data["spec"],
            &object.data["status"],
        )
    };
    let name = |object: &DynamicObject| object.metadata.name.clone().unwrap_or_default();
    let mut quiet = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
    loop {
        let event = tokio::select! {
            event = events.next() => Some(event.ok_or_else(|| {
                anyhow::anyhow!("the watch on the Deployments in {namespace} ended: {last}")
            })?),
            _ = quiet.tick() => {
                // Nothing heard for a while: what the Deployments are now, read, not watched.
                if let Ok(list) = api.list(&Default::default()).await {
                    states = (list.items.iter().filter(|o| ours(o)))
                        .map(|o| (name(o), outcome(o)))
                        .collect();
                    listed = true;
                }
                None
            }
            _ = tokio::time::sleep_until(deadline) => anyhow::bail!(
                "the Deployments of {release} in {namespace} were not available after {}s: {last}; see `kubectl get deployments -n {namespace}` and their pods' events",
                timeout.as_secs()
            ),
        };
        if event.is_some() {
            quiet.reset();
        }
        match event {
            None => {}
            Some(Ok(Event::Init)) => listing.clear(),
            Some(Ok(Event::InitApply(object))) if ours(&object) => {
                listing.insert(name(&object), outcome(&object));
            }
            Some(Ok(Event::InitDone)) => {
                states = std::mem::take(&mut listing);
                listed = true;
            }
            Some(Ok(Event::Apply(object))) if ours(&object) => {
                states.insert(name(&object), outcome(&object));
            }
            Some(Ok(Event::Delete(object))) => {
                states.remove(&name(&object));
            }
            Some(Ok(_)) => continue,
            Some(Err(
                watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e),
            )) => {
                let action = ApiCall::new("watch", "deployments", Some(namespace));
                let message = unanswered_watch(e, conn, action)?;
                if message != last {
                    progress(&message);
                    last = message;
                }
                continue;
            }
            // A broken watch is started again by the watcher.
            Some(Err(_)) => continue,
        }
        if !listed {
            continue;
        }
        let mut waiting = Vec::new();
        for (name, state) in &states {
            match state {
                Outcome::Done => {}
                Outcome::Failed(message) => {
                    anyhow::bail!("deployment/{name} in {namespace}: {message}")
                }
                Outcome::Waiting(message) => waiting.push(format!("deployment/{name}: {message}")),
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        let message = waiting.join(", ");
        if message != last {
            progress(&message);
            last = message;
        }
    }
}

/// Where a Deployment's rollout stands, from its generation, `spec` and `status`: done as
/// `kubectl rollout status` says it, every replica updated and available and no old one left
/// (an old replica still available does not count for the new template).
fn deployment_outcome(generation: Option<i64>, spec: &Value, status: &Value) -> Outcome {
    let wanted = spec["replicas"].as_i64().unwrap_or(1);
    let observed = status["observedGeneration"].as_i64().unwrap_or(-1) >= generation.unwrap_or(0);
    let updated = status["updatedReplicas"].as_i64().unwrap_or(0);
    let old = status["replicas"].as_i64().unwrap_or(0) - updated;
    let available = status["availableReplicas"].as_i64().unwrap_or(0);
    let stuck = (status["conditions"].as_array().into_iter().flatten())
        .find(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded");
    match stuck {
        Some(condition) => Outcome::Failed(
            condition["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ),
        None if observed && updated >= wanted && old <= 0 && available >= wanted => Outcome::Done,
        None if old > 0 => Outcome::Waiting(format!(
            "{updated} of {wanted} replica(s) updated, {old} old one(s) still running"
        )),
        None => Outcome::Waiting(format!("{available} of {wanted} replica(s) available")),
    }
}

/// A custom resource the install waits on.
fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Waiting(String),
    Failed(String),
}

/// The reason of the `Ready` condition.
fn ready_reason(status: &Value) -> Option<&str> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?["reason"]
        .as_str()
}

/// The `(status, message)` of condition `kind`.
fn condition<'a>(status: &'a Value, kind: &str) -> Option<(&'a str, &'a str)> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default(),
                c["message"].as_str().unwrap_or_default(),
            )
        })
}

/// A list or watch the API server would not start, after the request's own retries: one answered
/// 408, 429 or 5xx — an API server starting again ("before all known HTTP paths have been
/// installed") or shedding load — is the waiting message, and the watcher tries again after a
/// pause, within the caller's deadline; any other refusal is the error, explained.
fn unanswered_watch(
    e: kube::Error,
    conn: &Connection,
    action: ApiCall<'_>,
) -> anyhow::Result<String> {
    match e {
        kube::Error::Api(status)
            if http::StatusCode::from_u16(status.code)
                .is_ok_and(crate::retry::is_transient_status) =>
        {
            Ok(format!(
                "the API server answered {}: {}",
                status.code, status.message
            ))
        }
        e => Err(explain(e, conn, action)),
    }
}

/// Watches object `name` of `api` until `until` says it is done or failed, or `timeout` passes,
/// reporting each new waiting message: the change is seen as the API server sends it, where a
/// poll would see it up to one interval late; after [`RECHECK`] without an event the object is
/// read. A list or watch the server would not start is
/// judged by [`unanswered_watch`]: tried again until `timeout` when transient, else fatal.
async fn watch_until(
    conn: &Connection,
    api: &Api<DynamicObject>,
    name: &str,
    action: &ApiCall<'_>,
    timeout: Duration,
    progress: &dyn Fn(&str),
    until: &dyn Fn(&DynamicObject) -> Outcome,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher(api.clone(), config).default_backoff().boxed();
    let (mut last, mut seen) = (String::new(), false);
    let mut quiet = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
    loop {
        let event = tokio::select! {
            event = events.next() => {
                quiet.reset();
                event
            }
            // Nothing heard for a while: the object as it is now, read, not watched.
            _ = quiet.tick() => match api.get_opt(name).await {
                Ok(Some(object)) => Some(Ok(Event::Apply(object))),
                _ => continue,
            },
            _ = tokio::time::sleep_until(deadline) => {
                anyhow::bail!("still not done after {}s: {last}", timeout.as_secs())
            }
        };
        let message = match event {
            Some(Ok(Event::Apply(object) | Event::InitApply(object))) => {
                seen = true;
                match until(&object) {
                    Outcome::Done => return Ok(()),
                    Outcome::Failed(message) => anyhow::bail!("{message}"),
                    Outcome::Waiting(message) => message,
                }
            }
            Some(Ok(Event::InitDone)) if seen => continue,
            Some(Ok(Event::Delete(_) | Event::InitDone)) => "not there yet".to_string(),
            Some(Ok(Event::Init)) => continue,
            Some(Err(
                watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e),
            )) => {
                let action = ApiCall::new("watch", action.resource, action.namespace);
                unanswered_watch(e, conn, action)?
            }
            // A broken watch is started again by the watcher.
            Some(Err(_)) => continue,
            None => anyhow::bail!("the watch on {name} ended: {last}"),
        };
        if message != last && !message.is_empty() {
            progress(&message);
            last = message;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_deployment_is_done_when_its_generation_is_rolled_out_and_available() {
        let spec = json!({"replicas": 1});
        let stuck = json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"x\" has timed out progressing."});
        let cases = [
            (
                json!({"observedGeneration": 2, "updatedReplicas": 1, "availableReplicas": 1}),
                Outcome::Done,
            ),
            (
                json!({"observedGeneration": 1, "updatedReplicas": 1, "availableReplicas": 1}),
                Outcome::Waiting("1 of 1 replica(s) available".into()),
            ),
            (
                json!({"observedGeneration": 2, "updatedReplicas": 1, "availableReplicas": 0}),
                Outcome::Waiting("0 of 1 replica(s) available".into()),
            ),
            (
                json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1}),
                Outcome::Waiting("1 of 1 replica(s) updated, 1 old one(s) still running".into()),
            ),
            (
                json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}),
                Outcome::Done,
            ),
            (
                json!({"observedGeneration": 2, "conditions": [stuck]}),
                Outcome::Failed("ReplicaSet \"x\" has timed out progressing.".into()),
            ),
        ];
        for (status, expected) in cases {
            assert_eq!(
                deployment_outcome(Some(2), &spec, &status),
                expected,
                "{status}"
            );
        }
    }

    #[test]
    fn a_lost_ready_is_a_deployed_history_for_the_attempt_with_ready_still_running() {
        let lost = json!({
            "observedGeneration": 3,
            "lastAttemptedGeneration": 3,
            "lastAttemptedRevision": "1.2.0",
            "lastAttemptedConfigDigest": "sha256:aa",
            "history": [
                {"status": "deployed", "chartVersion": "1.2.0", "configDigest": "sha256:aa"},
                {"status": "superseded", "chartVersion": "1.1.0", "configDigest": "sha256:aa"},
            ],
            "conditions": [{"type": "Ready", "status": "Unknown", "reason": "Progressing",
                "message": "Running 'install' action with timeout of 5m0s"}],
        });
        assert!(lost_ready(Some(3), &lost));
        let changed = |pointer: &str, value: Value| {
            let mut status = lost.clone();
            *status.pointer_mut(pointer).unwrap() = value;
            status
        };
        let with = |condition: Value| {
            let mut status = lost.clone();
            status["conditions"].as_array_mut().unwrap().push(condition);
            status
        };
        let not_lost = [
            // A newer generation helm-controller has not acted on.
            ("generation", lost.clone(), 4),
            ("observed", changed("/observedGeneration", json!(2)), 3),
            (
                "attempted",
                changed("/lastAttemptedGeneration", json!(2)),
                3,
            ),
            // The action for a new chart or new values has not been recorded yet.
            (
                "chart",
                changed("/lastAttemptedRevision", json!("1.3.0")),
                3,
            ),
            (
                "values",
                changed("/lastAttemptedConfigDigest", json!("sha256:bb")),
                3,
            ),
            ("failed", changed("/history/0/status", json!("failed")), 3),
            ("no history", changed("/history", json!([])), 3),
            ("ready", changed("/conditions/0/status", json!("True")), 3),
            (
                "other reason",
                changed("/conditions/0/reason", json!("InstallSucceeded")),
                3,
            ),
            // An action that really runs, or one whose outcome was written.
            (
                "running",
                with(json!({"type": "Reconciling", "status": "True"})),
                3,
            ),
            (
                "released",
                with(json!({"type": "Released", "status": "True"})),
                3,
            ),
        ];
        for (case, status, generation) in not_lost {
            assert!(!lost_ready(Some(generation), &status), "{case}");
        }
    }

    #[test]
    fn a_release_is_done_when_ready_for_its_generation_and_failed_when_helm_or_flux_gave_up() {
        let ready = |status: &str, reason: &str| json!({"type": "Ready", "status": status, "reason": reason, "message": reason});
        let cases = [
            (
                2,
                json!({"observedGeneration": 2, "conditions": [ready("True", "InstallSucceeded")]}),
                Outcome::Done,
            ),
            (
                3,
                json!({"observedGeneration": 2, "conditions": [ready("True", "InstallSucceeded")]}),
                Outcome::Waiting("InstallSucceeded".into()),
            ),
            (
                1,
                json!({"observedGeneration": 1, "conditions": [ready("False", "InstallFailed")]}),
                Outcome::Failed("InstallFailed".into()),
            ),
            (
                1,
                json!({"observedGeneration": 1, "conditions": [ready("False", "ArtifactFailed")]}),
                Outcome::Waiting("ArtifactFailed".into()),
            ),
            (
                1,
                json!({"conditions": [ready("False", "Progressing"), {"type": "Stalled", "status": "True", "message": "retries exhausted"}]}),
                Outcome::Failed("retries exhausted".into()),
            ),
            (
                1,
                json!({}),
                Outcome::Waiting("waiting for helm-controller to pick it up".into()),
            ),
        ];
        for (generation, status, expected) in cases {
            assert_eq!(
                release_outcome(Some(generation), &status),
                expected,
                "{status}"
            );
        }
    }
}
