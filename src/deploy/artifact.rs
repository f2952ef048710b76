//! The deploy artifact: the objects `apply` would send (image pinned by digest, Secrets left out)
//! as a Flux OCI artifact pushed beside the image, `<repository>-deploy:<env>`, remembered per tag.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::bad_input;
use crate::context::AppContext;
use crate::deploy::{plan, Settings};
use crate::manifests::source::Objects;
use crate::oci::flux_artifact::{self, Metadata};
use crate::oci::reference::{ImageRef, RegistryRef};
use crate::oci::{Descriptor, Digest, Layout};
use crate::output::Output;
use crate::push::{registry_client, ImageSigner, RegistrySettings};
use crate::registry;
use crate::state::{DeployArtifact, PublishedTag};

/// The tag a deploy artifact gets when no `--env` names one.
pub const DEFAULT_ENV: &str = "latest";

/// The publish flags, validated (made by `cli`).
#[derive(Debug)]
pub struct PublishSettings {
    /// `--image`, else the app's last push pinned by digest.
    pub image: Option<ImageRef>,
    /// `--repository`, else `<image repository>-deploy`.
    pub repository: Option<RegistryRef>,
    /// The tags (environments) to push; `latest` when none is given.
    pub envs: Vec<String>,
    /// What shapes the objects (`--dir`, the workload flags); its target is not used.
    pub objects: Settings,
    pub registry: RegistrySettings,
    /// Whether and with what to sign the artifact.
    pub sign: crate::attest::signing::Signing,
}

/// The export flags, validated (made by `cli`).
#[derive(Debug)]
pub struct ExportSettings {
    pub build: crate::build::BuildSettings,
    pub sign: crate::attest::signing::Signing,
    /// `--out`, a file (not a directory); else `<app dir>/<app>-<version>.oci.tar`.
    pub out: Option<std::path::PathBuf>,
    /// The deploy artifact to carry in the archive (`--with-deploy`).
    pub carry: Option<CarrySettings>,
}

/// The deploy artifact `export --with-deploy` carries.
#[derive(Debug)]
pub struct CarrySettings {
    /// Where the image will be pushed on the other side.
    pub repository: RegistryRef,
    /// The tags (environments); `latest` when none was given.
    pub envs: Vec<String>,
    /// What shapes the objects (`--dir`, the workload flags).
    pub objects: Settings,
}

/// What `publish` reports.
#[derive(Debug, Serialize)]
pub struct Published {
    /// `registry/repository` of the deploy artifact.
    pub repository: String,
    pub digest: Digest,
    pub tags: Vec<String>,
    /// `registry/repository@sha256:…` of the artifact.
    pub pinned: String,
    /// The image the objects run, pinned by digest.
    pub image: String,
    pub created: String,
    pub source: String,
    pub revision: String,
    /// `kind/name` of each object in the artifact.
    pub objects: Vec<String>,
    /// Whether every tag already pointed at this digest (nothing was uploaded).
    pub unchanged: bool,
}

