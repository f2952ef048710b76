//! Deploy artifacts carried in an oci-archive beside the image (`export --with-deploy`): pushed
//! with the image as `<repository>-deploy:<env>`, refused when they pin another image reference.

use crate::bad_input;
use crate::oci::flux_artifact;
use crate::oci::reference::RegistryRef;
use crate::oci::Layout;
use crate::output::Output;
use crate::registry::{self, PushReport};
use crate::state::{AppState, DeployArtifact, PublishedTag};

/// The name prefix of a carried deploy artifact in a layout: `deploy-<env>`.
pub const PREFIX: &str = "deploy-";

/// The image to push (named when the layout holds deploy artifacts too) and those artifacts.
pub fn images(layout: &Layout) -> anyhow::Result<(Option<String>, Vec<String>)> {
    let tags = layout.tags()?;
    let (deploy, images): (Vec<String>, Vec<String>) =
        tags.into_iter().partition(|t| t.starts_with(PREFIX));
    match (deploy.is_empty(), images.as_slice()) {
        (true, _) => Ok((None, Vec::new())),
        (false, [image]) => Ok((Some(image.clone()), deploy)),
        (false, _) => Err(bad_input!(
            "the layout {} holds deploy artifacts beside {} images; it must hold exactly one image (`spin-aks export --with-deploy` writes that)",
            layout.root().display(),
            images.len()
        )),
    }
}

/// Pushes each carried artifact to `<repository>-deploy:<env>` beside the pushed image, after
/// checking it pins exactly that image; the (env, digest) pushed.
pub async fn push(
    layout: &Layout,
    tags: &[String],
    image: &PushReport,
    settings: &super::RegistrySettings,
    out: &Output,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut pushed = Vec::new();
    for tag in tags {
        let (_, manifest) = layout.image(Some(tag))?;
        let Some(layer) = manifest.layers.first() else {
            return Err(bad_input!(
                "the deploy artifact `{tag}` in the archive has no layer: export it again with --with-deploy {}",
                image.reference.repository_name()
            ));
        };
        let layer = std::fs::read(layout.blob_path(&layer.digest))?;
        let pinned = image.pinned.to_string();
        let pins_it = flux_artifact::read_layer(&layer)?
            .values()
            .any(|f| String::from_utf8_lossy(f).contains(&pinned));
        if !pins_it {
            return Err(bad_input!(
                "the deploy artifact `{tag}` in the archive does not run {pinned}: export it again with --with-deploy {}",
                image.reference.repository_name()
            ));
        }
        let env = &tag[PREFIX.len()..];
        let repository =
            RegistryRef::parse(&format!("{}-deploy", image.reference.repository_name()))?;
        let target = repository.with_tag(env)?;
        let (mut client, options) = super::registry_client(&target, settings, None, out).await?;
        let report =
            registry::push_layout(layout, Some(tag), &target, &mut client, &options).await?;
        out.info(format!("published {target} ({})", report.digest));
        pushed.push((env.to_string(), report.digest.to_string()));
    }
    Ok(pushed)
}

/// Remembers the carried artifacts' tags as `publish` does.
pub fn remember(app: &mut AppState, pushed: &[(String, String)], image: &PushReport) {
    let repository = format!("{}-deploy", image.reference.repository_name());
    let artifact = app
        .deploy_artifact
        .get_or_insert_with(DeployArtifact::default);
    if artifact.repository != repository {
        *artifact = DeployArtifact {
            repository,
            ..DeployArtifact::default()
        };
    }
    for (env, digest) in pushed {
        let tag = PublishedTag {
            digest: digest.clone(),
            image: image.pinned.to_string(),
        };
        artifact.tags.insert(env.clone(), tag);
    }
}
