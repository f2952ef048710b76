//! `cluster check` through the Kubernetes API (docs/cluster.md): SpinKube's group, operator webhook,
//! executor, RuntimeClass, provisioned nodes and their containerd, the shim version against the app.

use std::collections::BTreeSet;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::{Api, DynamicObject, ListParams};
use serde::Serialize;

use super::apply::ServedApis;
use super::connect::Connection;
use super::errors::{explain, ApiCall};
use crate::app::compat::{self, ShimRelease};
use crate::app::model::Source;
use crate::app::App;
use crate::workload::objects::DEFAULT_RUNTIME_CLASS;
use crate::workload::spinapp::SHIM_EXECUTOR;

/// One line of `cluster check`: what was looked at, whether it is fine, and the fix when not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The `ns:pkg/name@version` names in the app's built local wasm (remote sources are not read):
/// what [`Needs::imports`] lists.
pub fn host_imports(app: &App) -> BTreeSet<String> {
    let mut imports = BTreeSet::new();
    for component in &app.components {
        let Source::Local(path) = &component.source else {
            continue;
        };
        let Ok(file) = std::fs::File::open(app.dir.join(path)) else {
            continue;
        };
        let mut scanner = compat::ImportScanner::new(std::io::BufReader::new(file));
        if std::io::copy(&mut scanner, &mut std::io::sink()).is_ok() {
            imports.extend(scanner.finish());
        }
    }
    imports
}

/// What the app asks of the cluster.
pub struct Needs<'a> {
    pub namespace: &'a str,
    /// Host imports of the app's components (`ns:pkg/name@version`).
    pub imports: &'a BTreeSet<String>,
}

/// The cheap checks apply and `up` run first, for what `objects` use: SpinKube served (for a
/// SpinApp) and each RuntimeClass there. Fails with every failed check's fix.
pub async fn preflight(
    conn: &Connection,
    resources: &ServedApis,
    objects: &[serde_json::Value],
) -> anyhow::Result<()> {
    let spinapps = objects.iter().any(|o| o["kind"] == "SpinApp");
    let mut checks = Vec::new();
    if spinapps {
        checks.push(spinapp_group(resources));
    }
    let classes: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| o.pointer("/spec/template/spec/runtimeClassName")?.as_str())
        .chain(spinapps.then_some(DEFAULT_RUNTIME_CLASS))
        .collect();
    for class in classes {
        checks.push(runtime_class(conn, class).await?.0);
    }
    let failed: Vec<String> = checks
        .into_iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}; fix: {}", c.detail, c.fix.unwrap_or_default()))
        .collect();
    match failed.is_empty() {
        true => Ok(()),
        false => Err(NotReady {
            cluster: conn.context.clone(),
            failed,
        }
        .into()),
    }
}

/// The cluster lacks what the app's objects need (SpinKube, a RuntimeClass); nothing was applied.
/// `up` offers `cluster install` on it.
#[derive(Debug, thiserror::Error)]
#[error("{cluster} cannot run this app, so nothing was applied:\n  {}\n(`spin-aks cluster check` runs every check)", failed.join("\n  "))]
pub struct NotReady {
    pub cluster: String,
    /// Each failed check with its fix.
    pub failed: Vec<String>,
}

/// Every Kubernetes-side check, in the order a user fixes them.
pub async fn all(
    conn: &Connection,
    resources: &ServedApis,
    needs: &Needs<'_>,
) -> anyhow::Result<Vec<Check>> {
    let group = resources.spinapp_group();
    let (runtime_class_check, handler) = runtime_class(conn, DEFAULT_RUNTIME_CLASS).await?;
    let mut checks = vec![spinapp_group(resources)];
    if let Some(group) = group {
        checks.push(operator(conn, group).await?);
        checks.push(executor(conn, resources, group, needs.namespace).await?);
    }
    checks.push(runtime_class_check);
    checks.push(nodes(conn, handler.as_deref()).await?);
    checks.push(shim_version(conn, resources, needs.imports).await?);
    Ok(checks)
}

fn spinapp_group(resources: &ServedApis) -> Check {
    match resources.spinapp_group() {
        Some(group) if group == super::apply::SPINKUBE_GROUP => {
            Check::pass("spinkube", format!("SpinApp is served ({group}/v1alpha1)"))
        }
        Some(group) => Check::pass(
            "spinkube",
            format!("SpinApp is served in the old group {group} (spin-operator before v0.4.0); spin-aks uses it"),
        ),
        None => Check::fail(
            "spinkube",
            "the cluster does not serve SpinApp (core.spinkube.dev)",
            "spin-aks cluster install (SpinKube: cert-manager, runtime-class-manager and the shim, the spin-operator CRDs and chart, through Flux), or deploy with --workload deployment",
        ),
    }
}

