//! Fleet delivery: clusters that follow the app's deploy artifact through their own Flux (added,
//! removed, remembered per app), their status read in parallel, and waiting until they converge.

pub mod flux;
pub mod mirror;
pub mod promote;
pub mod status;
pub mod up;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use crate::azure::aks;
use crate::azure::arm::Arm;
use crate::azure::names::AksReference;
use crate::azure::ClusterRef;
use crate::bad_input;
use crate::cluster::apply::{self, AppliedObject, ApplyOptions, ServedApis};
use crate::cluster::applyset::ApplySet;
use crate::cluster::connect::{self, Connection, Remembered};
use crate::cluster::executor;
use crate::context::choose::{self, ClusterSelector, Mode};
use crate::context::AppContext;
use crate::deploy::artifact::artifact_objects;
use crate::deploy::{self, Settings};
use crate::install::mirror::Mirror;
use crate::manifests::secrets::SecretArg;
use crate::oci::reference::ImageRef;
use crate::output::Output;
use crate::state::{FleetMember, PublishedTag};
use crate::verify::{self, DeployVerify};

/// The `fleet add` flags, validated (made by `cli`).
#[derive(Debug)]
pub struct AddSettings {
    pub clusters: Vec<String>,
    pub kubeconfig: Option<PathBuf>,
    pub namespace: String,
    pub env: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub insecure: bool,
    pub secrets: Vec<SecretArg>,
    /// What shapes the objects (the same flags `publish` took): for the Secrets they read.
    pub objects: Settings,
    /// `--verify` with its trust, `--no-verify`, or neither (what the app remembers, as `up`).
    pub verify: DeployVerify,
    /// Where Flux's source- and kustomize-controller come from on a member without them.
    pub mirror: Option<Mirror>,
}

/// What `fleet add` and `fleet remove` did on one cluster.
#[derive(Debug, Serialize)]
pub struct Changed {
    pub cluster: String,
    pub namespace: String,
    pub env: String,
    /// `kind/name action`, e.g. `OCIRepository/hello created`.
    pub objects: Vec<String>,
    /// The Secret holding the Notation trust policy and certificates the cluster's OCIRepository
    /// verifies the artifact with (`fleet add --verify`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<String>,
}

