//! Server-side apply (field manager `spin-aks`, strict field validation) of a set of objects:
//! SpinApp group from discovery, namespace created when missing, ApplySet membership and pruning,
//! field-ownership conflicts listed with their managers, `--dry-run server` and `--diff`.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::StreamExt;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde::Serialize;
use serde_json::{json, Value};

use super::applyset::{self, ApplySet};
use super::connect::Connection;
use super::diff;
use super::errors::{explain, ApiCall};

pub use super::discovery::{ServedApis, OLD_SPINKUBE_GROUP, SPINKUBE_GROUP};

pub const FIELD_MANAGER: &str = "spin-aks";

/// How to apply.
#[derive(Clone, Debug, Default)]
pub struct ApplyOptions {
    pub dry_run: bool,
    pub force_conflicts: bool,
    pub diff: bool,
    pub prune: bool,
}

/// What happened to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectAction {
    Created,
    Configured,
    Unchanged,
    Pruned,
}

#[derive(Clone, Debug, Serialize)]
pub struct AppliedObject {
    pub kind: String,
    pub name: String,
    pub action: ObjectAction,
    /// The object as the server returned it (not serialized: Secrets carry values).
    #[serde(skip)]
    pub result: Value,
}

/// The result of one apply.
#[derive(Debug, Default)]
pub struct Applied {
    pub objects: Vec<AppliedObject>,
    pub diff: String,
}

/// An object with its resolved API.
struct Resolved {
    object: Value,
    resource: ApiResource,
    namespaced: bool,
}

