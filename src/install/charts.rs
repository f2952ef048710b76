//! The HelmCharts helm-controller would make for the releases, created ahead of it so that
//! source-controller fetches every chart while the releases are still being applied.

use kube::api::{Api, DynamicObject, PostParams};
use serde_json::Value;

use super::objects::NAMESPACE;
use crate::cluster::apply::{AppliedObject, ObjectAction, ServedApis, FIELD_MANAGER};
use crate::cluster::connect::Connection;
use crate::cluster::errors::{explain, ApiCall};

/// Creates each of `charts` (from [`super::objects::charts`]) that does not exist yet; one that
/// does is left to helm-controller, which owns it from then on (it applies the HelmChart of a
/// release with forced ownership on every reconcile), and reported unchanged. Nothing is created
/// where the cluster serves no `source.toolkit.fluxcd.io/v1` HelmChart: helm-controller makes them.
pub async fn create_missing(
    conn: &Connection,
    resources: &ServedApis,
    charts: Vec<Value>,
) -> anyhow::Result<Vec<AppliedObject>> {
    let Ok((resource, _)) = resources.resolve("source.toolkit.fluxcd.io/v1", "HelmChart") else {
        return Ok(Vec::new());
    };
    let api: Api<DynamicObject> = Api::namespaced_with(conn.client.clone(), NAMESPACE, &resource);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    let created = charts.into_iter().map(|chart| {
        let (api, params) = (&api, &params);
        async move {
            let name = chart["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let object: DynamicObject = serde_json::from_value(chart)?;
            let (action, result) = match api.create(params, &object).await {
                Ok(made) => (ObjectAction::Created, serde_json::to_value(made)?),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    (ObjectAction::Unchanged, Value::Null)
                }
                Err(e) => {
                    let action = ApiCall::new("create", "helmcharts", Some(NAMESPACE));
                    return Err(explain(e, conn, action));
                }
            };
            Ok(AppliedObject {
                kind: "HelmChart".to_string(),
                name,
                action,
                result,
            })
        }
    });
    futures_util::future::try_join_all(created).await
}