async fn operator(conn: &Connection, group: &str) -> anyhow::Result<Check> {
    let webhooks: Api<MutatingWebhookConfiguration> = Api::all(conn.client.clone());
    let configs = webhooks.list(&ListParams::default()).await.map_err(|e| {
        explain(
            e,
            conn,
            ApiCall::new("list", "mutatingwebhookconfigurations", None),
        )
    })?;
    let services: BTreeSet<(String, String)> = configs
        .items
        .iter()
        .flat_map(|c| c.webhooks.iter().flatten())
        .filter(|w| {
            w.rules
                .iter()
                .flatten()
                .any(|r| r.api_groups.iter().flatten().any(|g| g == group))
        })
        .filter_map(|w| w.client_config.service.as_ref())
        .map(|s| (s.namespace.clone(), s.name.clone()))
        .collect();
    let Some((namespace, name)) = services.into_iter().next() else {
        return Ok(Check::pass(
            "operator",
            "no admission webhook for SpinApps is registered (the operator runs without webhooks)",
        ));
    };
    let slices: Api<EndpointSlice> = Api::namespaced(conn.client.clone(), &namespace);
    let listed = slices
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={name}")))
        .await
        .map_err(|e| {
            explain(
                e,
                conn,
                ApiCall::new("list", "endpointslices", Some(&namespace)),
            )
        })?;
    let ready = listed
        .items
        .iter()
        .flat_map(|s| &s.endpoints)
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        .count();
    Ok(match ready {
        0 => Check::fail(
            "operator",
            format!("the spin-operator webhook service {namespace}/{name} has no ready endpoints, so every SpinApp write fails"),
            format!("start the operator: check the Deployment behind {namespace}/{name} (`spin-aks` cannot apply SpinApps until it is ready)"),
        ),
        n => Check::pass("operator", format!("webhook service {namespace}/{name} has {n} ready endpoint(s)")),
    })
}

async fn executor(
    conn: &Connection,
    resources: &ServedApis,
    group: &str,
    namespace: &str,
) -> anyhow::Result<Check> {
    let (resource, _) = resources.resolve(&format!("{group}/v1alpha1"), "SpinAppExecutor")?;
    let api: Api<DynamicObject> = Api::namespaced_with(conn.client.clone(), namespace, &resource);
    let found = api.get_opt(SHIM_EXECUTOR).await.map_err(|e| {
        explain(
            e,
            conn,
            ApiCall::new("get", "spinappexecutors", Some(namespace)),
        )
    })?;
    Ok(Check::pass(
        "executor",
        match found {
            Some(_) => format!("SpinAppExecutor {SHIM_EXECUTOR} exists in namespace {namespace}"),
            None => format!("SpinAppExecutor {SHIM_EXECUTOR} is missing in namespace {namespace}; apply creates it"),
        },
    ))
}

/// The RuntimeClass check, and its handler when it exists.
async fn runtime_class(conn: &Connection, name: &str) -> anyhow::Result<(Check, Option<String>)> {
    let api: Api<RuntimeClass> = Api::all(conn.client.clone());
    let found = api
        .get_opt(name)
        .await
        .map_err(|e| explain(e, conn, ApiCall::new("get", "runtimeclasses", None)))?;
    Ok(match found {
        Some(class) => (
            Check::pass(
                "runtime-class",
                format!("RuntimeClass {name} runs handler `{}`", class.handler),
            ),
            Some(class.handler),
        ),
        None => (
            Check::fail(
                "runtime-class",
                format!("RuntimeClass {name} does not exist, so no pod can run a Spin app"),
                "spin-aks cluster install (runtime-class-manager with a Shim `spin-v2` creates it and provisions the nodes), or create the RuntimeClass for nodes that have containerd-shim-spin",
            ),
            None,
        ),
    })
}

