//! What a deploy sends, decided before any cluster call: the image, the objects (a directory,
//! scaffold's output, or generated as scaffold would) and the namespace they go into.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::settings::Settings;
use super::workload;
use crate::app::App;
use crate::bad_input;
use crate::context::AppContext;
use crate::manifests::source::{self, Objects};
use crate::oci::reference::ImageRef;
use crate::output::Output;
use crate::state::{AppState, WorkloadIdentity};
use crate::workload::key_vault::CLIENT_ID_ANNOTATION;
use crate::workload::objects;

/// One deploy, planned: what goes where.
pub struct DeployPlan<'a> {
    /// The app's name (its ApplySet, its workload).
    pub name: &'a str,
    pub namespace: String,
    pub image: ImageRef,
    pub objects: Objects,
    pub settings: &'a Settings,
}

/// `--image`, else the last push pinned by digest.
pub fn choose_image(
    image: Option<ImageRef>,
    state: &AppState,
    out: &Output,
) -> anyhow::Result<ImageRef> {
    if let Some(image) = image {
        if image.digest().is_none() {
            out.warn(format!(
                "--image {image} is a mutable tag: the cluster may run another image than you tested; pin it with @sha256:…"
            ));
        }
        return Ok(image);
    }
    let pinned = state.last_pinned.clone().ok_or_else(|| {
        bad_input!("no image to deploy: pass --image <REF>, or push the app first (`spin-aks push`, or `spin-aks up` for both)")
    })?;
    Ok(pinned.into())
}

/// The objects: `--dir`, else scaffold's `<app dir>/deploy`, else generated as scaffold would;
/// plus the Secrets that carry store credentials (never in files) when the store flags are given.
pub fn load_objects(
    ctx: &AppContext,
    settings: &Settings,
    image: &ImageRef,
) -> anyhow::Result<Objects> {
    let dir = objects_dir(&ctx.app, settings);
    let stores = &settings.workload;
    let stores_given = !stores.kv_stores.is_empty() || !stores.sqlite.is_empty();
    let built = match (&dir, stores_given) {
        (Some(_), false) => None,
        _ => {
            let kind = settings.workload.kind.unwrap_or_default();
            let options = workload::options(
                &settings.workload,
                &ctx.app,
                ctx.remembered(),
                kind,
                image.clone(),
                None,
            )?;
            Some(objects::build(&ctx.app, &options))
        }
    };
    let loaded = match (dir, &built) {
        (Some(dir), _) => source::load_dir(&dir)?,
        (None, built) => Objects::Manifests(
            built
                .iter()
                .flat_map(|b| &b.objects)
                .map(|o| o.to_value())
                .collect(),
        ),
    };
    let secrets = built.iter().flat_map(|b| &b.secrets).map(|o| o.to_value());
    Ok(match loaded {
        Objects::Manifests(objects) => {
            let mut objects: Vec<Value> = secrets.chain(objects).collect();
            source::set_image(&mut objects, image);
            Objects::Manifests(objects)
        }
        chart => chart,
    })
}

/// The directory the objects come from: `--dir`, else scaffold's `<app dir>/deploy`.
pub fn objects_dir(app: &App, settings: &Settings) -> Option<PathBuf> {
    settings
        .dir
        .clone()
        .or_else(|| source::scaffolded_dir(&app.dir))
}

/// The namespace a deploy will use on a cluster whose credentials name none (AKS through ARM),
/// known before connecting: `-n`, else the one the directory's objects name, else this app's
/// last namespace on `context`, else `default`.
pub fn planned_namespace(
    ctx: &AppContext,
    settings: &Settings,
    context: &str,
) -> anyhow::Result<String> {
    let dir = objects_dir(&ctx.app, settings);
    let explicit = settings.target.namespace.as_deref();
    namespace_before_connecting(explicit, dir.as_deref(), ctx.remembered(), context)
}

fn namespace_before_connecting(
    explicit: Option<&str>,
    dir: Option<&Path>,
    state: &AppState,
    context: &str,
) -> anyhow::Result<String> {
    let fallback = last_namespace_on(state, context);
    let objects = match dir.map(source::load_dir).transpose()? {
        Some(Objects::Manifests(objects)) => objects,
        _ => Vec::new(),
    };
    namespace_for(explicit, fallback, &objects)
}

/// Where this app was last applied on `context`, else `default`: the namespace of a cluster whose
/// credentials name none.
pub fn last_namespace_on<'a>(state: &'a AppState, context: &str) -> &'a str {
    state
        .last_deploy
        .as_ref()
        .filter(|d| d.context == context)
        .map_or("default", |d| d.namespace.as_str())
}

/// The namespace: `explicit` (`-n`, which the objects must not contradict), else the one the
/// objects name, else `fallback` (the context's or remembered one).
pub fn namespace_for(
    explicit: Option<&str>,
    fallback: &str,
    objects: &[Value],
) -> anyhow::Result<String> {
    let declared: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| o["metadata"]["namespace"].as_str())
        .collect();
    if let Some(explicit) = explicit {
        if let Some(other) = declared.iter().find(|ns| **ns != explicit) {
            return Err(bad_input!(
                "the objects name namespace `{other}` but -n says `{explicit}`; drop -n or change the files"
            ));
        }
        return Ok(explicit.to_string());
    }
    match declared.len() {
        0 => Ok(fallback.to_string()),
        1 => Ok(declared.into_iter().next().unwrap_or_default().to_string()),
        _ => Err(bad_input!(
            "the objects name several namespaces ({}); spin-aks applies an app into one",
            declared.into_iter().collect::<Vec<_>>().join(", ")
        )),
    }
}