/// Builds the app's deploy artifact and pushes it under each env tag; remembers the tags.
pub async fn publish(
    ctx: &mut AppContext,
    settings: &PublishSettings,
    image: Option<ImageRef>,
    out: &Output,
) -> anyhow::Result<Published> {
    let image = plan::choose_image(image.or(settings.image.clone()), ctx.remembered(), out)?;
    if image.digest().is_none() {
        return Err(bad_input!(
            "--image {image} has no digest: a deploy artifact pins the image; pass registry/repository@sha256:… (push prints it)"
        ));
    }
    let repository = match &settings.repository {
        Some(given) => given.without_digest(),
        None => default_repository(&image)?,
    };
    let envs = if settings.envs.is_empty() {
        vec![DEFAULT_ENV.to_string()]
    } else {
        settings.envs.clone()
    };
    let signer = ImageSigner::prepare(&ctx.store, &ctx.key, &settings.sign).await?;
    let dir = crate::interrupt::temp_dir()?;
    let layout = Layout::create(dir.path())?;
    let written = write(ctx, &settings.objects, &image, &layout, &[envs[0].clone()])?;
    let (descriptor, metadata, names) = (written.descriptor, written.metadata, written.objects);
    let key = ctx.key.clone();
    signer
        .sign(&mut ctx.store, &key, &layout, &descriptor, out)
        .await?;
    let mut unchanged = true;
    for env in &envs {
        let target = repository.with_tag(env)?;
        let (mut client, options) = registry_client(&target, &settings.registry, None, out).await?;
        let report = registry::push_layout(&layout, None, &target, &mut client, &options).await?;
        unchanged &= !report.manifest_put;
        out.info(format!("published {target} ({})", report.digest));
    }
    let name = repository.repository_name();
    ctx.remember(out, |app| {
        let artifact = app
            .deploy_artifact
            .get_or_insert_with(DeployArtifact::default);
        if artifact.repository != name {
            *artifact = DeployArtifact {
                repository: name.clone(),
                ..DeployArtifact::default()
            };
        }
        for env in &envs {
            let tag = PublishedTag {
                digest: descriptor.digest.to_string(),
                image: image.to_string(),
            };
            artifact.tags.insert(env.clone(), tag);
        }
    })?;
    Ok(Published {
        pinned: format!("{name}@{}", descriptor.digest),
        repository: name,
        digest: descriptor.digest,
        tags: envs,
        image: image.to_string(),
        created: metadata.created,
        source: metadata.source,
        revision: metadata.revision,
        objects: names,
        unchanged,
    })
}

/// A deploy artifact written into a layout.
pub struct Written {
    pub descriptor: Descriptor,
    pub metadata: Metadata,
    /// `Kind/name` of each object.
    pub objects: Vec<String>,
}