impl Resolved {
    fn name(&self) -> String {
        self.object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn label(&self) -> String {
        format!("{}/{}", self.resource.kind, self.name())
    }

    fn api(&self, conn: &Connection, namespace: &str) -> Api<DynamicObject> {
        dynamic_api(conn, &self.resource, self.namespaced, namespace)
    }
}

/// The API of `resource` in `namespace`, or cluster-wide for cluster-scoped kinds.
fn dynamic_api(
    conn: &Connection,
    resource: &ApiResource,
    namespaced: bool,
    namespace: &str,
) -> Api<DynamicObject> {
    if namespaced {
        Api::namespaced_with(conn.client.clone(), namespace, resource)
    } else {
        Api::all_with(conn.client.clone(), resource)
    }
}

/// Rewrites SpinApps to the group the cluster serves; errors when it serves none.
pub fn use_served_spinapp_group(
    objects: &mut [Value],
    resources: &ServedApis,
) -> anyhow::Result<()> {
    let is_spinkube = |o: &Value| {
        o["apiVersion"].as_str().is_some_and(|v| {
            v.starts_with(&format!("{SPINKUBE_GROUP}/"))
                || v.starts_with(&format!("{OLD_SPINKUBE_GROUP}/"))
        })
    };
    if !objects.iter().any(is_spinkube) {
        return Ok(());
    }
    let group = resources.spinapp_group().ok_or_else(|| {
        anyhow::anyhow!(
            "the cluster serves no SpinApp API ({SPINKUBE_GROUP} or {OLD_SPINKUBE_GROUP}): SpinKube is not installed; run `spin-aks cluster check` for what to install, or apply with --workload deployment"
        )
    })?;
    for object in objects.iter_mut().filter(|o| is_spinkube(o)) {
        let version = object["apiVersion"].as_str().unwrap_or_default();
        let version = version
            .split_once('/')
            .map_or("v1alpha1", |(_, v)| v)
            .to_string();
        object["apiVersion"] = Value::String(format!("{group}/{version}"));
    }
    Ok(())
}

/// Applies `objects` into the set's namespace (which must exist: [`ensure_namespace`]) as members of `set`.
pub async fn apply(
    conn: &Connection,
    resources: &ServedApis,
    set: &ApplySet,
    objects: Vec<Value>,
    options: &ApplyOptions,
) -> anyhow::Result<Applied> {
    let namespace = set.namespace.as_str();
    let mut resolved = Vec::new();
    for mut object in objects {
        let (resource, namespaced) = resources.resolve(
            object["apiVersion"].as_str().unwrap_or_default(),
            object["kind"].as_str().unwrap_or_default(),
        )?;
        if namespaced {
            object["metadata"]["namespace"] = Value::String(namespace.to_string());
        }
        set.label_member(&mut object);
        resolved.push(Resolved {
            object,
            resource,
            namespaced,
        });
    }
    let mut applied = Applied::default();
    let current: BTreeSet<String> = resolved
        .iter()
        .map(|r| applyset::group_kind(&r.resource.api_version, &r.resource.kind))
        .collect();
    // Everything live is read at once (the parent and each object as it is before this apply);
    // then the writes: the parent, then stage by stage, each stage's objects at once.
    let befores = futures_util::stream::iter(&resolved)
        .map(|item| live_object(conn, item, namespace))
        .buffered(AT_ONCE)
        .collect::<Vec<_>>();
    let (parent, befores) = futures_util::join!(live_parent(conn, set), befores);
    let parent = parent?;
    let previous = (parent.as_ref())
        .map(ApplySet::listed_group_kinds)
        .unwrap_or_default();
    let union: BTreeSet<String> = previous.union(&current).cloned().collect();
    apply_parent(conn, set, parent.as_ref(), &union, options.dry_run).await?;

    // Each object with its live state, by stage; the report keeps the objects' order.
    let mut stages: BTreeMap<u8, Vec<_>> = BTreeMap::new();
    for (index, (item, before)) in resolved.iter().zip(befores).enumerate() {
        let stage = stages.entry(stage_of(&item.resource.kind)).or_default();
        stage.push((index, item, before));
    }
    let mut results = Vec::with_capacity(resolved.len());
    for due in stages.into_values() {
        let done: Vec<_> = futures_util::stream::iter(due)
            .map(|(index, item, before)| async move {
                let applied = match before {
                    Ok(before) => apply_one(conn, item, before, namespace, options).await,
                    Err(e) => Err(e),
                };
                (index, applied)
            })
            .buffer_unordered(AT_ONCE)
            .collect()
            .await;
        results.extend(done);
    }
    results.sort_by_key(|(index, _)| *index);
    let mut conflicts = Vec::new();
    for (_, result) in results {
        match result? {
            Ok((object, diff)) => {
                applied.objects.push(object);
                applied.diff.push_str(&diff);
            }
            Err(fields) => conflicts.extend(fields),
        }
    }
    if !conflicts.is_empty() {
        anyhow::bail!(
            "fields are owned by another field manager, so spin-aks did not take them:\n  {}\nChange them back to what spin-aks applies, or re-run with --force-conflicts to take ownership",
            conflicts.join("\n  ")
        );
    }
    if options.prune {
        let keep: BTreeSet<(String, String)> = resolved
            .iter()
            .map(|r| (r.resource.kind.clone(), r.name()))
            .collect();
        applied
            .objects
            .extend(prune(conn, resources, set, &union, &keep, options.dry_run).await?);
        apply_parent(conn, set, None, &current, options.dry_run).await?;
    }
    Ok(applied)
}

/// How many objects of one stage are applied at once.
const AT_ONCE: usize = 8;
/// The last stage: workloads, after everything they read.
const WORKLOADS: u8 = 2;

/// When an object is applied: definitions and namespaces first, then what a workload reads (its
/// Secret, ConfigMap, ServiceAccount, SecretProviderClass…), then the workloads, whose pods would
/// otherwise start without them.
fn stage_of(kind: &str) -> u8 {
    match kind {
        "CustomResourceDefinition" | "Namespace" => 0,
        "SpinApp" | "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job"
        | "CronJob" | "Pod" => WORKLOADS,
        _ => 1,
    }
}

fn patch_params(options: &ApplyOptions, dry_run: bool) -> PatchParams {
    let mut params = PatchParams::apply(FIELD_MANAGER).validation_strict();
    if options.force_conflicts {
        params = params.force();
    }
    if dry_run {
        params = params.dry_run();
    }
    params
}

/// The object as it is live (None when it does not exist yet).
async fn live_object(
    conn: &Connection,
    item: &Resolved,
    namespace: &str,
) -> anyhow::Result<Option<Value>> {
    let ns = item.namespaced.then_some(namespace);
    let live = item
        .api(conn, namespace)
        .get_opt(&item.name())
        .await
        .map_err(|e| {
            forget_kinds_if_gone(conn, &e);
            explain(e, conn, ApiCall::new("get", &item.resource.plural, ns))
        })?;
    Ok(live.map(to_value))
}

/// Applies one object, `before` as it was read (with its `--diff` text); `Ok(Err(fields))`
/// lists its ownership conflicts.
async fn apply_one(
    conn: &Connection,
    item: &Resolved,
    before: Option<Value>,
    namespace: &str,
    options: &ApplyOptions,
) -> anyhow::Result<Result<(AppliedObject, String), Vec<String>>> {
    let api = item.api(conn, namespace);
    let name = item.name();
    let ns = item.namespaced.then_some(namespace);
    let patch = Patch::Apply(&item.object);
    // With --diff the server's dry run comes first; under --dry-run server it is also the result.
    let mut dry = None;
    if options.diff {
        match api.patch(&name, &patch_params(options, true), &patch).await {
            Ok(result) => dry = Some(to_value(result)),
            Err(e) => return conflicts_or_error(e, conn, item, ns),
        }
    }
    let diff_text = (dry.as_ref())
        .map(|after| diff::object_diff(&item.label(), before.as_ref(), after))
        .unwrap_or_default();
    let result = match dry.filter(|_| options.dry_run) {
        Some(result) => result,
        None => match api
            .patch(&name, &patch_params(options, options.dry_run), &patch)
            .await
        {
            Ok(result) => to_value(result),
            Err(e) => return conflicts_or_error(e, conn, item, ns),
        },
    };
    let action = match &before {
        None => ObjectAction::Created,
        Some(before) if unchanged(before, &result, options.dry_run) => ObjectAction::Unchanged,
        Some(_) => ObjectAction::Configured,
    };
    let object = AppliedObject {
        kind: item.resource.kind.clone(),
        name,
        action,
        result,
    };
    Ok(Ok((object, diff_text)))
}

fn unchanged(before: &Value, after: &Value, dry_run: bool) -> bool {
    if dry_run {
        return diff::clean(before) == diff::clean(after);
    }
    before["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]
}

/// A 404 where a kind was expected: the kind may be gone (its CRD deleted), so the next
/// discovery asks the server again.
fn forget_kinds_if_gone(conn: &Connection, err: &kube::Error) {
    if matches!(err, kube::Error::Api(status) if status.code == 404) {
        super::discovery::forget(conn);
    }
}

/// A 409 with FieldManagerConflict causes becomes the list of fields; anything else an error.
fn conflicts_or_error<T>(
    err: kube::Error,
    conn: &Connection,
    item: &Resolved,
    ns: Option<&str>,
) -> anyhow::Result<Result<T, Vec<String>>> {
    forget_kinds_if_gone(conn, &err);
    if let kube::Error::Api(status) = &err {
        let causes = status
            .details
            .as_ref()
            .map(|d| d.causes.as_slice())
            .unwrap_or_default();
        let fields: Vec<String> = causes
            .iter()
            .filter(|c| c.reason == "FieldManagerConflict")
            .map(|c| format!("{} {}: {}", item.label(), c.field, c.message))
            .collect();
        if status.code == 409 && !fields.is_empty() {
            return Ok(Err(fields));
        }
        if status.code == 422 || status.code == 400 {
            return Err(anyhow::anyhow!(
                "the cluster rejected {}: {}",
                item.label(),
                status.message
            ));
        }
    }
    Err(explain(
        err,
        conn,
        ApiCall::new("apply", &item.resource.plural, ns),
    ))
}

fn to_value(object: DynamicObject) -> Value {
    serde_json::to_value(object).expect("API objects serialize to JSON")
}

/// Creates the namespace when it is missing; true when it did (or would, in a dry run).
pub async fn ensure_namespace(
    conn: &Connection,
    namespace: &str,
    dry_run: bool,
) -> anyhow::Result<bool> {
    if namespace_exists(conn, namespace).await? {
        return Ok(false);
    }
    create_namespace(conn, namespace, dry_run).await?;
    Ok(true)
}

/// Whether `namespace` exists (a read only).
pub async fn namespace_exists(conn: &Connection, namespace: &str) -> anyhow::Result<bool> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(conn.client.clone());
    let found = api
        .get_opt(namespace)
        .await
        .map_err(|e| explain(e, conn, ApiCall::new("get", "namespaces", None)))?;
    Ok(found.is_some())
}

/// Creates `namespace` (server-side applied by spin-aks).
pub async fn create_namespace(
    conn: &Connection,
    namespace: &str,
    dry_run: bool,
) -> anyhow::Result<()> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(conn.client.clone());
    let mut params = PatchParams::apply(FIELD_MANAGER);
    if dry_run {
        params = params.dry_run();
    }
    let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    api.patch(namespace, &params, &Patch::Apply(&object))
        .await
        .map_err(|e| explain(e, conn, ApiCall::new("create", "namespaces", None)))?;
    Ok(())
}

