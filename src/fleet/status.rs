//! Each fleet cluster's state, read in parallel from its Flux objects and the workload: the revision
//! applied, whether the app runs the published image, Flux's reason when not; and waiting on it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use futures_util::stream::{select_all, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::runtime::{watcher, WatchStreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::flux;
use crate::cluster::connect::Connection;
use crate::cluster::rollout::{self, RolloutProgress};
use crate::output::Output;
use crate::state::{AppState, FleetMember};

/// How long one cluster may take to answer before it counts as unreachable.
const REACH_TIMEOUT: Duration = Duration::from_secs(15);

/// Where a cluster stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemberState {
    /// Flux applied the published artifact and the app runs its image on every replica.
    Converged,
    /// Flux is pulling, applying or waiting for the rollout.
    Progressing,
    /// Flux reports a failure (pull, apply), or the rollout of the published image cannot finish:
    /// `reason` says which.
    Failed,
    /// The API server did not answer.
    Unreachable,
    /// Nothing is published for the cluster's env, or it does not follow (no OCIRepository).
    NotFollowing,
}

/// One cluster of the fleet.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterStatus {
    pub cluster: String,
    pub namespace: String,
    pub env: String,
    pub state: MemberState,
    /// `<env>@sha256:…` of the published artifact.
    pub published: Option<String>,
    /// The artifact revision the OCIRepository holds.
    pub fetched: Option<String>,
    /// The revision the Kustomization applied last.
    pub applied: Option<String>,
    /// The image the workload's pods run (from its Deployment).
    pub image: Option<String>,
    pub ready: Option<String>,
    /// Whether the OCIRepository's last check of the artifact's Notation signature passed
    /// (`fleet add --verify`; its SourceVerified condition); `None` when it does not verify.
    pub verified: Option<bool>,
    /// Flux's reason and message, or what is still awaited.
    pub reason: Option<String>,
    /// For a failure Flux tries again on its own (not stalled): how long it may stand before a
    /// wait takes it as the outcome; `None` when it is final.
    #[serde(skip)]
    pub retried_within: Option<Duration>,
}

/// The fleet's state, all clusters at once (`env`: only those following it).
pub async fn status(
    app: &AppState,
    name: &str,
    kubeconfig: Option<PathBuf>,
    env: Option<&str>,
) -> Vec<ClusterStatus> {
    let members = app.fleet.iter().filter(|m| env.is_none_or(|e| m.env == e));
    join_all(members.map(|m| one(app, name, kubeconfig.clone(), m, None))).await
}

