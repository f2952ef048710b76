//! The deploy step, as ko's resolve: plan (image, objects, namespace), apply through the route the
//! cluster needs, remember, wait for the rollout and the endpoint. `status` and `delete` ride the same routes.

mod api;
pub mod artifact;
pub mod plan;
pub mod route;
mod run_command;
mod settings;
pub mod workload;

use serde::Serialize;

pub use self::api::secret_objects;
use self::api::ApiServer;
use self::plan::DeployPlan;
use self::route::{Deleted, Route, RouteFeature, Waited};
use self::run_command::RunCommand;
pub use self::settings::Settings;
use crate::cluster::apply::{AppliedObject, ObjectAction};
use crate::cluster::expose::Exposure;
use crate::cluster::rollout::Rollout;
use crate::cluster::status::AppStatus;
use crate::context::target::Target;
use crate::context::AppContext;
use crate::manifests::source::Objects;
use crate::oci::reference::ImageRef;
use crate::output::Output;

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

/// Plans, applies, remembers where, waits: everything `apply` does after parsing its flags.
pub async fn deploy(
    ctx: &mut AppContext,
    target: Target,
    settings: &Settings,
    image: Option<ImageRef>,
    out: &Output,
) -> anyhow::Result<DeployReport> {
    let backend = open(target, ctx).await?;
    let asked = [
        (settings.dry_run, RouteFeature::ServerDryRun),
        (settings.diff, RouteFeature::Diff),
        (settings.exposure != Exposure::None, RouteFeature::Expose),
    ];
    for (_, feature) in asked.iter().filter(|(given, _)| *given) {
        backend.supports(*feature)?;
    }
    let image = plan::choose_image(image, ctx.remembered(), out)?;
    let objects = plan::load_objects(ctx, settings, &image)?;
    let namespace = match &objects {
        Objects::Manifests(objects) => {
            let explicit = settings.target.namespace.as_deref();
            let namespace = plan::namespace_for(explicit, backend.default_namespace(), objects)?;
            plan::check_federation(ctx.remembered().identity.as_ref(), &namespace, objects)?;
            namespace
        }
        Objects::HelmChart(_) => {
            backend.supports(RouteFeature::HelmChart)?;
            backend.default_namespace().to_string()
        }
    };
    let name = ctx.name.clone();
    let plan = DeployPlan {
        name: &name,
        namespace,
        image,
        objects,
        settings,
    };
    let applied = backend.apply(&plan, out).await?;
    if !settings.dry_run {
        ctx.remember_deploy(backend.cluster(), &plan.namespace, out)?;
    }
    let waited = if !settings.dry_run && settings.wait {
        backend.wait(&plan, &applied, out).await?
    } else {
        Waited::default()
    };
    Ok(DeployReport {
        cluster: backend.cluster().to_string(),
        namespace: plan.namespace,
        image: plan.image.to_string(),
        objects: applied.objects,
        rollout: waited.rollout,
        endpoint: waited.endpoint,
        diff: applied.diff,
        dry_run: settings.dry_run,
    })
}

/// What runs for the app on the target: `-n`, else the app's namespace there.
pub async fn status(ctx: &AppContext, target: Target, out: &Output) -> anyhow::Result<AppStatus> {
    let namespace = target.namespace_flag().map(str::to_string);
    let backend = open(target, ctx).await?;
    let namespace = namespace.unwrap_or_else(|| backend.default_namespace().to_string());
    backend.status(&namespace, &ctx.name, out).await
}

/// What `delete` reports.
#[derive(Debug, Serialize)]
pub struct DeleteReport {
    pub cluster: String,
    pub namespace: String,
    pub deleted: Vec<Deleted>,
}

/// Deletes the members of the app's ApplySet on the target, and its parent.
pub async fn delete(
    ctx: &AppContext,
    target: Target,
    dry_run: bool,
    out: &Output,
) -> anyhow::Result<DeleteReport> {
    let namespace = target.namespace_flag().map(str::to_string);
    let backend = open(target, ctx).await?;
    let namespace = namespace.unwrap_or_else(|| backend.default_namespace().to_string());
    let deleted = backend.delete(&namespace, &ctx.name, dry_run, out).await?;
    Ok(DeleteReport {
        cluster: backend.cluster().to_string(),
        namespace,
        deleted,
    })
}

impl DeployReport {
    /// The human summary: one line per object, the rollout, the endpoint or how to reach the app.
    pub fn summary(&self, from: &str) -> String {
        let dry = if self.dry_run {
            " (server dry run)"
        } else {
            ""
        };
        let mut lines: Vec<String> = self
            .objects
            .iter()
            .map(|o| {
                format!(
                    "{}/{} {}{dry}",
                    o.kind.to_ascii_lowercase(),
                    o.name,
                    action_word(o.action)
                )
            })
            .collect();
        if let Some(rollout) = &self.rollout {
            lines.push(format!(
                "rolled out {} in namespace {} of {}: {}/{} ready after {:.1}s",
                self.image,
                self.namespace,
                self.cluster,
                rollout.ready,
                rollout.desired,
                rollout.seconds
            ));
        }
        match &self.endpoint {
            Some(endpoint) => lines.push(format!("the app answers on {endpoint}")),
            None if !self.dry_run => lines.push(format!(
                "reach the app with: spin-aks port-forward -f {from} -n {}",
                self.namespace
            )),
            None => {}
        }
        lines.join("\n")
    }
}

impl DeleteReport {
    /// The human summary: one line per deleted object, or that nothing of `app` was there.
    pub fn summary(&self, app: &str) -> String {
        if self.deleted.is_empty() {
            return format!(
                "nothing of {app} was applied in namespace {} of {}",
                self.namespace, self.cluster
            );
        }
        self.deleted
            .iter()
            .map(|d| format!("{}/{} deleted", d.kind.to_ascii_lowercase(), d.name))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The route `target` needs: AKS run command when asked for or when its API server is private,
/// else the API server.
async fn open(mut target: Target, ctx: &AppContext) -> anyhow::Result<Box<dyn Route>> {
    if let Some(aks) = target.take_run_command().await? {
        return Ok(Box::new(RunCommand::new(aks, ctx.remembered())));
    }
    Ok(Box::new(ApiServer::new(
        target.connect(ctx.remembered()).await?,
    )))
}

fn action_word(action: ObjectAction) -> &'static str {
    match action {
        ObjectAction::Created => "created",
        ObjectAction::Configured => "configured",
        ObjectAction::Unchanged => "unchanged",
        ObjectAction::Pruned => "pruned",
    }
}
