//! The apply step shared by `apply` and `up`: choose the image and the cluster, gather the objects
//! (directory, scaffold's output, or generated), fill secrets, server-side apply, wait, find the endpoint.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde::Serialize;
use serde_json::{json, Value};

use super::identity;
use super::push::canonical;
use super::remote;
use super::workload;
use crate::app::{self, App};
use crate::azure::aks;
use crate::azure::arm::Arm;
use crate::azure::choose::{self, Mode};
use crate::bad_input;
use crate::cli::{DeployArgs, DryRun, ExposeKind, GlobalArgs, Via};
use crate::cluster::apply::{self, AppliedObject, ApplyOptions, ObjectAction, Resources};
use crate::cluster::applyset::{self, ApplySet};
use crate::cluster::check;
use crate::cluster::connect::{self, Connection, Remembered, Target};
use crate::cluster::errors::{explain, Action};
use crate::cluster::executor;
use crate::cluster::expose::{self, Exposure};
use crate::cluster::helm;
use crate::cluster::rollout::{self, Rollout};
use crate::cluster::secrets;
use crate::cluster::source::{self, Objects};
use crate::kube::objects;
use crate::oci::reference::ImageRef;
use crate::output::Output;
use crate::state::{AppState, ClusterRef, DeployTarget, State, StateFile};

