//! Copies the app a bundle carries into the bundle's layout as items: the image from an oci-archive
//! that `export --with-deploy` wrote, its deploy artifacts and the artifacts about them.

use std::path::Path;

use super::contents::{Item, Kind};
use crate::oci::media_types::REF_NAME_ANNOTATION;
use crate::oci::{archive, Descriptor, Digest, Layout};
use crate::registry::push_tree::blobs;

/// Copies the app of the oci-archive `archive` (`spin-aks export`, with its deploy artifacts
/// and the artifacts about them) into `layout`: its items and those artifacts.
pub fn carry_app(archive: &Path, layout: &Layout) -> anyhow::Result<(Vec<Item>, Vec<Descriptor>)> {
    let dir = crate::interrupt::temp_dir()?;
    let app = archive::unpack(archive, dir.path())?;
    let (named, deploy_tags) = crate::push::image_and_carried(&app)?;
    let (image, manifest) = app.image(named.as_deref())?;
    let title = manifest
        .annotations
        .get("org.opencontainers.image.title")
        .cloned();
    let title = title.unwrap_or_else(|| "app".into());
    let tag =
        (image.annotations.get(REF_NAME_ANNOTATION).cloned()).unwrap_or_else(|| "latest".into());
    // Where the deploy artifact runs the image: `host/path@<digest>`, else `apps/<name>`.
    let pinned = deploy_tags
        .first()
        .map(|t| pinned_repository(&app, t, &image.digest))
        .transpose()?
        .flatten();
    let (name, source) = match &pinned {
        Some(repository) => {
            let path = repository
                .split_once('/')
                .map(|(_, p)| p.to_string())
                .unwrap_or_default();
            (path, repository.clone())
        }
        None => (format!("apps/{title}"), archive.display().to_string()),
    };
    for entry in std::fs::read_dir(app.root().join("blobs").join("sha256"))? {
        let entry = entry?;
        let target = layout
            .root()
            .join("blobs")
            .join("sha256")
            .join(entry.file_name());
        if !target.exists() {
            std::fs::copy(entry.path(), target)?;
        }
    }
    // An item's bytes: its manifest's and those of the blobs it names.
    let size = |d: &Descriptor| {
        let blobs = app.read_blob(&d.digest).ok().and_then(|m| blobs(&m).ok());
        d.size
            + blobs
                .unwrap_or_default()
                .iter()
                .map(|b| b.size)
                .sum::<u64>()
    };
    let item = |kind, name: String, tag: String, d: &Descriptor| Item {
        kind,
        part: title.clone(),
        name,
        tag,
        digest: d.digest.clone(),
        media_type: d.media_type.clone(),
        bytes: size(d),
        source: source.clone(),
        upstream_digest: None,
        referrers: 0,
    };
    let mut items = vec![item(Kind::App, name.clone(), tag, &image)];
    for deploy in &deploy_tags {
        let (descriptor, _) = app.image(Some(deploy))?;
        let env = deploy
            .trim_start_matches(crate::push::CARRIED_PREFIX)
            .to_string();
        items.push(item(
            Kind::Deploy,
            format!("{name}-deploy"),
            env,
            &descriptor,
        ));
    }
    let about: Vec<Descriptor> = app
        .index()?
        .into_iter()
        .filter(|d| d.artifact_type.is_some())
        .collect();
    items[0].referrers = about.len();
    Ok((items, about))
}

/// The repository the deploy artifact `tag` runs `digest` from, if it names one.
fn pinned_repository(app: &Layout, tag: &str, digest: &Digest) -> anyhow::Result<Option<String>> {
    let (_, manifest) = app.image(Some(tag))?;
    let Some(layer) = manifest.layers.first() else {
        return Ok(None);
    };
    let files = crate::oci::flux_artifact::read_layer(&app.read_blob(&layer.digest)?)?;
    let needle = format!("@{digest}");
    for text in files
        .values()
        .map(|f| String::from_utf8_lossy(f).to_string())
    {
        if let Some(at) = text.find(&needle) {
            let start = text[..at]
                .rfind(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                .map_or(0, |i| i + 1);
            return Ok(Some(text[start..at].to_string()));
        }
    }
    Ok(None)
}
