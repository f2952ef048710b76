//! Staged promotion: the `--to` tag of the deploy artifact moved to the manifest `FROM_ENV` points
//! at (by digest, no rebuild), only once every cluster following `FROM_ENV` converged on it.

use std::path::PathBuf;

use serde::Serialize;

use super::status::{self, ClusterStatus, MemberState};
use crate::bad_input;
use crate::context::AppContext;
use crate::oci::reference::RegistryRef;
use crate::oci::Digest;
use crate::output::Output;
use crate::push::{registry_client, RegistrySettings};

/// The `promote` flags, validated.
#[derive(Debug)]
pub struct PromoteSettings {
    pub from: String,
    pub to: String,
    pub kubeconfig: Option<PathBuf>,
    pub registry: RegistrySettings,
}

/// What `promote` did.
#[derive(Debug, Serialize)]
pub struct Promoted {
    pub repository: String,
    pub from: String,
    pub to: String,
    pub digest: String,
    pub image: String,
    /// The `FROM_ENV` clusters, each converged on the digest.
    pub verified: Vec<ClusterStatus>,
}

/// The error when a `FROM_ENV` cluster has not converged: names each with its reason.
#[derive(Debug, thiserror::Error)]
#[error("not promoting {from} to {to}: {}", .clusters.join("; "))]
pub struct NotPromotable {
    pub from: String,
    pub to: String,
    pub clusters: Vec<String>,
}

pub async fn promote(
    ctx: &mut AppContext,
    settings: &PromoteSettings,
    out: &Output,
) -> anyhow::Result<Promoted> {
    if settings.from == settings.to {
        return Err(bad_input!("FROM_ENV and --to are both `{}`", settings.from));
    }
    let artifact = ctx.remembered().deploy_artifact.clone();
    let Some((repository, tag)) = artifact.and_then(|a| {
        let tag = a.tags.get(&settings.from).cloned()?;
        Some((a.repository, tag))
    }) else {
        return Err(bad_input!(
            "nothing is published as `{0}` for {1}: `spin-aks publish --env {0}` first",
            settings.from,
            ctx.app.manifest_path.display()
        ));
    };
    let verified = status::status(
        ctx.remembered(),
        &ctx.name,
        settings.kubeconfig.clone(),
        Some(&settings.from),
    )
    .await;
    let behind: Vec<String> = verified
        .iter()
        .filter(|s| s.state != MemberState::Converged)
        .map(|s| {
            format!(
                "{} is {:?}: {}",
                s.cluster,
                s.state,
                s.reason.as_deref().unwrap_or("not converged")
            )
            .to_lowercase()
        })
        .collect();
    if !behind.is_empty() {
        return Err(NotPromotable {
            from: settings.from.clone(),
            to: settings.to.clone(),
            clusters: behind,
        }
        .into());
    }
    if verified.is_empty() {
        out.warn(format!(
            "no cluster follows `{}`, so nothing was verified before promoting",
            settings.from
        ));
    }
    let digest: Digest = tag.digest.parse()?;
    let target = RegistryRef::parse(&repository)?.with_tag(&settings.to)?;
    let (mut client, _) = registry_client(&target, &settings.registry, None, out).await?;
    // The first request also settles the scheme and the credential.
    client.first_manifest_digest(&settings.to).await?;
    let (bytes, media_type) = client.get_manifest(&tag.digest, Some(&digest)).await?;
    client
        .put_manifest(&settings.to, media_type.as_deref(), &bytes)
        .await?;
    out.info(format!("{target} → {digest}"));
    ctx.remember(out, |app| {
        if let Some(artifact) = app.deploy_artifact.as_mut() {
            artifact.tags.insert(settings.to.clone(), tag.clone());
        }
    })?;
    Ok(Promoted {
        repository,
        from: settings.from.clone(),
        to: settings.to.clone(),
        digest: tag.digest,
        image: tag.image,
        verified,
    })
}