/// What `apply` reports, and `up` under `"apply"`.
#[derive(Debug, Serialize)]
pub struct DeployReport {
    pub cluster: String,
    pub namespace: String,
    pub image: String,
    pub objects: Vec<AppliedObject>,
    pub rollout: Option<Rollout>,
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// The app, its state and the cluster, as one command sees them.
pub struct AppTarget {
    pub app: App,
    pub name: String,
    pub key: String,
    pub state_file: StateFile,
    pub state: AppState,
    pub conn: Connection,
    /// The AKS cluster, when reached through ARM.
    pub aks: Option<Aks>,
}

/// The app and what the state file remembers (for it, and the chosen cluster).
pub struct AppRecord {
    pub app: App,
    pub name: String,
    pub key: String,
    pub state_file: StateFile,
    pub all: State,
    pub state: AppState,
}

/// An AKS cluster reached through ARM.
pub struct Aks {
    pub arm: Arm,
    pub cluster: ClusterRef,
}

/// How a command reaches the cluster.
pub enum Route {
    /// Through AKS run command: a private cluster, or `--via run-command`.
    RunCommand(AppRecord, Aks),
    /// Straight to the API server.
    Api(AppTarget),
}

/// Loads the app and its state, and picks the route as the flags (else the state) say.
pub async fn route(
    global: &GlobalArgs,
    flags: &crate::cli::TargetArgs,
    via: Via,
    out: &Output,
) -> anyhow::Result<Route> {
    let record = app_record(global, out)?;
    let aks = aks_cluster(global, flags, &record.all).await?;
    match aks {
        Some(aks) if remote::chosen(&aks, via).await? => Ok(Route::RunCommand(record, aks)),
        aks => Ok(Route::Api(connect_app(record, flags, aks).await?)),
    }
}

/// Loads the app and its state, and connects as the flags (else the state) say: a kubeconfig
/// context, or an AKS cluster (`--cluster`, or the one `cluster use` chose) through ARM.
pub async fn target(
    global: &GlobalArgs,
    flags: &crate::cli::TargetArgs,
    out: &Output,
) -> anyhow::Result<AppTarget> {
    let record = app_record(global, out)?;
    let aks = aks_cluster(global, flags, &record.all).await?;
    connect_app(record, flags, aks).await
}

pub fn app_record(global: &GlobalArgs, out: &Output) -> anyhow::Result<AppRecord> {
    let app = app::load(&global.from)?;
    let key = canonical(&app.manifest_path)?;
    let state_file = StateFile::new(global.state_file.as_deref())?;
    let (all, warning) = state_file.load()?;
    if let Some(warning) = warning {
        out.warn(warning);
    }
    let state = all.apps.get(&key).cloned().unwrap_or_default();
    let name = objects::dns_name(&app.name);
    Ok(AppRecord {
        app,
        name,
        key,
        state_file,
        all,
        state,
    })
}

/// The AKS cluster the flags name (or `cluster use` chose, when no kubeconfig flag is given).
pub async fn aks_cluster(
    global: &GlobalArgs,
    flags: &crate::cli::TargetArgs,
    all: &State,
) -> anyhow::Result<Option<Aks>> {
    let use_aks = flags.aks.cluster.is_some()
        || (flags.kubeconfig.is_none() && flags.context.is_none() && all.last_cluster.is_some());
    if !use_aks {
        return Ok(None);
    }
    let arm = Arm::from_env()?;
    let cluster =
        choose::resolve_cluster(&arm, &flags.aks.selector(), all, Mode::detect(global.yes)).await?;
    Ok(Some(Aks { arm, cluster }))
}

/// Connects to the cluster: the kubeconfig context, or the AKS user credentials in memory.
pub async fn connect_app(
    record: AppRecord,
    flags: &crate::cli::TargetArgs,
    aks: Option<Aks>,
) -> anyhow::Result<AppTarget> {
    let state = record.state;
    let remembered = Remembered {
        context: state.last_deploy.as_ref().map(|d| d.context.clone()),
        namespace: state.last_deploy.as_ref().map(|d| d.namespace.clone()),
    };
    let target = Target {
        kubeconfig: flags.kubeconfig.clone(),
        context: flags.context.clone(),
        namespace: flags.namespace.clone(),
    };
    let (conn, aks) = match aks {
        Some(Aks { arm, cluster }) => {
            let kubeconfig = aks::user_kubeconfig(&arm, &cluster).await?;
            let mut conn = connect::connect_with(kubeconfig, &target, &remembered).await?;
            conn.in_memory = true;
            if arm.cluster(&cluster).await?.is_private() {
                conn.unreachable_hint = Some(format!(
                    "{}'s API server is private: run this from its virtual network (or a peered network or VPN); `apply`, `up`, `status` and `delete` reach it from anywhere through AKS run command",
                    cluster.name
                ));
            }
            (conn, Some(Aks { arm, cluster }))
        }
        None => (connect::connect(&target, &remembered).await?, None),
    };
    Ok(AppTarget {
        app: record.app,
        name: record.name,
        key: record.key,
        state_file: record.state_file,
        state,
        conn,
        aks,
    })
}

/// The apply step: everything `apply` does after parsing its flags.
pub async fn deploy(
    global: &GlobalArgs,
    args: &DeployArgs,
    image: Option<ImageRef>,
    out: &Output,
) -> anyhow::Result<DeployReport> {
    workload::check(&args.workload)?;
    let exposure = exposure(args)?;
    let target = match route(global, &args.target, args.via, out).await? {
        Route::RunCommand(record, aks) => {
            return remote::deploy(&record, &aks, args, &exposure, image, out).await
        }
        Route::Api(target) => target,
    };
    let image = choose_image(image, &target.state, out)?;
    let loaded = load_objects(&target.app, &target.state, args, &image)?;
    let namespace = match &loaded {
        Objects::Manifests(objects) => {
            let conn = &target.conn;
            let explicit = conn.namespace_explicit.then_some(conn.namespace.as_str());
            let namespace = namespace_for(explicit, &conn.namespace, objects)?;
            identity::check_federation(target.state.identity.as_ref(), &namespace, objects)?;
            namespace
        }
        Objects::HelmChart(_) => target.conn.namespace.clone(),
    };
    let dry_run = args.dry_run == DryRun::Server;
    let (applied, diff) = match loaded {
        Objects::HelmChart(chart) => {
            let objects = helm::install(
                &target.conn,
                &chart,
                &target.name,
                &namespace,
                &image,
                dry_run,
            )?;
            out.info(format!(
                "installed the chart {} with helm as release {}",
                chart.display(),
                target.name
            ));
            let applied = objects.iter().map(|o| AppliedObject {
                kind: o["kind"].as_str().unwrap_or_default().to_string(),
                name: o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                action: ObjectAction::Configured,
                result: o.clone(),
            });
            (applied.collect(), None)
        }
        Objects::Manifests(objects) => {
            let applied =
                apply_manifests(&target, args, &exposure, &namespace, objects, out).await?;
            (applied.objects, args.diff.then_some(applied.diff))
        }
    };
    if !dry_run {
        remember(
            &target.state_file,
            &target.key,
            &target.conn.context,
            &namespace,
        )?;
    }
    let waiting = !dry_run && !args.no_wait;
    let rollout = if waiting {
        wait_for_workloads(&target.conn, &namespace, &applied, &image, args, out).await?
    } else {
        None
    };
    let endpoint = if waiting {
        expose::wait_for_address(
            &target.conn,
            &namespace,
            &exposure,
            &target.name,
            args.timeout,
        )
        .await?
    } else {
        None
    };
    Ok(DeployReport {
        cluster: target.conn.context.clone(),
        namespace,
        image: image.to_string(),
        objects: applied,
        rollout,
        endpoint,
        diff,
        dry_run,
    })
}

pub fn exposure(args: &DeployArgs) -> anyhow::Result<Exposure> {
    match (args.expose, &args.host) {
        (ExposeKind::Ingress, Some(host)) => Ok(Exposure::Ingress { host: host.clone() }),
        (ExposeKind::Ingress, None) => Err(bad_input!(
            "--expose ingress needs --host <HOST>, the name the app answers on (e.g. --host hello.example.com)"
        )),
        (_, Some(_)) => Err(bad_input!("--host is only used with --expose ingress")),
        (ExposeKind::Loadbalancer, None) => Ok(Exposure::LoadBalancer),
        (ExposeKind::None, None) => Ok(Exposure::None),
    }
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
    app: &App,
    state: &AppState,
    args: &DeployArgs,
    image: &ImageRef,
) -> anyhow::Result<Objects> {
    let dir = objects_dir(app, args);
    let stores_given = !args.workload.kv_stores.is_empty() || !args.workload.sqlite.is_empty();
    let built = match (&dir, stores_given) {
        (Some(_), false) => None,
        _ => {
            let kind = args.workload.kind.unwrap_or_default();
            let options = workload::options(&args.workload, app, state, kind, image.clone(), None)?;
            workload::require_tokens(&options)?;
            Some(objects::build(app, &options))
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
fn objects_dir(app: &App, args: &DeployArgs) -> Option<std::path::PathBuf> {
    args.dir
        .clone()
        .or_else(|| source::scaffolded_dir(&app.dir))
}

/// The namespace a deploy will use on a cluster whose credentials name none (AKS through ARM),
/// known before connecting: `-n`, else the one the directory's objects name, else this app's
/// last namespace on `context`, else `default`.
pub fn planned_namespace(
    app: &App,
    state: &AppState,
    args: &DeployArgs,
    context: &str,
) -> anyhow::Result<String> {
    let dir = objects_dir(app, args);
    let explicit = args.target.namespace.as_deref();
    namespace_before_connecting(explicit, dir.as_deref(), state, context)
}

fn namespace_before_connecting(
    explicit: Option<&str>,
    dir: Option<&std::path::Path>,
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

async fn apply_manifests(
    target: &AppTarget,
    args: &DeployArgs,
    exposure: &Exposure,
    namespace: &str,
    mut objects: Vec<Value>,
    out: &Output,
) -> anyhow::Result<apply::Applied> {
    let conn = &target.conn;
    let selector = expose::pod_selector(&objects, &target.name);
    objects.extend(expose::objects(exposure, &target.name, &selector));
    let resources = Resources::discover(conn).await?;
    check::preflight(conn, &resources, &objects).await?;
    apply::use_served_spinapp_group(&mut objects, &resources)?;
    let set = ApplySet::for_app(&target.name, namespace);
    let secrets = secret_objects(conn, &set, &objects, args).await?;
    let objects: Vec<Value> = secrets.into_iter().chain(objects).collect();
    let options = ApplyOptions {
        dry_run: args.dry_run == DryRun::Server,
        force_conflicts: args.force_conflicts,
        diff: args.diff,
        prune: args.prune,
    };
    if apply::ensure_namespace(conn, namespace, options.dry_run).await? {
        if options.dry_run {
            anyhow::bail!(
                "namespace {namespace} does not exist, so the server cannot dry-run objects into it; a real apply creates it"
            );
        }
        out.info(format!("created namespace {namespace}"));
    }
    for name in executor::ensure(conn, &resources, namespace, &objects, options.dry_run).await? {
        out.info(format!(
            "created SpinAppExecutor {name} in namespace {namespace}: SpinKube runs SpinApps through it"
        ));
    }
    let applied = apply::apply(conn, &resources, &set, objects, &options).await?;
    Ok(applied)
}

/// The Secrets the workload reads variables from and the objects do not provide: given values merged
/// over the live ones, for Secrets that get values now or that this app applied before.
async fn secret_objects(
    conn: &Connection,
    set: &ApplySet,
    objects: &[Value],
    args: &DeployArgs,
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
        let found = api
            .get_opt(&name)
            .await
            .map_err(|e| explain(e, conn, Action::new("get", "secrets", Some(&set.namespace))))?;
        live.insert(name, found);
    }
    let live_keys = |name: &str| -> BTreeSet<String> {
        live.get(name)
            .and_then(|s| s.as_ref())
            .and_then(|s| s.data.as_ref())
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default()
    };
    let given = secrets::plan(&refs, &args.secrets, &live_keys)?;
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

/// Remembers where the app was applied, so `up` with no flags repeats it.
pub fn remember(
    state_file: &StateFile,
    key: &str,
    context: &str,
    namespace: &str,
) -> anyhow::Result<()> {
    state_file.update(|state| {
        state.apps.entry(key.to_string()).or_default().last_deploy = Some(DeployTarget {
            context: context.to_string(),
            namespace: namespace.to_string(),
        });
    })?;
    Ok(())
}

/// Waits for every SpinApp's and Deployment's rollout; the summed report.
async fn wait_for_workloads(
    conn: &Connection,
    namespace: &str,
    applied: &[AppliedObject],
    image: &ImageRef,
    args: &DeployArgs,
    out: &Output,
) -> anyhow::Result<Option<Rollout>> {
    let image = image.to_string();
    let mut total: Option<Rollout> = None;
    for workload in applied
        .iter()
        .filter(|o| o.kind == "SpinApp" || o.kind == "Deployment")
    {
        let progress = |reason: &str| out.info(format!("waiting for {}: {reason}", workload.name));
        let done = rollout::wait(
            conn,
            namespace,
            &workload.name,
            Some(&image),
            args.timeout,
            &progress,
        )
        .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
