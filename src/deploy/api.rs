//! The deploy route through the cluster's API server: server-side apply with the app's ApplySet,
//! the Secrets its variables read merged over the live ones, the rollout and endpoint watched.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, GroupVersionKind};
use kube::discovery::ApiResource;
use serde_json::{json, Value};

use super::plan::DeployPlan;
use super::route::{Deleted, Route, RouteApplied, RouteFeature, Waited};
use crate::cluster::apply::{
    self, parent_group_kinds, AppliedObject, ApplyOptions, ObjectAction, ServedApis,
};
use crate::cluster::applyset::{self, ApplySet};
use crate::cluster::check;
use crate::cluster::connect::Connection;
use crate::cluster::errors::{explain, ApiCall};
use crate::cluster::executor;
use crate::cluster::expose;
use crate::cluster::rollout::{self, Rollout};
use crate::cluster::status::{self, AppStatus};
use crate::context::target::Cluster;
use crate::manifests::helm;
use crate::manifests::secrets::{self, SecretArg};
use crate::manifests::source::Objects;
use crate::output::Output;
use crate::workload::objects;

/// A cluster reached through its API server.
pub struct ApiServer {
    cluster: Cluster,
}

impl ApiServer {
    pub fn new(cluster: Cluster) -> Self {
        ApiServer { cluster }
    }

    fn conn(&self) -> &Connection {
        &self.cluster.conn
    }
}

#[async_trait(?Send)]
impl Route for ApiServer {
    fn cluster(&self) -> &str {
        &self.conn().context
    }

    fn default_namespace(&self) -> &str {
        &self.conn().namespace
    }

    fn supports(&self, _feature: RouteFeature) -> anyhow::Result<()> {
        Ok(())
    }