fn secrets_api(conn: &Connection, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&());
    Api::namespaced_with(conn.client.clone(), namespace, &resource)
}

/// The group-kinds the live parent lists (none when there is no parent yet).
pub async fn parent_group_kinds(
    conn: &Connection,
    set: &ApplySet,
) -> anyhow::Result<BTreeSet<String>> {
    Ok(live_parent(conn, set)
        .await?
        .map(|p| ApplySet::listed_group_kinds(&p))
        .unwrap_or_default())
}

async fn live_parent(conn: &Connection, set: &ApplySet) -> anyhow::Result<Option<Value>> {
    let parent = secrets_api(conn, &set.namespace)
        .get_opt(&set.parent_name)
        .await
        .map_err(|e| {
            explain(
                e,
                conn,
                ApiCall::new("get", "secrets", Some(&set.namespace)),
            )
        })?;
    Ok(parent.map(to_value))
}

/// Whether the live parent already says what applying `wanted` would: every label and
/// annotation of it, with spin-aks among the parent's appliers. Then the write is skipped.
fn parent_is_current(live: &Value, wanted: &Value) -> bool {
    let carries = |field: &str| match wanted["metadata"][field].as_object() {
        Some(fields) => fields
            .iter()
            .all(|(key, value)| live["metadata"][field][key] == *value),
        None => true,
    };
    let ours = live["metadata"]["managedFields"]
        .as_array()
        .is_some_and(|entries| {
            entries
                .iter()
                .any(|e| e["manager"] == FIELD_MANAGER && e["operation"] == "Apply")
        });
    ours && carries("labels") && carries("annotations")
}