/// Refuses a deploy whose ServiceAccount carries the remembered identity's client id under a
/// namespace or name its federated credential does not trust: Entra would refuse every token the
/// pods ask for, so the app would start and then fail on its first Key Vault or Cosmos DB call.
pub fn check_federation(
    identity: Option<&WorkloadIdentity>,
    namespace: &str,
    objects: &[Value],
) -> anyhow::Result<()> {
    let Some(identity) = identity else {
        return Ok(());
    };
    let federated = objects.iter().filter(|o| {
        o["kind"] == "ServiceAccount"
            && o["metadata"]["annotations"][CLIENT_ID_ANNOTATION] == identity.client_id.as_str()
    });
    for account in federated {
        let name = account["metadata"]["name"].as_str().unwrap_or_default();
        let account_namespace = account["metadata"]["namespace"]
            .as_str()
            .unwrap_or(namespace);
        if (account_namespace, name)
            != (
                identity.namespace.as_str(),
                identity.service_account.as_str(),
            )
        {
            return Err(bad_input!(
                "the workload identity {} trusts ServiceAccount {}/{}, but this deploy gives the app {account_namespace}/{name}: its pods would get no tokens. Federate it there too with `spin-aks identity setup -n {account_namespace} --service-account {name}`, or deploy to -n {}",
                identity.client_id,
                identity.namespace,
                identity.service_account,
                identity.namespace
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::DeployTarget;
    use serde_json::json;

    fn in_namespace(namespace: &str) -> Value {
        json!({"kind": "SpinApp", "metadata": {"name": "app", "namespace": namespace}})
    }

    #[test]
    fn namespace_is_the_flag_else_the_declared_one_else_the_fallback() {
        let declared = [in_namespace("shop")];
        assert_eq!(namespace_for(Some("shop"), "x", &declared).unwrap(), "shop");
        assert_eq!(namespace_for(None, "x", &declared).unwrap(), "shop");
        assert_eq!(namespace_for(None, "x", &[]).unwrap(), "x");
    }

    #[test]
    fn before_connecting_the_namespace_comes_from_the_flag_the_files_or_the_last_deploy_there() {
        let dir = tempfile::tempdir().unwrap();
        let state = AppState {
            last_deploy: Some(DeployTarget {
                context: "aks1".into(),
                namespace: "last".into(),
            }),
            ..AppState::default()
        };
        let before = |explicit, dir| namespace_before_connecting(explicit, dir, &state, "aks1");
        assert_eq!(before(None, None).unwrap(), "last");
        assert_eq!(before(Some("flag"), None).unwrap(), "flag");
        let elsewhere = namespace_before_connecting(None, None, &state, "aks2").unwrap();
        assert_eq!(
            elsewhere, "default",
            "the last deploy was on another cluster"
        );
        std::fs::write(
            dir.path().join("app.yaml"),
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: app, namespace: shop}\n",
        )
        .unwrap();
        assert_eq!(before(None, Some(dir.path())).unwrap(), "shop");
        assert!(before(Some("flag"), Some(dir.path())).is_err());
    }

    #[test]
    fn a_flag_the_objects_contradict_or_several_declared_namespaces_are_bad_input() {
        let err = namespace_for(Some("prod"), "x", &[in_namespace("shop")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("name namespace `shop` but -n says `prod`"),
            "{err}"
        );
        let two = [in_namespace("a"), in_namespace("b")];
        let err = namespace_for(None, "x", &two).unwrap_err();
        assert!(
            err.to_string().contains("several namespaces (a, b)"),
            "{err}"
        );
    }

    fn remembered() -> WorkloadIdentity {
        WorkloadIdentity {
            client_id: "c1".into(),
            namespace: "shop".into(),
            service_account: "shop".into(),
            ..WorkloadIdentity::default()
        }
    }

    fn account(namespace: Option<&str>, name: &str, client_id: &str) -> Value {
        json!({"kind": "ServiceAccount", "metadata": {
            "name": name, "namespace": namespace,
            "annotations": {CLIENT_ID_ANNOTATION: client_id}}})
    }

    #[test]
    fn a_service_account_the_identity_trusts_passes() {
        let objects = [account(None, "shop", "c1")];
        check_federation(Some(&remembered()), "shop", &objects).unwrap();
        check_federation(None, "elsewhere", &objects).unwrap();
    }

    #[test]
    fn another_namespace_or_name_for_the_remembered_identity_is_refused_with_the_fix() {
        for (objects, namespace) in [
            ([account(None, "shop", "c1")], "prod"),
            ([account(Some("shop"), "api", "c1")], "shop"),
        ] {
            let err = check_federation(Some(&remembered()), namespace, &objects).unwrap_err();
            assert!(err.is::<crate::error::BadInput>(), "{err}");
            assert!(
                err.to_string().contains("trusts ServiceAccount shop/shop")
                    && err.to_string().contains("spin-aks identity setup -n"),
                "{err}"
            );
        }
    }

    #[test]
    fn an_identity_given_by_flag_is_not_checked_against_the_remembered_one() {
        let objects = [account(None, "shop", "other-client")];
        check_federation(Some(&remembered()), "prod", &objects).unwrap();
    }
}