    async fn apply(&self, plan: &DeployPlan<'_>, out: &Output) -> anyhow::Result<RouteApplied> {
        let conn = self.conn();
        let dry_run = plan.settings.dry_run;
        match &plan.objects {
            Objects::HelmChart(chart) => {
                let objects = helm::install(
                    conn,
                    chart,
                    plan.name,
                    &plan.namespace,
                    &plan.image,
                    dry_run,
                )?;
                out.info(format!(
                    "installed the chart {} with helm as release {}",
                    chart.display(),
                    plan.name
                ));
                let objects = objects.iter().map(|o| AppliedObject {
                    kind: o["kind"].as_str().unwrap_or_default().to_string(),
                    name: o["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    action: ObjectAction::Configured,
                    result: o.clone(),
                });
                Ok(RouteApplied {
                    objects: objects.collect(),
                    ..RouteApplied::default()
                })
            }
            Objects::Manifests(objects) => {
                let applied = apply_manifests(conn, plan, objects.clone(), out).await?;
                Ok(RouteApplied {
                    objects: applied.objects,
                    diff: plan.settings.diff.then_some(applied.diff),
                    rollout: None,
                })
            }
        }
    }

    async fn wait(
        &self,
        plan: &DeployPlan<'_>,
        applied: &RouteApplied,
        out: &Output,
    ) -> anyhow::Result<Waited> {
        let conn = self.conn();
        let timeout = plan.settings.timeout;
        let rollout = wait_for_workloads(conn, plan, &applied.objects, out).await?;
        let endpoint = expose::wait_for_address(
            conn,
            &plan.namespace,
            &plan.settings.exposure,
            plan.name,
            timeout,
        )
        .await?;
        Ok(Waited { rollout, endpoint })
    }

    async fn status(
        &self,
        namespace: &str,
        name: &str,
        _out: &Output,
    ) -> anyhow::Result<AppStatus> {
        let resources = ServedApis::discover(self.conn()).await?;
        status::read(self.conn(), &resources, namespace, name).await
    }

    async fn delete(
        &self,
        namespace: &str,
        name: &str,
        dry_run: bool,
        _out: &Output,
    ) -> anyhow::Result<Vec<Deleted>> {
        let conn = self.conn();
        let resources = ServedApis::discover(conn).await?;
        let set = ApplySet::for_app(name, namespace);
        let group_kinds = parent_group_kinds(conn, &set).await?;
        let mut deleted = Vec::new();
        for (resource, namespaced, object) in
            apply::members(conn, &resources, &set, &group_kinds).await?
        {
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            apply::delete(conn, &resource, namespaced, namespace, &name, dry_run).await?;
            deleted.push(Deleted {
                kind: resource.kind.clone(),
                name,
            });
        }
        if !group_kinds.is_empty() {
            let (secret, _) = resources.resolve("v1", "Secret")?;
            apply::delete(conn, &secret, true, namespace, &set.parent_name, dry_run).await?;
        }
        Ok(deleted)
    }
}

/// The objects, the exposure's Service or Ingress and the variables' Secrets, server-side
/// applied into the namespace (made when missing) with the app's ApplySet.
async fn apply_manifests(
    conn: &Connection,
    plan: &DeployPlan<'_>,
    mut objects: Vec<Value>,
    out: &Output,
) -> anyhow::Result<apply::Applied> {
    let settings = plan.settings;
    let namespace = plan.namespace.as_str();
    let selector = expose::pod_selector(&objects, plan.name);
    objects.extend(expose::objects(&settings.exposure, plan.name, &selector));
    let resources = ServedApis::for_objects(conn, &objects).await?;
    // Leaves the objects as they are when the cluster serves no SpinApp (the preflight says why).
    let served = apply::use_served_spinapp_group(&mut objects, &resources);
    let set = ApplySet::for_app(plan.name, namespace);
    // What the cluster has, read at once; judged in this order, so the first failure is the
    // same one every time (the cluster's readiness before anything about the app).
    let executors = async {
        match &served {
            Ok(()) => executor::missing(conn, &resources, namespace, &objects).await,
            Err(_) => Ok(Vec::new()),
        }
    };
    let (ready, secrets, namespace_exists, executors) = futures_util::join!(
        check::preflight(conn, &resources, &objects),
        secret_objects(conn, &set, &objects, &settings.secrets),
        apply::namespace_exists(conn, namespace),
        executors,
    );
    ready?;
    served?;
    let objects: Vec<Value> = secrets?.into_iter().chain(objects).collect();
    let options = ApplyOptions {
        dry_run: settings.dry_run,
        force_conflicts: settings.force_conflicts,
        diff: settings.diff,
        prune: settings.prune,
    };
    let executors = executors?;
    if !namespace_exists? {
        if options.dry_run {
            anyhow::bail!(
                "namespace {namespace} does not exist, so the server cannot dry-run objects into it; a real apply creates it"
            );
        }
        apply::create_namespace(conn, namespace, false).await?;
        out.info(format!("created namespace {namespace}"));
    }
    for name in executor::create(conn, namespace, executors, options.dry_run).await? {
        out.info(format!(
            "created SpinAppExecutor {name} in namespace {namespace}: SpinKube runs SpinApps through it"
        ));
    }
    apply::apply(conn, &resources, &set, objects, &options).await
}

/// The Secrets the workload reads variables from and the objects do not provide: given values merged
/// over the live ones, for Secrets that get values now or that this app applied before.
pub async fn secret_objects(
    conn: &Connection,
    set: &ApplySet,
    objects: &[Value],
    given: &[SecretArg],
) -> anyhow::Result<Vec<Value>> {
    let carried = secrets::provided_secrets(objects);
    let refs: Vec<secrets::SecretRef> = secrets::secret_refs(objects)
        .into_iter()
        .filter(|r| !carried.contains(r.secret.as_str()))
        .collect();
    let api: Api<Secret> = Api::namespaced(conn.client.clone(), &set.namespace);
    let mut live = BTreeMap::new();
    for name in refs
        .iter()
        .map(|r| r.secret.clone())
        .collect::<BTreeSet<_>>()
    {
        let found = api.get_opt(&name).await.map_err(|e| {
            explain(
                e,
                conn,
                ApiCall::new("get", "secrets", Some(&set.namespace)),
            )
        })?;
        live.insert(name, found);
    }
    let live_keys = |name: &str| -> BTreeSet<String> {
        live.get(name)
            .and_then(|s| s.as_ref())
            .and_then(|s| s.data.as_ref())
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default()
    };
    let given = secrets::plan(&refs, given, &live_keys)?;
    let given: BTreeMap<String, BTreeMap<String, String>> = given.into_iter().collect();
    let labels = json!({ "app.kubernetes.io/managed-by": objects::MANAGED_BY });
    let mut out = Vec::new();
    for (name, secret) in &live {
        let ours = secret.as_ref().is_some_and(|s| {
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(applyset::PART_OF_LABEL))
                == Some(&set.id)
        });
        let values = given.get(name);
        if values.is_none() && !ours {
            continue;
        }
        let mut data: BTreeMap<String, Vec<u8>> = secret
            .as_ref()
            .and_then(|s| s.data.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        for (key, value) in values.into_iter().flatten() {
            data.insert(key.clone(), value.clone().into_bytes());
        }
        out.push(secrets::secret_object(name, &data, &labels));
    }
    Ok(out)
}

/// The API resource of an object as the server returned it from the apply.
fn applied_resource(object: &AppliedObject) -> ApiResource {
    let api_version = object.result["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &object.kind))
}

/// Waits for every SpinApp's and Deployment's rollout; the summed report.
async fn wait_for_workloads(
    conn: &Connection,
    plan: &DeployPlan<'_>,
    applied: &[AppliedObject],
    out: &Output,
) -> anyhow::Result<Option<Rollout>> {
    let image = plan.image.to_string();
    let mut total: Option<Rollout> = None;
    for workload in applied
        .iter()
        .filter(|o| o.kind == "SpinApp" || o.kind == "Deployment")
    {
        let progress = |reason: &str| out.info(format!("waiting for {}: {reason}", workload.name));
        let waiting = format!("waiting for {} to roll out", workload.name);
        let expected = rollout::Expected {
            image: &image,
            applied: applied_resource(workload),
        };
        let wait = rollout::wait(
            conn,
            &plan.namespace,
            &workload.name,
            Some(expected),
            plan.settings.timeout,
            &progress,
        );
        let done = out.while_running(&waiting, wait).await?;
        total = Some(match total {
            None => done,
            Some(t) => Rollout {
                ready: t.ready + done.ready,
                desired: t.desired + done.desired,
                seconds: t.seconds.max(done.seconds),
            },
        });
    }
    Ok(total)
}
