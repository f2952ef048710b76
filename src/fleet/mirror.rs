//! Installs Flux's source- and kustomize-controller on a fleet member that lacks them (`fleet add
//! --mirror`), from a mirror that `bundle push` filled, with the images pinned by their digests.

use std::time::Duration;

use crate::bad_input;
use crate::cluster::apply::ServedApis;
use crate::cluster::connect::Connection;
use crate::install::crds::ModuleSource;
use crate::install::flux as installed;
use crate::install::mirror::Mirror;
use crate::install::releases::{FluxControllers, Module};
use crate::output::Output;

use super::flux::{KUSTOMIZE_API, SOURCE_API};

/// How long the controllers may take to run.
const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// Whether the cluster serves the Flux APIs a fleet member follows its artifact with.
pub fn served(resources: &ServedApis) -> (bool, bool) {
    let served = |api: &str, kind: &str| resources.resolve(api, kind).is_ok();
    (
        served(SOURCE_API, "OCIRepository"),
        served(KUSTOMIZE_API, "Kustomization"),
    )
}

/// Installs from `mirror` what of source- and kustomize-controller the cluster lacks (their CRDs,
/// RBAC, ServiceAccounts and Deployments, in the Flux ApplySet `cluster install` keeps, with the
/// controllers that set already runs), and waits until they run; `kind/name action` of each
/// object. A Flux spin-aks did not install is left alone: refused, naming what it lacks.
pub async fn install_flux(
    conn: &Connection,
    resources: &ServedApis,
    mirror: &Mirror,
    out: &Output,
) -> anyhow::Result<Vec<String>> {
    let flux = FluxControllers::pinned();
    let (source, kustomize) = served(resources);
    let ours = installed::installed_by_spin_aks(conn).await;
    let other_flux = [
        "OCIRepository.source.toolkit.fluxcd.io",
        "GitRepository.source.toolkit.fluxcd.io",
        "HelmRepository.source.toolkit.fluxcd.io",
        "Kustomization.kustomize.toolkit.fluxcd.io",
        "HelmRelease.helm.toolkit.fluxcd.io",
    ]
    .iter()
    .any(|group_kind| resources.resolve_group_kind(group_kind).is_some());
    if !ours && other_flux {
        return Err(bad_input!(
            "{} runs a Flux spin-aks did not install, without {}: --mirror installs Flux only where there is none (or where spin-aks installed it); add the missing controller to that Flux (`flux install` includes both, `--registry` names a mirror), then add the cluster again",
            conn.context,
            missing_kinds(source, kustomize)
        ));
    }
    let mut wanted: Vec<&Module> = Vec::new();
    if !source {
        wanted.push(&flux.source_controller);
    }
    if !kustomize {
        wanted.push(&flux.kustomize_controller);
    }
    let controllers = installed::with_running(conn, flux, &wanted).await?;
    let names: Vec<&str> = controllers.iter().map(|m| m.name()).collect();
    out.info(format!(
        "{}: installing Flux's {} from the mirror {}",
        conn.context,
        names.join(", "),
        mirror.registry
    ));
    let http = crate::registry::client::http_client(&Default::default())?;
    let resolved = mirror.resolve_flux(&controllers, &http).await?;
    let image = |module: &Module| {
        (resolved.pinned_controller(module))
            .unwrap_or_else(|| installed::image_in(&mirror.repository("ghcr.io/fluxcd"), module))
    };
    let objects =
        installed::plan(&http, ModuleSource::Mirror(mirror), &controllers, &image).await?;
    let hint = format!(
        "the nodes pull their images from the mirror {}: it must be reachable from them",
        mirror.registry
    );
    let (applied, _) =
        installed::install(conn, resources, objects, READY_TIMEOUT, &hint, out).await?;
    Ok(super::described(&applied))
}

/// What of the fleet's Flux APIs the cluster does not serve, in words.
pub fn missing_kinds(source: bool, kustomize: bool) -> String {
    let mut missing = Vec::new();
    if !source {
        missing.push(format!("source-controller ({SOURCE_API} OCIRepository)"));
    }
    if !kustomize {
        missing.push(format!(
            "kustomize-controller ({KUSTOMIZE_API} Kustomization)"
        ));
    }
    missing.join(" and ")
}
