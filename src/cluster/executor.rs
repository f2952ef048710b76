//! The SpinAppExecutor a SpinApp names must exist in its namespace; SpinKube's standard
//! `containerd-shim-spin` executor is created when missing (shared, so not part of any app's set).

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::Value;

use super::apply::{ServedApis, FIELD_MANAGER};
use super::connect::Connection;
use super::errors::{explain, ApiCall};

const STANDARD: &str = include_str!("../../manifests/spinapp-executor.yaml");

/// Makes sure every executor the SpinApps in `objects` name exists in `namespace`; returns the
/// names it created (or would create, in a dry run).
pub async fn ensure(
    conn: &Connection,
    resources: &ServedApis,
    namespace: &str,
    objects: &[Value],
    dry_run: bool,
) -> anyhow::Result<Vec<String>> {
    let missing = missing(conn, resources, namespace, objects).await?;
    create(conn, namespace, missing, dry_run).await
}

/// An executor a SpinApp names that its namespace lacks, to be created by [`create`].
pub struct Missing {
    name: String,
    resource: kube::discovery::ApiResource,
}

/// The executors the SpinApps in `objects` name that `namespace` lacks (reads only; each once).
/// Refused when one is not SpinKube's standard executor, which is the only one spin-aks creates.
pub async fn missing(
    conn: &Connection,
    resources: &ServedApis,
    namespace: &str,
    objects: &[Value],
) -> anyhow::Result<Vec<Missing>> {
    let mut missing: Vec<Missing> = Vec::new();
    for spinapp in objects.iter().filter(|o| o["kind"] == "SpinApp") {
        let name = spinapp["spec"]["executor"].as_str().unwrap_or_default();
        if missing.iter().any(|m| m.name == name) {
            continue;
        }
        let group = spinapp["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .split('/')
            .next()
            .unwrap_or_default();
        let (resource, _) = resources.resolve(&format!("{group}/v1alpha1"), "SpinAppExecutor")?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(conn.client.clone(), namespace, &resource);
        let found = api.get_opt(name).await.map_err(|e| {
            explain(
                e,
                conn,
                ApiCall::new("get", "spinappexecutors", Some(namespace)),
            )
        })?;
        if found.is_some() {
            continue;
        }
        if name != standard()["metadata"]["name"] {
            anyhow::bail!(
                "the SpinApp names executor `{name}`, which does not exist in namespace {namespace}; create it, or use SpinKube's standard `containerd-shim-spin`"
            );
        }
        missing.push(Missing {
            name: name.to_string(),
            resource,
        });
    }
    Ok(missing)
}

/// Creates the executors [`missing`] found; returns their names.
pub async fn create(
    conn: &Connection,
    namespace: &str,
    missing: Vec<Missing>,
    dry_run: bool,
) -> anyhow::Result<Vec<String>> {
    let mut params = PatchParams::apply(FIELD_MANAGER);
    if dry_run {
        params = params.dry_run();
    }
    let mut created = Vec::new();
    for Missing { name, resource } in missing {
        let mut standard = standard();
        standard["apiVersion"] = Value::String(resource.api_version.clone());
        let api: Api<DynamicObject> =
            Api::namespaced_with(conn.client.clone(), namespace, &resource);
        api.patch(&name, &params, &Patch::Apply(&standard))
            .await
            .map_err(|e| {
                explain(
                    e,
                    conn,
                    ApiCall::new("create", "spinappexecutors", Some(namespace)),
                )
            })?;
        created.push(name);
    }
    Ok(created)
}

fn standard() -> Value {
    serde_saphyr::from_str(STANDARD).expect("the bundled executor is valid YAML")
}
