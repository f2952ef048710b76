//! The SpinAppExecutor a SpinApp names must exist in its namespace; SpinKube's standard
//! `containerd-shim-spin` executor is created when missing (shared, so not part of any app's set).

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::Value;

use super::apply::{Resources, FIELD_MANAGER};
use super::connect::Connection;
use super::errors::{explain, Action};

const STANDARD: &str = include_str!("../../manifests/spinapp-executor.yaml");

/// Makes sure every executor the SpinApps in `objects` name exists in `namespace`; returns the
/// names it created (or would create, in a dry run).
pub async fn ensure(
    conn: &Connection,
    resources: &Resources,
    namespace: &str,
    objects: &[Value],
    dry_run: bool,
) -> anyhow::Result<Vec<String>> {
    let mut created = Vec::new();
    for spinapp in objects.iter().filter(|o| o["kind"] == "SpinApp") {
        let name = spinapp["spec"]["executor"].as_str().unwrap_or_default();
        let group = spinapp["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .split('/')
            .next()
            .unwrap_or_default();
        let (resource, _) = resources.resolve(&format!("{group}/v1alpha1"), "SpinAppExecutor")?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(conn.client.clone(), namespace, &resource);
        let action = |verb| Action::new(verb, "spinappexecutors", Some(namespace));
        if api
            .get_opt(name)
            .await
            .map_err(|e| explain(e, conn, action("get")))?
            .is_some()
            || created.iter().any(|c| c == name)
        {
            continue;
        }
        let mut standard: Value =
            serde_saphyr::from_str(STANDARD).expect("the bundled executor is valid YAML");
        if name != standard["metadata"]["name"] {
            anyhow::bail!(
                "the SpinApp names executor `{name}`, which does not exist in namespace {namespace}; create it, or use SpinKube's standard `containerd-shim-spin`"
            );
        }
        standard["apiVersion"] = Value::String(format!("{group}/v1alpha1"));
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if dry_run {
            params = params.dry_run();
        }
        api.patch(name, &params, &Patch::Apply(&standard))
            .await
            .map_err(|e| explain(e, conn, action("create")))?;
        created.push(name.to_string());
    }
    Ok(created)
}
