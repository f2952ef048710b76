//! What `cluster install` makes sure of before it writes anything: the caller's Kubernetes rights
//! (asked with SelfSubjectAccessReviews) and that each chart version exists in its registry.

use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::flux::NAMESPACE as FLUX_NAMESPACE;
use super::objects::{ChartSource, NAMESPACE};
use super::releases::{Chart, ReleaseSet};
use crate::bad_input;
use crate::cluster::connect::Connection;
use crate::oci::reference::RegistryRef;
use crate::output::Output;
use crate::registry::auth::{resolve_credential, AuthMode};
use crate::registry::client::{RegistryClient, TransportOptions};
use crate::retry::RetryPolicy;

/// The role that grants everything the install does, for the message when rights are missing.
const ROLE_NEEDED: &str = "cluster install creates CRDs, namespaces, Flux objects (and Flux itself where it is missing) and cluster-wide Shims, and labels nodes: it needs the cluster-admin ClusterRole (on AKS with Azure RBAC, the role \"Azure Kubernetes Service RBAC Cluster Admin\" on the cluster); ask your cluster's admin for it, or let them run the install";

/// How long the look-up of a chart version may take before the install goes on without it.
const CHART_LOOKUP: Duration = Duration::from_secs(5);

/// One right the install needs: verb, API group, resource, namespace.
type Right = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

/// Refuses (naming every missing right and the role that grants them) unless the caller may do
/// all the install does; `label_nodes`: it also labels nodes through the API; `flux`: it also
/// installs Flux's controllers.
pub async fn rights(conn: &Connection, label_nodes: bool, flux: bool) -> anyhow::Result<()> {
    let mut needed: Vec<Right> = vec![
        ("create", "", "namespaces", None),
        (
            "patch",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
        ),
        (
            "patch",
            "source.toolkit.fluxcd.io",
            "helmrepositories",
            Some(NAMESPACE),
        ),
        (
            "create",
            "source.toolkit.fluxcd.io",
            "helmcharts",
            Some(NAMESPACE),
        ),
        (
            "patch",
            "helm.toolkit.fluxcd.io",
            "helmreleases",
            Some(NAMESPACE),
        ),
        // The dry-run Issuer that asks whether cert-manager's API serves (an apply that creates).
        ("create", "cert-manager.io", "issuers", Some(NAMESPACE)),
        ("patch", "cert-manager.io", "issuers", Some(NAMESPACE)),
        ("patch", "runtime.spinkube.dev", "shims", None),
        ("patch", "", "secrets", Some(NAMESPACE)),
    ];
    if label_nodes {
        needed.push(("patch", "", "nodes", None));
    }
    if flux {
        let rbac = "rbac.authorization.k8s.io";
        needed.extend([
            ("patch", rbac, "clusterroles", None),
            ("patch", rbac, "clusterrolebindings", None),
            ("patch", "apps", "deployments", Some(FLUX_NAMESPACE)),
        ]);
    }
    let api: Api<SelfSubjectAccessReview> = Api::all(conn.client.clone());
    let reviews = needed.iter().map(|right| review(&api, right));
    let mut missing = Vec::new();
    for (right, allowed) in needed
        .iter()
        .zip(futures_util::future::join_all(reviews).await)
    {
        // A review the server cannot answer is not a refusal: the write itself will tell.
        if allowed == Some(false) {
            let (verb, group, resource, namespace) = right;
            let resource = match group.is_empty() {
                true => resource.to_string(),
                false => format!("{resource}.{group}"),
            };
            missing.push(match namespace {
                Some(ns) => format!("{verb} {resource} in namespace {ns}"),
                None => format!("{verb} {resource}"),
            });
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "forbidden: context `{}` ({}) may not {}, so nothing was written. {ROLE_NEEDED}",
        conn.context,
        conn.server,
        missing.join(", ")
    )
}

/// Whether the API server allows `right` to the caller (`None`: it did not say).
async fn review(api: &Api<SelfSubjectAccessReview>, right: &Right) -> Option<bool> {
    let (verb, group, resource, namespace) = *right;
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.to_string()),
                group: Some(group.to_string()),
                resource: Some(resource.to_string()),
                namespace: namespace.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = api.create(&PostParams::default(), &review).await.ok()?;
    Some(answer.status?.allowed)
}

/// The flag that chooses `chart`'s version.
fn version_flag(chart: &Chart) -> &'static str {
    match chart.name {
        "cert-manager" => "--cert-manager-version",
        "runtime-class-manager" => "--runtime-class-manager-version",
        _ => "--spin-operator-version",
    }
}

/// Refuses a chart version its registry does not have (exit 2, naming the flag and value). A
/// registry this machine cannot ask (the cluster may reach it when we do not) is only said.
pub async fn chart_versions(
    releases: &ReleaseSet,
    source: &ChartSource,
    out: &Output,
) -> anyhow::Result<()> {
    let lookups = releases.charts().map(|chart| chart_version(chart, source));
    let results = futures_util::future::join_all(lookups).await;
    for (chart, result) in releases.charts().into_iter().zip(results) {
        let (registry, _) = location(chart, source);
        match result {
            Ok(true) => {}
            Ok(false) => {
                return Err(bad_input!(
                    "{} {}: {registry}/{} has no chart version {}; pick a version that is published there{}",
                    version_flag(chart),
                    chart.version.trim_start_matches('v'),
                    chart.name,
                    chart.version,
                    match source {
                        ChartSource::Mirror { .. } => ", or copy that chart version into the mirror (--chart-registry)",
                        ChartSource::Publishers => "",
                    }
                ))
            }
            Err(e) => out.info(format!(
                "cannot look up {}:{} in {registry} from here ({}); the cluster's helm-controller will try",
                chart.name,
                chart.version,
                e.root_cause()
            )),
        }
    }
    Ok(())
}

/// The registry path a chart is pulled from, and whether it is plain HTTP.
fn location<'a>(chart: &'a Chart, source: &'a ChartSource) -> (&'a str, bool) {
    match source {
        ChartSource::Publishers => (chart.registry, false),
        ChartSource::Mirror { registry, insecure } => (registry, *insecure),
    }
}

/// Whether the chart's version tag exists in its registry.
async fn chart_version(chart: &Chart, source: &ChartSource) -> anyhow::Result<bool> {
    let (registry, insecure) = location(chart, source);
    let target = RegistryRef::parse(&format!("{registry}/{}", chart.name))?;
    let host = target.registry().to_string();
    let transport = TransportOptions {
        plain_http: insecure && !crate::tls::is_loopback(&host),
        ..Default::default()
    };
    let lookup = async {
        let http = crate::registry::client::http_client(&transport)?;
        let credential = resolve_credential(AuthMode::Auto, &host, &http).await?;
        // A registry that is not there is not waited for: the cluster's pull will say why.
        let retry = RetryPolicy::with_budget(Duration::from_secs(2));
        let mut client =
            RegistryClient::new(&target, credential, &[], http, &transport, retry)?.pull_only();
        Ok::<_, anyhow::Error>(
            client
                .first_manifest_digest(&chart.version)
                .await?
                .is_some(),
        )
    };
    tokio::time::timeout(CHART_LOOKUP, lookup)
        .await
        .map_err(|_| anyhow::anyhow!("no answer in {}s", CHART_LOOKUP.as_secs()))?
}