/// Asks every cluster following one of `envs` to fetch the artifact now, then waits until each
/// converged or failed, reading them again whenever one of the app's objects changes on a
/// cluster, and at least every second; after `timeout` the ones still pending are returned as
/// they stand. A failure Flux tries again (a registry or webhook that did not answer) counts only
/// once it stood through those tries (`retried_within`).
pub async fn wait(
    app: &AppState,
    name: &str,
    kubeconfig: Option<PathBuf>,
    envs: &[String],
    timeout: Duration,
    out: &Output,
) -> Vec<ClusterStatus> {
    let started = Instant::now();
    // One connection per cluster for the whole wait, its watches and reads; a cluster that did
    // not answer is connected to again at each read.
    let members: Vec<&FleetMember> = app.fleet.iter().filter(|m| envs.contains(&m.env)).collect();
    let conns = join_all(members.iter().map(|m| async {
        let connect = super::member_connection(m, kubeconfig.clone());
        tokio::time::timeout(REACH_TIMEOUT, connect)
            .await
            .ok()?
            .ok()
    }))
    .await;
    let now = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
    let asked = members
        .iter()
        .zip(&conns)
        .filter_map(|(m, c)| Some((m, c.as_ref()?)));
    join_all(asked.map(|(m, conn)| request_reconcile(conn, name, &m.namespace, &now))).await;
    let mut changes = Changes::watch(name, &members, &conns);
    let mut last = String::new();
    // Since when each cluster has been failing, without a read in between that was not.
    let mut failing = std::collections::HashMap::<String, Instant>::new();
    loop {
        let reads = members.iter().zip(&conns);
        let all =
            join_all(reads.map(|(m, c)| one(app, name, kubeconfig.clone(), m, c.as_ref()))).await;
        for s in &all {
            match s.state {
                MemberState::Failed => {
                    _ = failing
                        .entry(s.cluster.clone())
                        .or_insert_with(Instant::now)
                }
                _ => _ = failing.remove(&s.cluster),
            }
        }
        let settled = |s: &ClusterStatus| match s.state {
            MemberState::Converged => true,
            MemberState::Failed => s
                .retried_within
                .is_none_or(|grace| failing.get(&s.cluster).is_none_or(|t| t.elapsed() >= grace)),
            _ => false,
        };
        let pending: Vec<&ClusterStatus> = all.iter().filter(|s| !settled(s)).collect();
        let line = pending
            .iter()
            .map(|s| {
                let reason = s.reason.as_deref().unwrap_or("progressing");
                match s.state {
                    MemberState::Failed => format!("{}: {reason} (Flux tries again)", s.cluster),
                    _ => format!("{}: {reason}", s.cluster),
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        if line != last && !line.is_empty() {
            out.info(format!("waiting for {line}"));
            last = line;
        }
        if pending.is_empty() || started.elapsed() >= timeout {
            return all;
        }
        changes.next().await;
    }
}

/// The longest the wait goes without reading the clusters again (a watch that could not start).
const POLL: Duration = Duration::from_secs(1);

/// Wakes the wait when the app's OCIRepository, Kustomization or Deployment changes on one of the
/// clusters (a watch of each by name); the watches end when this is dropped.
struct Changes {
    woken: mpsc::Receiver<()>,
    /// Kept so that the channel never closes, even once every watch gave up.
    _wake: mpsc::Sender<()>,
    _watches: JoinSet<()>,
}

impl Changes {
    fn watch(name: &str, members: &[&FleetMember], conns: &[Option<Connection>]) -> Self {
        // One pending wake is enough: the wait reads every cluster when it wakes.
        let (wake, woken) = mpsc::channel(1);
        let mut watches = JoinSet::new();
        for (member, conn) in members.iter().zip(conns) {
            let Some(conn) = conn.clone() else { continue };
            let (member, name, wake) = ((*member).clone(), name.to_string(), wake.clone());
            watches.spawn(async move {
                let namespace = &member.namespace;
                let by_name =
                    |n: &str| watcher::Config::default().fields(&format!("metadata.name={n}"));
                let kustomization = flux::kustomization_name(&name, member.aks.is_some());
                let deployments: Api<Deployment> = Api::namespaced(conn.client.clone(), namespace);
                let source = flux_api(&conn, namespace, SOURCE.0, SOURCE.1, SOURCE.2);
                let applier = flux_api(
                    &conn,
                    namespace,
                    KUSTOMIZATION.0,
                    KUSTOMIZATION.1,
                    KUSTOMIZATION.2,
                );
                let mut events = select_all([
                    watcher(source, by_name(&name))
                        .default_backoff()
                        .map(|_| ())
                        .boxed(),
                    watcher(applier, by_name(&kustomization))
                        .default_backoff()
                        .map(|_| ())
                        .boxed(),
                    watcher(deployments, by_name(&name))
                        .default_backoff()
                        .map(|_| ())
                        .boxed(),
                ]);
                while events.next().await.is_some() {
                    // A full channel already holds a wake.
                    let _ = wake.try_send(());
                }
            });
        }
        Self {
            woken,
            _wake: wake,
            _watches: watches,
        }
    }

    /// Returns at the next change, or after [`POLL`].
    async fn next(&mut self) {
        let _ = tokio::time::timeout(POLL, self.woken.recv()).await;
    }
}

/// Asks a cluster's source-controller to look for a new artifact now (`flux reconcile source
/// oci`'s annotation) instead of at its next interval; a cluster that does not answer is skipped.
async fn request_reconcile(conn: &Connection, name: &str, namespace: &str, now: &str) {
    let api = flux_api(conn, namespace, SOURCE.0, SOURCE.1, SOURCE.2);
    let patch = Patch::Merge(
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": now}}}),
    );
    let params = PatchParams::default();
    let _ = tokio::time::timeout(REACH_TIMEOUT, api.patch(name, &params, &patch)).await;
}

/// One cluster's status, read through `conn` when given, else through a new connection.
async fn one(
    app: &AppState,
    name: &str,
    kubeconfig: Option<PathBuf>,
    member: &FleetMember,
    conn: Option<&Connection>,
) -> ClusterStatus {
    let published = app
        .deploy_artifact
        .as_ref()
        .and_then(|a| a.tags.get(&member.env));
    let mut status = ClusterStatus {
        cluster: member.cluster.clone(),
        namespace: member.namespace.clone(),
        env: member.env.clone(),
        state: MemberState::NotFollowing,
        published: published.map(|p| format!("{}@{}", member.env, p.digest)),
        fetched: None,
        applied: None,
        image: None,
        ready: None,
        verified: None,
        reason: None,
        retried_within: None,
    };
    let Some(published) = published else {
        status.reason = Some(format!("nothing is published as `{}`", member.env));
        return status;
    };
    let read = async {
        let connected;
        let conn = match conn {
            Some(conn) => conn,
            None => {
                connected = super::member_connection(member, kubeconfig).await?;
                &connected
            }
        };
        let kustomization = flux::kustomization_name(name, member.aks.is_some());
        read_cluster(conn, name, &kustomization, &member.namespace).await
    };
    match tokio::time::timeout(REACH_TIMEOUT, read).await {
        Ok(Ok(live)) => judge(&mut status, &live, &published.digest, &published.image),
        Ok(Err(e)) => {
            status.state = MemberState::Unreachable;
            status.reason = Some(format!("{e:#}"));
        }
        Err(_) => {
            status.state = MemberState::Unreachable;
            status.reason = Some(format!(
                "{} did not answer within {}s",
                member.cluster,
                REACH_TIMEOUT.as_secs()
            ));
        }
    }
    status
}

/// What a cluster holds for the app.
struct Live {
    source: Option<Value>,
    kustomization: Option<Value>,
    deployment: Option<Deployment>,
}

async fn read_cluster(
    conn: &Connection,
    name: &str,
    kustomization_name: &str,
    namespace: &str,
) -> anyhow::Result<Live> {
    let source = flux_api(conn, namespace, SOURCE.0, SOURCE.1, SOURCE.2);
    let kustomization = flux_api(
        conn,
        namespace,
        KUSTOMIZATION.0,
        KUSTOMIZATION.1,
        KUSTOMIZATION.2,
    );
    let deployments: Api<Deployment> = Api::namespaced(conn.client.clone(), namespace);
    let (source, kustomization, deployment) = tokio::join!(
        source.get_opt(name),
        kustomization.get_opt(kustomization_name),
        deployments.get_opt(name)
    );
    let explain = |what: &'static str| {
        move |e| {
            crate::cluster::errors::explain(
                e,
                conn,
                crate::cluster::errors::ApiCall::new("get", what, Some(namespace)),
            )
        }
    };
    let value = |o: DynamicObject| serde_json::to_value(o).unwrap_or_default();
    Ok(Live {
        source: source.map_err(explain("ocirepositories"))?.map(value),
        kustomization: kustomization.map_err(explain("kustomizations"))?.map(value),
        deployment: deployment.map_err(explain("deployments"))?,
    })
}

/// Group, kind and plural of the OCIRepository and of the Kustomization.
const SOURCE: (&str, &str, &str) = (
    "source.toolkit.fluxcd.io",
    "OCIRepository",
    "ocirepositories",
);
const KUSTOMIZATION: (&str, &str, &str) = (
    "kustomize.toolkit.fluxcd.io",
    "Kustomization",
    "kustomizations",
);

fn flux_api(
    conn: &Connection,
    namespace: &str,
    group: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let version = if kind == "Kustomization" {
        flux::KUSTOMIZE_API
    } else {
        flux::SOURCE_API
    };
    let version = version.rsplit('/').next().unwrap_or("v1");
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    Api::namespaced_with(conn.client.clone(), namespace, &resource)
}

/// A member whose namespace lacks one of the Flux objects `fleet add` creates.
fn not_following(status: &mut ClusterStatus, missing: &str) {
    status.state = MemberState::NotFollowing;
    status.reason = Some(format!(
        "no {missing} in namespace {}: `spin-aks fleet add {}`",
        status.namespace, status.cluster
    ));
}

/// Decides the state from what the cluster holds, against the published digest and image.
fn judge(status: &mut ClusterStatus, live: &Live, digest: &str, image: &str) {
    let Some(source) = &live.source else {
        return not_following(status, "OCIRepository");
    };
    status.fetched = source["status"]["artifact"]["revision"]
        .as_str()
        .map(str::to_string);
    status.applied = live
        .kustomization
        .as_ref()
        .and_then(|k| k["status"]["lastAppliedRevision"].as_str())
        .map(str::to_string);
    if let Some(deployment) = &live.deployment {
        let spec = deployment.spec.as_ref();
        status.image = spec
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers.first())
            .and_then(|c| c.image.clone());
        let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
        let ready = deployment
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        status.ready = Some(format!("{ready}/{desired}"));
    }
    let is_published =
        |revision: &Option<String>| revision.as_deref().is_some_and(|r| r.ends_with(digest));
    let verified = condition(source, SOURCE_VERIFIED).and_then(|c| c["status"].as_str());
    status.verified = match verified {
        Some("True") => Some(true),
        Some("False") => Some(false),
        _ => None,
    };
    // A refused signature is the reason, before the Ready=False it causes, and final.
    if let Some(reason) = failed("OCIRepository", source, SOURCE_VERIFIED) {
        status.state = MemberState::Failed;
        status.reason = Some(reason);
        return;
    }
    if let Some(reason) = failure("OCIRepository", source) {
        status.state = MemberState::Failed;
        status.reason = Some(reason);
        status.retried_within = (!stalled(source)).then_some(SOURCE_RETRIES);
        return;
    }
    let Some(kustomization) = &live.kustomization else {
        return not_following(status, "Kustomization");
    };
    let attempted = kustomization["status"]["lastAttemptedRevision"]
        .as_str()
        .map(str::to_string);
    if let Some(reason) =
        failure("Kustomization", kustomization).filter(|_| is_published(&attempted))
    {
        status.state = MemberState::Failed;
        status.reason = Some(reason);
        status.retried_within =
            (!stalled(kustomization)).then(|| retry_interval(kustomization) + RETRY_SLACK);
        return;
    }
    status.state = MemberState::Progressing;
    status.reason = Some(if !is_published(&status.fetched) {
        format!(
            "Flux has not fetched {} yet",
            status.published.as_deref().unwrap_or_default()
        )
    } else if !is_published(&status.applied) {
        condition(kustomization, "Ready")
            .and_then(|c| c["message"].as_str())
            .map_or_else(
                || "Flux is applying the artifact".to_string(),
                str::to_string,
            )
    } else if let Some(deployment) = live
        .deployment
        .as_ref()
        .filter(|_| status.image.as_deref() == Some(image))
    {
        // Flux applied the revision (the image only comes with it); the rollout is judged as
        // `kubectl rollout status` does, a passed progress deadline or refused pods failing it.
        match rollout::assess(deployment, Some(image)) {
            RolloutProgress::Done { .. } => {
                status.state = MemberState::Converged;
                return status.reason = None;
            }
            RolloutProgress::Failed(reason) => {
                status.state = MemberState::Failed;
                format!(
                    "the rollout of Deployment {} failed: {reason}",
                    deployment.metadata.name.as_deref().unwrap_or_default()
                )
            }
            RolloutProgress::Waiting(reason) => reason,
        }
    } else {
        format!(
            "the workload runs {}, not {image}",
            status.image.as_deref().unwrap_or("nothing yet")
        )
    });
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// How long a failed fetch may stand: source-controller tries again with a backoff from 750 ms,
/// doubling (controller-runtime's rate limiter with Flux's `--min-retry-delay`), five times in 30 s.
const SOURCE_RETRIES: Duration = Duration::from_secs(30);
/// Beyond a Kustomization's retry interval, for kustomize-controller to apply and report.
const RETRY_SLACK: Duration = Duration::from_secs(10);

/// kustomize-controller's wait before it applies again after a failure: `spec.retryInterval`,
/// else `spec.interval` (Go durations such as `30s` or `1m0s`), else 30 s.
fn retry_interval(kustomization: &Value) -> Duration {
    let spec = &kustomization["spec"];
    (spec["retryInterval"].as_str())
        .or_else(|| spec["interval"].as_str())
        .and_then(|d| humantime::parse_duration(d).ok())
        .unwrap_or(Duration::from_secs(30))
}

/// Whether Flux gave up on the object (`Stalled=True`): it does not try again on its own.
fn stalled(object: &Value) -> bool {
    condition(object, "Stalled").is_some_and(|c| c["status"] == "True")
}

/// The condition source-controller sets from the signature check of `spec.verify`
/// (docs/spec/v1/ocirepositories.md §Verification; `VerificationError` when refused).
const SOURCE_VERIFIED: &str = "SourceVerified";

/// Flux's `Ready=False` as `<Kind> <reason>: <message>`; a stalled object counts too.
fn failure(kind: &str, object: &Value) -> Option<String> {
    failed(kind, object, "Ready")
}

/// The condition `kind_of` of `object` when False, as `<Kind> <reason>: <message>` on one line
/// (notation-go joins the refusal of each signature with line breaks).
fn failed(kind: &str, object: &Value, kind_of: &str) -> Option<String> {
    let found = condition(object, kind_of)?;
    if found["status"] != "False" {
        return None;
    }
    let message = found["message"].as_str().unwrap_or_default();
    Some(format!(
        "{kind} {}: {}",
        found["reason"].as_str().unwrap_or("NotReady"),
        message.trim().replace('\n', "; ")
    ))
}

/// The error of a fleet that did not converge: each failed cluster with Flux's reason, each
/// still pending after `timeout` with what it waits for.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct NotConverged(pub Vec<String>);

/// Ok when every cluster converged.
pub fn require_converged(all: &[ClusterStatus], timeout: Duration) -> anyhow::Result<()> {
    let problems: Vec<String> = all
        .iter()
        .filter(|s| s.state != MemberState::Converged)
        .map(|s| {
            let reason = s.reason.as_deref().unwrap_or("no reason given");
            match s.state {
                MemberState::Failed => format!("{} failed: {reason}", s.cluster),
                MemberState::Unreachable => format!("{} is unreachable: {reason}", s.cluster),
                _ => format!(
                    "{} did not converge within {}: {reason}",
                    s.cluster,
                    humantime::format_duration(timeout)
                ),
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(NotConverged(problems).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123";
    const IMAGE: &str = "r.example/hello@sha256:4567";

    fn cluster() -> ClusterStatus {
        ClusterStatus {
            cluster: "east".into(),
            namespace: "shop".into(),
            env: "prod".into(),
            state: MemberState::NotFollowing,
            published: Some(format!("prod@{DIGEST}")),
            fetched: None,
            applied: None,
            image: None,
            ready: None,
            verified: None,
            reason: None,
            retried_within: None,
        }
    }

    /// What a cluster holds once Flux fetched the published artifact: `applied` is the
    /// Kustomization's last applied revision, `progressing` the Deployment's Progressing condition.
    fn live(applied: &str, progressing: Value) -> Live {
        let deployment = json!({
            "metadata": {"name": "hello", "generation": 2},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "hello"}},
                "template": {"spec": {"containers": [{"name": "hello", "image": IMAGE}]}},
            },
            "status": {
                "observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
                "availableReplicas": 2, "conditions": [progressing],
            },
        });
        Live {
            source: Some(json!({"status": {"artifact": {"revision": format!("prod@{DIGEST}")}}})),
            kustomization: Some(json!({"status": {
                "lastAttemptedRevision": format!("prod@{DIGEST}"),
                "lastAppliedRevision": applied,
            }})),
            deployment: Some(serde_json::from_value(deployment).unwrap()),
        }
    }

    fn judged(live: &Live) -> ClusterStatus {
        let mut status = cluster();
        judge(&mut status, live, DIGEST, IMAGE);
        status
    }

    #[test]
    fn converged_only_once_flux_applied_the_published_revision_and_the_rollout_finished() {
        let done =
            json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"});
        let applying = judged(&live("prod@sha256:old", done.clone()));
        assert_eq!(applying.state, MemberState::Progressing);
        assert_eq!(
            applying.reason.as_deref(),
            Some("Flux is applying the artifact")
        );
        let converged = judged(&live(&format!("prod@{DIGEST}"), done));
        assert_eq!(
            converged.state,
            MemberState::Converged,
            "{:?}",
            converged.reason
        );
        assert_eq!(converged.ready.as_deref(), Some("2/2"));
    }

    #[test]
    fn a_rollout_past_its_progress_deadline_fails_the_cluster_naming_the_deployment() {
        let stuck = json!({
            "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"hello-5d\" has timed out progressing.",
        });
        let failed = judged(&live(&format!("prod@{DIGEST}"), stuck));
        assert_eq!(failed.state, MemberState::Failed);
        let reason = failed.reason.unwrap();
        assert!(
            reason.starts_with(
                "the rollout of Deployment hello failed: its progress deadline passed"
            ),
            "{reason}"
        );
    }

    #[test]
    fn a_failure_flux_tries_again_may_stand_for_its_retries_and_a_stalled_or_refused_one_is_final()
    {
        let ready_false = json!({"type": "Ready", "status": "False", "reason": "OCIArtifactPullFailed", "message": "connection refused"});
        let stalled_too =
            json!({"type": "Stalled", "status": "True", "reason": "X", "message": "x"});
        let refused = json!({"type": "SourceVerified", "status": "False", "reason": "VerificationError", "message": "no signature"});
        let source = |conditions: Value| json!({"status": {"conditions": conditions}});
        let applying = |spec: Value, conditions: Value| {
            let mut live = live(
                "prod@sha256:old",
                json!({"type": "Progressing", "status": "True"}),
            );
            live.kustomization = Some(json!({"spec": spec, "status": {
                "lastAttemptedRevision": format!("prod@{DIGEST}"),
                "lastAppliedRevision": "prod@sha256:old",
                "conditions": conditions,
            }}));
            live
        };
        let fetching = |conditions: Value| {
            let mut live = live(
                "prod@sha256:old",
                json!({"type": "Progressing", "status": "True"}),
            );
            live.source = Some(source(conditions));
            live
        };
        let secs = Duration::from_secs;
        let cases = [
            (
                "fetch failed",
                fetching(json!([ready_false])),
                Some(secs(30)),
            ),
            (
                "fetch stalled",
                fetching(json!([ready_false, stalled_too])),
                None,
            ),
            (
                "signature refused",
                fetching(json!([refused, ready_false])),
                None,
            ),
            (
                "apply failed",
                applying(
                    json!({"interval": "1m0s", "retryInterval": "5s"}),
                    json!([ready_false]),
                ),
                Some(secs(15)),
            ),
            (
                "apply failed, no retryInterval",
                applying(json!({"interval": "1m0s"}), json!([ready_false])),
                Some(secs(70)),
            ),
            (
                "apply stalled",
                applying(
                    json!({"retryInterval": "5s"}),
                    json!([ready_false, stalled_too]),
                ),
                None,
            ),
        ];
        for (case, live, within) in cases {
            let judged = judged(&live);
            assert_eq!(judged.state, MemberState::Failed, "{case}");
            assert_eq!(judged.retried_within, within, "{case}");
        }
    }
}