/// Makes each cluster follow the `env` tag of the app's deploy artifact and remembers it.
pub async fn add(
    ctx: &mut AppContext,
    settings: &AddSettings,
    out: &Output,
) -> anyhow::Result<Vec<Changed>> {
    // Every cluster named is checked (an AKS reference's shape, a context in the kubeconfig, its
    // client built) and the trust read before anything is applied to any of them.
    let verifying = match settings.verify.verify {
        Some(verify) => verify,
        None => ctx.remembered().verify.is_some(),
    };
    if verifying {
        refuse_verify_on_aks(&settings.clusters, settings.verify.verify.is_none())?;
    }
    let policy = verify::deploy_policy(ctx, &settings.verify, out)?;
    let mut contexts = Vec::new();
    for cluster in &settings.clusters {
        if aks_selector(cluster)?.is_none() {
            contexts.push(cluster.as_str());
        }
    }
    // What the clusters are to follow is in the state file: checked before any cluster is reached.
    let (repository, published) = published(ctx, &settings.env)?;
    connect::require_contexts(settings.kubeconfig.clone(), &contexts)?;
    let mut connections = std::collections::BTreeMap::new();
    for context in contexts {
        let conn = connect(settings.kubeconfig.clone(), context, &settings.namespace).await?;
        connections.insert(context, conn);
    }
    let image = ImageRef::parse(&published.image)?;
    let (objects, store_secrets) = artifact_objects(ctx, &settings.objects, &image)?;
    let name = ctx.name.clone();
    let follow = flux::Follow {
        name: &name,
        namespace: &settings.namespace,
        repository: &repository,
        env: &settings.env,
        interval: settings.interval,
        timeout: settings.timeout,
        insecure: settings.insecure,
        verify: policy.is_some(),
    };
    let trust = policy.map(|policy| flux::trust_secret(&follow, &policy));
    let mut changed = Vec::new();
    for cluster in &settings.clusters {
        let aks = match aks_selector(cluster)? {
            Some(selector) => Some(aks_cluster(ctx, &selector, out).await?),
            None => None,
        };
        if aks.is_some() && settings.mirror.is_some() {
            out.warn(format!(
                "--mirror does not apply to {cluster}: on AKS the microsoft.flux cluster extension installs Flux"
            ));
        }
        let mirror = settings.mirror.as_ref().filter(|_| aks.is_none());
        let conn = match (&aks, connections.remove(cluster.as_str())) {
            (Some((arm, aks)), _) => aks_connect(arm, aks, &settings.namespace).await?,
            (None, Some(conn)) => conn,
            (None, None) => {
                connect(settings.kubeconfig.clone(), cluster, &settings.namespace).await?
            }
        };
        let secrets = (settings.secrets.as_slice(), store_secrets.as_slice());
        let applied = match &aks {
            None => {
                let flux = Some(trust.as_ref());
                follow_on(&conn, &follow, &objects, secrets, flux, mirror, out).await?
            }
            Some((arm, aks)) => {
                let mut applied =
                    follow_on(&conn, &follow, &objects, secrets, None, None, out).await?;
                (arm.put_flux_configuration(aks, &name, &flux::configuration(&follow)))
                    .await
                    .map_err(|err| {
                        let step = format!("writing the Flux configuration {name} on {}", aks.name);
                        crate::azure::arm::failed_step(err, &step)
                    })?;
                applied.push(format!("fluxconfiguration/{name} configured"));
                applied
            }
        };
        let verified = match follow.verify {
            true => ", verifying its Notation signature",
            false => "",
        };
        out.info(format!(
            "{cluster}: follows {repository}:{} in namespace {}{verified}",
            settings.env, settings.namespace
        ));
        changed.push(Changed {
            cluster: cluster.clone(),
            namespace: settings.namespace.clone(),
            env: settings.env.clone(),
            objects: applied,
            verify: follow.verify.then(|| flux::trust_secret_name(&name)),
        });
        let member = FleetMember {
            cluster: cluster.clone(),
            aks: aks.map(|(_, aks)| aks),
            namespace: settings.namespace.clone(),
            env: settings.env.clone(),
        };
        ctx.remember(out, |app| {
            app.fleet.retain(|m| m.cluster != member.cluster);
            app.fleet.push(member);
        })?;
    }
    Ok(changed)
}

/// Refuses `--verify` (given, or remembered for the app) for AKS members: the Flux extension's
/// configuration verifies with cosign keys only. ARM's `ociRepository.verify` (`provider`,
/// `verificationConfig`: "trusted public keys of trusted authors", `matchOidcIdentity`) has no
/// place for a Notation trust policy, and the extension documents the cosign provider alone.
fn refuse_verify_on_aks(clusters: &[String], remembered: bool) -> anyhow::Result<()> {
    for cluster in clusters {
        if aks_selector(cluster)?.is_some() {
            let asked = match remembered {
                true => {
                    "this app verifies what it deploys (remembered from an earlier --verify), and "
                }
                false => "--verify: ",
            };
            return Err(bad_input!(
                "{asked}{cluster} cannot verify the deploy artifact's Notation signature: the AKS Flux extension's configuration (ARM fluxConfigurations, ociRepository.verify) takes cosign public keys only, not a Notation trust policy and certificates; add the cluster as a kubeconfig context running upstream Flux (`flux install`) to verify there, or add it with --no-verify (which also stops `up` verifying this app)"
            ));
        }
    }
    Ok(())
}