/// Nodes with the shim: runtime-class-manager's `<shim>=provisioned` label (or KWasm's), each with
/// a containerd that runs Spin artifacts (≥ 1.6.26 or ≥ 1.7.7).
async fn nodes(conn: &Connection, handler: Option<&str>) -> anyhow::Result<Check> {
    let api: Api<Node> = Api::all(conn.client.clone());
    let nodes = api
        .list(&ListParams::default())
        .await
        .map_err(|e| explain(e, conn, ApiCall::new("list", "nodes", None)))?;
    let provisioned: Vec<&Node> =
        nodes
            .items
            .iter()
            .filter(|node| {
                node.metadata.labels.iter().flatten().any(|(key, value)| {
                    value == "provisioned" || key == "kwasm.sh/kwasm-provisioned"
                })
            })
            .collect();
    if provisioned.is_empty() {
        return Ok(Check::fail(
            "nodes",
            format!("no node is provisioned with containerd-shim-spin (of {} node(s))", nodes.items.len()),
            format!(
                "let runtime-class-manager provision a node pool (label the nodes as its Shim's nodeSelector says, e.g. `spin=true`){}",
                handler.map(|h| format!("; the handler `{h}` must exist in their containerd config")).unwrap_or_default()
            ),
        ));
    }
    let too_old: Vec<String> = provisioned
        .iter()
        .filter_map(|node| {
            let version = node
                .status
                .as_ref()?
                .node_info
                .as_ref()?
                .container_runtime_version
                .clone();
            (!containerd_runs_spin_artifacts(&version)).then(|| {
                format!(
                    "{} ({version})",
                    node.metadata.name.clone().unwrap_or_default()
                )
            })
        })
        .collect();
    Ok(match too_old.is_empty() {
        true => Check::pass(
            "nodes",
            format!(
                "{} node(s) provisioned with the shim, containerd able to pull Spin artifacts",
                provisioned.len()
            ),
        ),
        false => Check::fail(
            "nodes",
            format!(
                "containerd on {} is older than 1.6.26 / 1.7.7 and cannot pull Spin artifacts",
                too_old.join(", ")
            ),
            "upgrade the node image, or push the plain image format instead (`--format image`)",
        ),
    })
}

/// Whether `containerd://x.y.z` pulls Spin's OCI artifacts (containerd ≥ 1.6.26 or ≥ 1.7.7).
fn containerd_runs_spin_artifacts(runtime: &str) -> bool {
    let Some(version) = runtime.strip_prefix("containerd://") else {
        return false;
    };
    let mut parts = version
        .split(['.', '-', '+'])
        .map(|p| p.trim_start_matches('v').parse::<u64>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    match (major, minor) {
        (1, 6) => patch >= 26,
        (1, 7) => patch >= 7,
        (1, m) => m > 7,
        (m, _) => m > 1,
    }
}

/// The shim version from runtime-class-manager's Shim download URL, compared with the imports.
async fn shim_version(
    conn: &Connection,
    resources: &ServedApis,
    imports: &BTreeSet<String>,
) -> anyhow::Result<Check> {
    let needed = compat::min_shim_for_imports(imports.iter().map(String::as_str));
    let need = match needed {
        Some(release) => format!("the app needs {release} or later"),
        None => "no containerd-shim-spin release runs every import of the app".to_string(),
    };
    let Ok((resource, _)) = resources.resolve("runtime.spinkube.dev/v1alpha1", "Shim") else {
        return Ok(Check::pass(
            "shim-version",
            format!("not readable (no runtime-class-manager Shim resource); {need}"),
        ));
    };
    let api: Api<DynamicObject> = Api::all_with(conn.client.clone(), &resource);
    let shims = api
        .list(&ListParams::default())
        .await
        .map_err(|e| explain(e, conn, ApiCall::new("list", "shims", None)))?;
    let versions: Vec<&'static ShimRelease> = shims
        .items
        .iter()
        .filter_map(|shim| {
            // One archive (`anonHttp`), or one per architecture (`platforms`, runtime-class-manager 0.2).
            let fetch = &shim.data["spec"]["fetchStrategy"];
            let platforms = fetch["platforms"].as_array().into_iter().flatten();
            let url = (fetch["anonHttp"]["location"].as_str())
                .or_else(|| platforms.filter_map(|p| p["location"].as_str()).next())?;
            let version = url.split("/download/").nth(1)?.split('/').next()?;
            compat::target_shim(version).ok()
        })
        .collect();
    let Some(installed) = versions.first() else {
        return Ok(Check::pass(
            "shim-version",
            format!("no Shim names a release download; {need}"),
        ));
    };
    let missing = compat::missing_imports(installed, imports.iter().map(String::as_str));
    Ok(if missing.is_empty() {
        Check::pass(
            "shim-version",
            format!("{installed} runs every import of the app"),
        )
    } else {
        Check::fail(
            "shim-version",
            format!(
                "{installed} cannot run {}",
                missing.iter().map(|(i, _)| *i).collect::<Vec<_>>().join(", ")
            ),
            format!("{need}: update the Shim's fetchStrategy to that release, or build the app against an older Spin SDK"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_versions_that_pull_spin_artifacts() {
        for ok in [
            "containerd://1.7.27",
            "containerd://1.6.26",
            "containerd://2.0.1",
            "containerd://1.7.7-1",
        ] {
            assert!(containerd_runs_spin_artifacts(ok), "{ok}");
        }
        for old in [
            "containerd://1.6.25",
            "containerd://1.7.6",
            "docker://24.0.0",
            "containerd://1.5.9",
        ] {
            assert!(!containerd_runs_spin_artifacts(old), "{old}");
        }
    }
}