/// Writes the deploy artifact of `image` (pinned) into `layout` under each of `tags`: as its only
/// image for one tag, beside the images already there when `tags` are more or the layout holds one.
pub fn write(
    ctx: &AppContext,
    settings: &Settings,
    image: &ImageRef,
    layout: &Layout,
    tags: &[String],
) -> anyhow::Result<Written> {
    let digest = image
        .digest()
        .ok_or_else(|| bad_input!("the image {image} has no digest"))?;
    let (objects, _secrets) = artifact_objects(ctx, settings, image)?;
    let names = (objects.iter())
        .map(|o| {
            let kind = o["kind"].as_str().unwrap_or_default();
            format!(
                "{kind}/{}",
                o["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let files = BTreeMap::from([(
        format!("{}.yaml", ctx.name),
        yaml(&ctx.name, &objects).into_bytes(),
    )]);
    let metadata = metadata(&ctx.app.dir, image, digest)?;
    let mut descriptor = None;
    for tag in tags {
        let only = tags.len() == 1 && layout.tags().map_or(true, |t| t.is_empty());
        descriptor = Some(flux_artifact::write(layout, &files, &metadata, tag, only)?);
    }
    Ok(Written {
        descriptor: descriptor.ok_or_else(|| anyhow::anyhow!("no tag to write"))?,
        metadata,
        objects: names,
    })
}

/// The objects as YAML documents under a header naming what they are.
fn yaml(name: &str, objects: &[Value]) -> String {
    let documents: Vec<String> = objects.iter().map(crate::yaml::to_yaml).collect();
    format!(
        "# The deploy objects of {name}, published by spin-aks (Secrets are written into each cluster, never here).\n{}",
        documents.join("---\n")
    )
}

/// `<registry>/<image repository>-deploy`: beside the image, on the same registry.
pub fn default_repository(image: &ImageRef) -> anyhow::Result<RegistryRef> {
    let Some(registry) = image.registry() else {
        return Err(bad_input!(
            "the image {image} names no registry, so the deploy artifact has nowhere beside it to go; pass --repository <registry>/<name>"
        ));
    };
    RegistryRef::parse(&format!("{registry}/{}-deploy", image.repository()))
}

/// The objects `apply` would send for `image`, and apart from them the Secrets spin-aks makes for
/// store credentials: their values never enter an artifact; `fleet add` writes them into each
/// cluster. The user's `--dir` is checked first ([`check_dir`]).
pub fn artifact_objects(
    ctx: &AppContext,
    settings: &Settings,
    image: &ImageRef,
) -> anyhow::Result<(Vec<Value>, Vec<Value>)> {
    if let Some(dir) = &settings.dir {
        check_dir(dir, true)?;
    }
    let (objects, secrets): (Vec<Value>, Vec<Value>) =
        match plan::load_objects(ctx, settings, image)? {
            Objects::Manifests(objects) => objects.into_iter().partition(|o| o["kind"] != "Secret"),
            Objects::HelmChart(_) => return Err(helm_chart()),
        };
    let dir = plan::objects_dir(&ctx.app, settings);
    let dir = dir.map_or_else(|| "the objects".to_string(), |d| d.display().to_string());
    require_workload(&objects, &dir)?;
    Ok((objects, secrets))
}

/// Reads the objects of `--dir`, sending nothing (so `up` checks them before it pushes); for a
/// deploy `artifact`, refuses what cannot make one: a Helm chart; a Secret, each named with its
/// file (it would be left out of the artifact unseen, its values never published); no workload.
pub fn check_dir(dir: &Path, artifact: bool) -> anyhow::Result<()> {
    let objects = crate::manifests::source::load_traced(dir)?;
    let Some(objects) = objects.filter(|_| artifact) else {
        return match artifact {
            true => Err(helm_chart()),
            false => Ok(()),
        };
    };
    let secrets: Vec<String> = (objects.iter())
        .filter(|(_, o)| o["kind"] == "Secret")
        .map(|(file, o)| {
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            format!("Secret `{name}` in {}", file.display())
        })
        .collect();
    if !secrets.is_empty() {
        return Err(bad_input!(
            "--dir {}: {}: a deploy artifact carries no Secrets (their values would be published with it); take them out of the directory and give each cluster the values instead: a secret variable with `fleet add --secret NAME=VALUE`, store credentials with --kv-store/--sqlite, any other Secret with `kubectl apply -f` on each cluster",
            dir.display(),
            secrets.join(", ")
        ));
    }
    let objects: Vec<Value> = objects.into_iter().map(|(_, o)| o).collect();
    require_workload(&objects, &dir.display().to_string())
}

/// Refuses objects (from `from`) without a SpinApp or Deployment: a cluster would run nothing.
fn require_workload(objects: &[Value], from: &str) -> anyhow::Result<()> {
    let kinds = ["SpinApp", "Deployment"];
    if (objects.iter()).any(|o| kinds.contains(&o["kind"].as_str().unwrap_or_default())) {
        return Ok(());
    }
    Err(bad_input!(
        "{from}: no SpinApp or Deployment among the objects, so a cluster following the artifact would run nothing; add the app's workload (`spin-aks scaffold` writes one)"
    ))
}

fn helm_chart() -> anyhow::Error {
    bad_input!(
        "the objects are a Helm chart, which a deploy artifact cannot carry as rendered objects; publish plain YAML or Kustomize (`spin-aks scaffold --type kube`) or leave --dir out"
    )
}

/// Flux's annotations, reproducible: `created` is `SOURCE_DATE_EPOCH`, else the app's git commit
/// time, else 1970-01-01; `source` the git remote `origin` (else the image repository) and
/// `revision` `sha1:<commit>` (else the image digest).
fn metadata(dir: &Path, image: &ImageRef, digest: &Digest) -> anyhow::Result<Metadata> {
    let checkout = crate::git::checkout(dir);
    let epoch = match crate::build::assemble::source_date_epoch()? {
        Some(epoch) => epoch,
        None => checkout.as_ref().and_then(|c| c.commit_time).unwrap_or(0),
    };
    let created = crate::build::assemble::rfc3339(epoch);
    let source = checkout
        .as_ref()
        .and_then(|c| c.remote.clone())
        .unwrap_or_else(|| format!("oci://{}", image.name()));
    let revision = checkout.map_or_else(|| digest.to_string(), |c| format!("sha1:{}", c.commit));
    Ok(Metadata {
        created,
        source,
        revision,
    })
}