/// The deploy artifact's repository and what `env` points at, from the state file.
fn published(ctx: &AppContext, env: &str) -> anyhow::Result<(String, PublishedTag)> {
    let artifact = ctx.remembered().deploy_artifact.as_ref();
    let tag = artifact.and_then(|a| a.tags.get(env).map(|t| (a.repository.clone(), t.clone())));
    tag.ok_or_else(|| {
        bad_input!(
            "{} has no deploy artifact tagged `{env}`: publish it first (`spin-aks publish --env {env}`, or `spin-aks push --publish --env {env}`)",
            ctx.app.manifest_path.display()
        )
    })
}

/// The namespace, the executor, the Secrets (variables given now, store credentials) and
/// (`flux`: when no AKS extension makes them from a Flux configuration) the two Flux objects
/// with the trust Secret the OCIRepository verifies with, if any, applied; Flux's controllers
/// first from `flux_mirror` where the cluster lacks them.
async fn follow_on(
    conn: &Connection,
    follow: &flux::Follow<'_>,
    objects: &[Value],
    (secrets, store_secrets): (&[SecretArg], &[Value]),
    flux: Option<Option<&Value>>,
    flux_mirror: Option<&Mirror>,
    out: &Output,
) -> anyhow::Result<Vec<String>> {
    let mut resources = ServedApis::discover(conn).await?;
    let mut installed = Vec::new();
    match flux_mirror {
        Some(from) if mirror::served(&resources) != (true, true) => {
            installed = mirror::install_flux(conn, &resources, from, out).await?;
            // The Flux kinds are served now.
            resources = ServedApis::discover(conn).await?;
        }
        _ => require_flux(conn, &resources)?,
    }
    let namespace = follow.namespace;
    if apply::ensure_namespace(conn, namespace, false).await? {
        out.info(format!("{}: created namespace {namespace}", conn.context));
    }
    executor::ensure(conn, &resources, namespace, objects, false).await?;
    let set = fleet_set(follow.name, namespace);
    let mut applied = deploy::secret_objects(conn, &set, objects, secrets).await?;
    applied.extend(store_secrets.iter().cloned());
    if let Some(trust) = flux {
        applied.extend(trust.cloned());
        applied.push(flux::source(follow));
        applied.push(flux::kustomization(follow));
    } else if applied.is_empty() {
        return Ok(installed);
    }
    let options = ApplyOptions::default();
    let done = apply::apply(conn, &resources, &set, applied, &options).await?;
    installed.extend(described(&done.objects));
    Ok(installed)
}

/// `kind/name action` of each object applied, e.g. `ocirepository/hello created`.
fn described(objects: &[AppliedObject]) -> Vec<String> {
    (objects.iter())
        .map(|o| format!("{}/{} {:?}", o.kind, o.name, o.action).to_lowercase())
        .collect()
}

/// The ApplySet of what `fleet add` applies (Flux's two objects, the variables Secret), apart
/// from the app's own set: the app's objects belong to Flux's Kustomization.
fn fleet_set(app: &str, namespace: &str) -> ApplySet {
    ApplySet::for_app(&format!("{app}-fleet"), namespace)
}

/// Refuses a cluster without Flux's OCIRepository and Kustomization APIs.
fn require_flux(conn: &Connection, resources: &ServedApis) -> anyhow::Result<()> {
    let (source, kustomize) = mirror::served(resources);
    if source && kustomize {
        return Ok(());
    }
    Err(bad_input!(
        "{} has no Flux {}; install Flux (`flux install`, or on AKS the microsoft.flux extension), or add it with --mirror REGISTRY (a mirror `spin-aks bundle push` filled) to install the missing controllers from there, then add it again",
        conn.context,
        mirror::missing_kinds(source, kustomize)
    ))
}

/// The `fleet remove` flags, validated.
#[derive(Debug)]
pub struct RemoveSettings {
    pub clusters: Vec<String>,
    pub kubeconfig: Option<PathBuf>,
    /// Let Flux delete the app's objects too (else they stay, no longer managed).
    pub delete_app: bool,
}