async fn apply_parent(
    conn: &Connection,
    set: &ApplySet,
    live: Option<&Value>,
    group_kinds: &BTreeSet<String>,
    dry_run: bool,
) -> anyhow::Result<()> {
    let wanted = set.parent(group_kinds);
    if live.is_some_and(|live| parent_is_current(live, &wanted)) {
        return Ok(());
    }
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    if dry_run {
        params = params.dry_run();
    }
    secrets_api(conn, &set.namespace)
        .patch(&set.parent_name, &params, &Patch::Apply(&wanted))
        .await
        .map_err(|e| {
            explain(
                e,
                conn,
                ApiCall::new("apply", "secrets", Some(&set.namespace)),
            )
        })?;
    Ok(())
}

/// The live members of `set` among `group_kinds`, as (resource, object).
pub async fn members(
    conn: &Connection,
    resources: &ServedApis,
    set: &ApplySet,
    group_kinds: &BTreeSet<String>,
) -> anyhow::Result<Vec<(ApiResource, bool, Value)>> {
    let selector = format!("{}={}", applyset::PART_OF_LABEL, set.id);
    let mut found = Vec::new();
    for group_kind in group_kinds {
        let Some((resource, namespaced)) = resources.resolve_group_kind(group_kind) else {
            continue;
        };
        let api = dynamic_api(conn, &resource, namespaced, &set.namespace);
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| {
                explain(
                    e,
                    conn,
                    ApiCall::new("list", &resource.plural, Some(&set.namespace)),
                )
            })?;
        found.extend(
            list.items
                .into_iter()
                .map(|o| (resource.clone(), namespaced, to_value(o))),
        );
    }
    Ok(found)
}

/// Deletes the members not in `keep` (kind, name).
async fn prune(
    conn: &Connection,
    resources: &ServedApis,
    set: &ApplySet,
    group_kinds: &BTreeSet<String>,
    keep: &BTreeSet<(String, String)>,
    dry_run: bool,
) -> anyhow::Result<Vec<AppliedObject>> {
    let mut pruned = Vec::new();
    for (resource, namespaced, object) in members(conn, resources, set, group_kinds).await? {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if keep.contains(&(resource.kind.clone(), name.clone())) {
            continue;
        }
        delete(conn, &resource, namespaced, &set.namespace, &name, dry_run).await?;
        pruned.push(AppliedObject {
            kind: resource.kind.clone(),
            name,
            action: ObjectAction::Pruned,
            result: Value::Null,
        });
    }
    Ok(pruned)
}

/// Deletes one object (background propagation); a 404 counts as done.
pub async fn delete(
    conn: &Connection,
    resource: &ApiResource,
    namespaced: bool,
    namespace: &str,
    name: &str,
    dry_run: bool,
) -> anyhow::Result<()> {
    let api = dynamic_api(conn, resource, namespaced, namespace);
    let mut params = DeleteParams::background();
    if dry_run {
        params = params.dry_run();
    }
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(e) if super::errors::is_status(&e, 404) => Ok(()),
        Err(e) => Err(explain(
            e,
            conn,
            ApiCall::new("delete", &resource.plural, Some(namespace)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_workload_reads_is_applied_before_it() {
        let order = |kind| stage_of(kind);
        for (first, then) in [
            ("CustomResourceDefinition", "Secret"),
            ("Namespace", "ServiceAccount"),
            ("Secret", "SpinApp"),
            ("ConfigMap", "Deployment"),
            ("SecretProviderClass", "SpinApp"),
            ("ServiceAccount", "Deployment"),
        ] {
            assert!(order(first) < order(then), "{first} before {then}");
        }
        assert_eq!(
            order("Service"),
            order("Secret"),
            "independent objects go together"
        );
    }
}
