//! What `up` adds to a deploy: its settings, and SpinKube installed (`--install-spinkube`, or
//! agreed on a terminal) when the cluster cannot run the app, then the deploy run again.

use crate::cluster::check::NotReady;
use crate::context::target::Target;
use crate::context::AppContext;
use crate::deploy::artifact::PublishSettings;
use crate::deploy::{self, DeployReport, Settings};
use crate::oci::reference::ImageRef;
use crate::output::Output;
use crate::prompt;
use crate::push::PushSettings;
use crate::verify::DeployVerify;

use super::InstallSettings;

/// The `up` flags, validated (made by `cli`: `UpArgs::settings`).
#[derive(Debug)]
pub struct UpSettings {
    pub push: PushSettings,
    pub deploy: Settings,
    /// The install run on a cluster that cannot run SpinApps.
    pub spinkube: InstallSettings,
    pub verify: DeployVerify,
    /// The deploy artifact, with `--publish` or `--fleet`.
    pub publish: Option<PublishSettings>,
    /// Publish and wait for the fleet instead of applying.
    pub fleet: bool,
    /// Install SpinKube without asking when the cluster cannot run SpinApps.
    pub install_spinkube: bool,
}

/// What `up` says when the cluster cannot run the app and SpinKube was not installed for it.
const NOT_INSTALLED_FIX: &str = "to install SpinKube and continue, run `spin-aks up --install-spinkube` (or `spin-aks cluster install`, then `spin-aks up` again)";

/// Deploys `image` to `target`; when the cluster cannot run SpinApps and the install is agreed,
/// installs SpinKube and deploys again (the target resolved afresh each time).
pub async fn deploy_installing(
    ctx: &mut AppContext,
    target: Target,
    up: &UpSettings,
    image: ImageRef,
    yes: bool,
    out: &Output,
) -> anyhow::Result<DeployReport> {
    let settings = &up.deploy;
    let deployed = deploy::deploy(ctx, target, settings, Some(image.clone()), out).await;
    match deployed {
        Err(e) if e.is::<NotReady>() && !install_agreed(up.install_spinkube, yes, &e)? => {
            Err(anyhow::anyhow!("{e}\n{NOT_INSTALLED_FIX}"))
        }
        Err(e) if e.is::<NotReady>() => {
            let target = Target::resolve(&settings.target, ctx.store.state(), yes).await?;
            let aks = match target.aks() {
                Some(aks) => Some(super::aks::prepare(aks, false, out).await?),
                None => None,
            };
            let cluster = target.connect(ctx.remembered()).await?;
            super::install(&cluster.conn, &up.spinkube, aks.is_some(), out).await?;
            let target = Target::resolve(&settings.target, ctx.store.state(), yes).await?;
            deploy::deploy(ctx, target, settings, Some(image), out).await
        }
        deployed => deployed,
    }
}

/// Whether to install SpinKube on a cluster that cannot run the app: `--install-spinkube`, else
/// asked on a terminal (never under `-y`).
fn install_agreed(install_spinkube: bool, yes: bool, why: &anyhow::Error) -> anyhow::Result<bool> {
    if install_spinkube {
        return Ok(true);
    }
    if yes || !prompt::on_terminal() {
        return Ok(false);
    }
    crate::output::eprint_line(&why.to_string());
    prompt::confirm("Install SpinKube on this cluster now (spin-aks cluster install)?")
}