/// Stops each cluster following the artifact: the Kustomization told not to prune (unless the
/// app goes too), then it and the OCIRepository deleted; forgotten in the state file.
pub async fn remove(
    ctx: &mut AppContext,
    settings: &RemoveSettings,
    out: &Output,
) -> anyhow::Result<Vec<Changed>> {
    // Every cluster named must be in the fleet before any of them is changed.
    let fleet = &ctx.remembered().fleet;
    let mut members = Vec::new();
    for cluster in &settings.clusters {
        let Some(member) = fleet.iter().find(|m| &m.cluster == cluster).cloned() else {
            let known: Vec<&str> = fleet.iter().map(|m| m.cluster.as_str()).collect();
            return Err(bad_input!(
                "{cluster} is not in the fleet of {} (its clusters: {})",
                ctx.app.manifest_path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        };
        members.push(member);
    }
    let mut changed = Vec::new();
    for member in members {
        let cluster = &member.cluster;
        let conn = member_connection(&member, settings.kubeconfig.clone()).await?;
        if let Some(aks) = &member.aks {
            stop_configuration(aks, &ctx.name, settings.delete_app).await?;
        }
        let objects = unfollow(&conn, &ctx.name, &member, settings.delete_app).await?;
        out.info(format!(
            "{cluster}: no longer follows the deploy artifact{}",
            if settings.delete_app {
                "; Flux deletes the app's objects"
            } else {
                "; the app keeps running"
            }
        ));
        ctx.remember(out, |app| app.fleet.retain(|m| m.cluster != member.cluster))?;
        changed.push(Changed {
            cluster: cluster.clone(),
            namespace: member.namespace.clone(),
            env: member.env.clone(),
            objects,
            verify: None,
        });
    }
    Ok(changed)
}

/// Deletes the AKS Flux configuration (the extension deletes its objects), after telling its
/// kustomization not to prune unless the app goes too.
async fn stop_configuration(aks: &ClusterRef, name: &str, delete_app: bool) -> anyhow::Result<()> {
    let arm = Arm::from_env()?;
    if let Some(mut configuration) = arm.flux_configuration(aks, name).await? {
        let properties = &mut configuration["properties"];
        let prune = &mut properties["kustomizations"][flux::AKS_KUSTOMIZATION]["prune"];
        if *prune != delete_app {
            *prune = json!(delete_app);
            let writable = writable_configuration(properties);
            arm.put_flux_configuration(aks, name, &writable).await?;
        }
    }
    arm.delete_flux_configuration(aks, name).await
}

/// A Flux configuration's properties without those ARM reports but refuses in a write.
fn writable_configuration(properties: &Value) -> Value {
    let mut properties = properties.clone();
    if let Some(map) = properties.as_object_mut() {
        map.retain(|k, _| {
            [
                "scope",
                "namespace",
                "sourceKind",
                "suspend",
                "ociRepository",
                "kustomizations",
            ]
            .contains(&k.as_str())
        });
    }
    properties
}

async fn unfollow(
    conn: &Connection,
    name: &str,
    member: &FleetMember,
    delete_app: bool,
) -> anyhow::Result<Vec<String>> {
    let namespace = member.namespace.as_str();
    let resources = ServedApis::discover(conn).await?;
    let mut deleted = Vec::new();
    let through_arm = member.aks.is_some();
    let kustomization_kind = resources.resolve(flux::KUSTOMIZE_API, "Kustomization").ok();
    if let Some((kustomization, _)) = kustomization_kind.filter(|_| !through_arm) {
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::namespaced_with(conn.client.clone(), namespace, &kustomization);
        // Flux's finalizer prunes by the spec it finds at deletion (its watch sees this patch
        // first): say no first.
        let patch = json!({"spec": {"prune": delete_app}});
        let params = kube::api::PatchParams::default();
        match api
            .patch(name, &params, &kube::api::Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if crate::cluster::errors::is_status(&e, 404) => {}
            Err(e) => {
                let action = crate::cluster::errors::ApiCall::new(
                    "patch",
                    "kustomizations",
                    Some(namespace),
                );
                return Err(crate::cluster::errors::explain(e, conn, action));
            }
        }
        apply::delete(conn, &kustomization, true, namespace, name, false).await?;
        deleted.push(format!("kustomization/{name} deleted"));
    }
    if through_arm {
        deleted.push(format!("fluxconfiguration/{name} deleted"));
    } else if let Ok((source, _)) = resources.resolve(flux::SOURCE_API, "OCIRepository") {
        apply::delete(conn, &source, true, namespace, name, false).await?;
        deleted.push(format!("ocirepository/{name} deleted"));
    }
    if delete_app {
        let set = fleet_set(name, namespace);
        let (secret, _) = resources.resolve("v1", "Secret")?;
        let kinds = apply::parent_group_kinds(conn, &set).await?;
        for (resource, namespaced, object) in apply::members(conn, &resources, &set, &kinds).await?
        {
            if resource.kind == "Secret" {
                let member = object["metadata"]["name"].as_str().unwrap_or_default();
                apply::delete(conn, &resource, namespaced, namespace, member, false).await?;
                deleted.push(format!("secret/{member} deleted"));
            }
        }
        apply::delete(conn, &secret, true, namespace, &set.parent_name, false).await?;
    }
    Ok(deleted)
}

/// `aks:[<subscription>/]<resource group>/<name>` as a cluster selector (every part checked
/// against Azure's naming rules); `None` for a context.
fn aks_selector(cluster: &str) -> anyhow::Result<Option<ClusterSelector>> {
    Ok(AksReference::parse(cluster)?.map(|aks| ClusterSelector {
        subscription: aks.subscription,
        resource_group: Some(aks.resource_group),
        cluster: Some(aks.name),
    }))
}

/// The AKS cluster `selector` names, with the Flux extension enabled on it (it installs the
/// controllers and turns Flux configurations into their objects).
async fn aks_cluster(
    ctx: &AppContext,
    selector: &ClusterSelector,
    out: &Output,
) -> anyhow::Result<(Arm, ClusterRef)> {
    let arm = Arm::from_env()?;
    let cluster =
        choose::resolve_cluster(&arm, selector, ctx.store.state(), Mode::Defaults).await?;
    let installed = (arm.flux_extension_succeeded(&cluster, |line| out.info(line))).await?;
    if !installed {
        out.info(format!(
            "enabling the Flux cluster extension on {} (a few minutes)",
            cluster.name
        ));
        (arm.put_flux_extension(&cluster)).await.map_err(|err| {
            let step = format!("enabling the Flux cluster extension on {}", cluster.name);
            crate::azure::arm::failed_step(err, &step)
        })?;
    }
    Ok((arm, cluster))
}

/// The AKS cluster's API server with the user credentials ARM hands out, in memory.
async fn aks_connect(
    arm: &Arm,
    cluster: &ClusterRef,
    namespace: &str,
) -> anyhow::Result<Connection> {
    let kubeconfig = aks::user_kubeconfig(arm, cluster).await?;
    let target = connect::KubeconfigChoice {
        namespace: Some(namespace.to_string()),
        ..connect::KubeconfigChoice::default()
    };
    let mut conn = connect::connect_with(kubeconfig, &target, &Remembered::default()).await?;
    conn.in_memory = true;
    Ok(conn)
}

/// A connection to a member: its kubeconfig context, or its AKS cluster through ARM.
pub async fn member_connection(
    member: &FleetMember,
    kubeconfig: Option<PathBuf>,
) -> anyhow::Result<Connection> {
    match &member.aks {
        Some(cluster) => aks_connect(&Arm::from_env()?, cluster, &member.namespace).await,
        None => connect(kubeconfig, &member.cluster, &member.namespace).await,
    }
}

/// A connection to kubeconfig context `cluster`, namespace `namespace`.
pub async fn connect(
    kubeconfig: Option<PathBuf>,
    cluster: &str,
    namespace: &str,
) -> anyhow::Result<Connection> {
    let target = connect::KubeconfigChoice {
        kubeconfig,
        context: Some(cluster.to_string()),
        namespace: Some(namespace.to_string()),
    };
    connect::connect(&target, &Remembered::default()).await
}
