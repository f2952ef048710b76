//! Runs `bundle create`, which copies everything an install and a deploy need into one layout (the
//! charts and every image they run, Flux, the CRDs' module zips, the shim, the app) and packs it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use futures_util::{stream, StreamExt, TryStreamExt};
use serde::Serialize;

use super::contents::{Contents, Item, Kind};
use super::copy::{Copied, Copier, Platform};
use super::fetch;
use crate::install::images::{self, Image};
use crate::install::mirror::{module_repository, CHARTS, SHIM};
use crate::install::releases::{Module, ReleaseSet};
use crate::oci::{archive, Descriptor, Digest, Layout};
use crate::output::Output;
use crate::push::human_bytes;
use crate::registry::mirrors::Mirrors;
use crate::registry::push_tree::{blobs, children};

/// Parts copied at once.
const JOBS: usize = 4;

/// `bundle create`'s flags, validated (made by `cli`).
#[derive(Clone, Debug)]
pub struct BundleCreateSettings {
    pub out: PathBuf,
    pub releases: ReleaseSet,
    pub platforms: Vec<Platform>,
    /// containers-registries.conf(5) naming mirrors of the publishers (`None`: the usual file).
    pub registries_conf: Option<PathBuf>,
    pub module_proxy: String,
    pub shim_base: String,
    /// An oci-archive `spin-aks export` wrote: the app (and its deploy artifacts) to carry.
    pub app: Option<PathBuf>,
}

/// What `bundle create` reports.
#[derive(Debug, Serialize)]
pub struct BundleCreateReport {
    pub archive: PathBuf,
    /// The digest of the bundle's own manifest: `bundle push --digest` checks it.
    pub digest: String,
    pub bytes: u64,
    pub items: usize,
    /// Bytes fetched from publishers and mirrors this run.
    pub fetched: u64,
    /// The archive held these very bytes already: nothing was written.
    pub unchanged: bool,
    pub seconds: f64,
}

/// One part to copy.
enum Part {
    Image {
        part: String,
        image: Image,
        kind: Kind,
        name: String,
    },
    Module {
        part: String,
        module: Module,
    },
    Shim,
}

/// Copies every part into a layout (seeded from the archive a previous run wrote, so an
/// unchanged part is not fetched again) and packs it into `settings.out`.
pub async fn create(
    settings: &BundleCreateSettings,
    out: &Output,
) -> anyhow::Result<(BundleCreateReport, Contents)> {
    let started = Instant::now();
    let mirrors = Mirrors::load(settings.registries_conf.as_deref())?;
    let dir = crate::interrupt::temp_dir()?;
    let (layout, previous) = seeded(settings, dir.path())?;
    let http = crate::registry::client::http_client(&Default::default())?;
    let copier = Copier {
        layout: &layout,
        mirrors: &mirrors,
        platforms: &settings.platforms,
        http: http.clone(),
    };
    let parts = parts(&settings.releases)?;
    let total = parts.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Done> = stream::iter(parts)
        .map(|part| {
            let (copier, http, done, previous) = (&copier, &http, &done, &previous);
            async move {
                let began = Instant::now();
                let result = copy_part(copier, http, settings, previous, part).await?;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                out.info(format!(
                    "[{n}/{total}] {} ({}, {} fetched, {:.1} s)",
                    result.item.reference(),
                    human_bytes(result.item.bytes),
                    human_bytes(result.fetched),
                    began.elapsed().as_secs_f64()
                ));
                if result.dropped > 0 {
                    out.warn(format!(
                        "{}: {} signature(s) of the publisher's index stay behind: they sign every platform of it, the bundle carries {}; give --arch each platform it has to keep them",
                        result.item.source,
                        result.dropped,
                        settings.platforms.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                    ));
                }
                Ok::<_, anyhow::Error>(result)
            }
        })
        .buffer_unordered(JOBS)
        .try_collect()
        .await?;
    let (mut items, mut referrers, mut fetched) = (Vec::new(), Vec::new(), 0);
    for done in results {
        items.push(done.item);
        items.extend(done.tagged);
        referrers.extend(done.referrers);
        fetched += done.fetched;
    }
    if let Some(app) = &settings.app {
        let (app_items, about) = super::app::carry_app(app, &layout)?;
        items.extend(app_items);
        referrers.extend(about);
    }
    items.sort_by(|a, b| {
        (a.kind, &a.part, &a.name, &a.tag).cmp(&(b.kind, &b.part, &b.name, &b.tag))
    });
    referrers.sort_by(|a, b| a.digest.cmp(&b.digest));
    referrers.dedup_by(|a, b| a.digest == b.digest);
    let contents = Contents {
        schema_version: 1,
        created_by: format!("spin-aks {}", env!("CARGO_PKG_VERSION")),
        platforms: settings.platforms.iter().map(ToString::to_string).collect(),
        versions: versions(&settings.releases),
        items,
    };
    let own = contents.write(&layout, referrers)?;
    remove_unreachable(&layout)?;
    let (bytes, unchanged) = archive::pack_if_changed(&layout, &settings.out, 0)?;
    let report = BundleCreateReport {
        archive: settings.out.clone(),
        digest: own.digest.to_string(),
        bytes,
        items: contents.items.len(),
        fetched,
        unchanged,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((report, contents))
}

/// A layout in `dir`, holding the blobs of the archive a previous run wrote at `out` (and what
/// that bundle carried), if any.
fn seeded(
    settings: &BundleCreateSettings,
    dir: &std::path::Path,
) -> anyhow::Result<(Layout, Option<Contents>)> {
    let out = &settings.out;
    match std::fs::symlink_metadata(out) {
        Ok(meta) if meta.is_file() => {
            let layout = archive::unpack(out, dir).map_err(|_| {
                crate::bad_input!(
                    "-o {}: the file exists and is not an oci-archive spin-aks wrote; remove it or name another file",
                    out.display()
                )
            })?;
            let (_, previous) = Contents::read(&layout, out).map_err(|_| {
                crate::bad_input!(
                    "-o {}: the file exists and is not a bundle; remove it or name another file",
                    out.display()
                )
            })?;
            Ok((layout, Some(previous)))
        }
        Ok(_) => Err(crate::bad_input!(
            "-o {}: it exists and is not a regular file; name the bundle file to write",
            out.display()
        )),
        Err(_) => Ok((Layout::create(dir)?, None)),
    }
}

/// Everything the releases need, in a fixed order.
fn parts(releases: &ReleaseSet) -> anyhow::Result<Vec<Part>> {
    let mut parts = Vec::new();
    for chart in releases.charts() {
        let chart_image = Image {
            repository: format!("{}/{}", chart.registry, chart.name),
            tag: chart.version.clone(),
        };
        parts.push(Part::Image {
            part: chart.name.to_string(),
            name: format!("{CHARTS}/{}", chart.name),
            image: chart_image,
            kind: Kind::Chart,
        });
        for image in images::chart_images(chart)? {
            parts.push(Part::Image {
                part: chart.name.to_string(),
                name: image.repository.clone(),
                image,
                kind: Kind::Image,
            });
        }
    }
    let flux = releases.flux.all_modules();
    for image in images::flux_images(&flux) {
        parts.push(Part::Image {
            part: "flux".into(),
            name: image.repository.clone(),
            image,
            kind: Kind::Image,
        });
    }
    parts.push(Part::Module {
        part: "spin-operator".into(),
        module: releases.operator_module.clone(),
    });
    for module in flux {
        parts.push(Part::Module {
            part: "flux".into(),
            module: module.clone(),
        });
    }
    parts.push(Part::Shim);
    Ok(parts)
}

/// One part copied: its item, the artifacts about it, cosign's tagged signatures, and the bytes
/// fetched for it.
struct Done {
    item: Item,
    referrers: Vec<Descriptor>,
    tagged: Vec<Item>,
    fetched: u64,
    /// The publisher's signatures left behind (see [`Copied::dropped`]).
    dropped: usize,
}

/// Copies one part. A module zip or the shim's archives the previous bundle holds from the
/// same source are kept (a module is checked against its pinned hash again), not fetched.
async fn copy_part(
    copier: &Copier<'_>,
    http: &reqwest::Client,
    settings: &BundleCreateSettings,
    previous: &Option<Contents>,
    part: Part,
) -> anyhow::Result<Done> {
    let layout = copier.layout;
    let kept = |kind: Kind, name: &str, tag: &str| {
        let previous = previous.as_ref()?;
        let item = previous
            .items
            .iter()
            .find(|i| i.kind == kind && i.name == name && i.tag == tag)?;
        Some(item.clone())
    };
    let stored = |item: Item| Done {
        item,
        referrers: Vec::new(),
        tagged: Vec::new(),
        fetched: 0,
        dropped: 0,
    };
    Ok(match part {
        Part::Image {
            part,
            image,
            kind,
            name,
        } => {
            let copied = copier.copy(&image.repository, &image.tag).await?;
            let Copied {
                root,
                upstream,
                source,
                bytes,
                fetched,
                referrers,
                tagged,
                dropped,
            } = copied;
            let tagged = (tagged.into_iter())
                .map(|(tag, manifest)| Item {
                    kind: Kind::Signature,
                    part: part.clone(),
                    name: name.clone(),
                    tag,
                    digest: manifest.digest,
                    media_type: manifest.media_type,
                    bytes: manifest.size,
                    source: source.clone(),
                    upstream_digest: None,
                    referrers: 0,
                })
                .collect();
            let item = Item {
                kind,
                part,
                name,
                tag: image.tag,
                digest: root.digest,
                media_type: root.media_type,
                bytes,
                source,
                upstream_digest: upstream,
                referrers: referrers.len(),
            };
            Done {
                item,
                referrers,
                tagged,
                fetched,
                dropped,
            }
        }
        Part::Module { part, module } => {
            let name = module_repository(&module);
            let source = fetch::module_source(&settings.module_proxy, &module);
            if let Some(item) = kept(Kind::Module, &name, module.version)
                .filter(|i| i.source == source && fetch::module_intact(layout, &i.digest, &module))
            {
                return Ok(stored(item));
            }
            let stored_module =
                fetch::module(http, &settings.module_proxy, &module, layout).await?;
            let fetched = stored_module.bytes;
            let item = stored_item(Kind::Module, part, name, module.version, stored_module);
            Done {
                fetched,
                ..stored(item)
            }
        }
        Part::Shim => {
            let archs: Vec<&str> = (settings.platforms.iter())
                .map(|p| shim_arch(&p.architecture))
                .collect();
            let version = &settings.releases.shim;
            let source = fetch::shim_source(&settings.shim_base, version);
            if let Some(item) = kept(Kind::Shim, SHIM, version)
                .filter(|i| i.source == source && fetch::shim_archs(layout, &i.digest) == archs)
            {
                return Ok(stored(item));
            }
            let archives = fetch::shim(http, &settings.shim_base, version, &archs, layout).await?;
            let fetched = archives.bytes;
            let item = stored_item(
                Kind::Shim,
                "containerd-shim-spin".into(),
                SHIM.into(),
                version,
                archives,
            );
            Done {
                fetched,
                ..stored(item)
            }
        }
    })
}

fn stored_item(kind: Kind, part: String, name: String, tag: &str, stored: fetch::Stored) -> Item {
    Item {
        kind,
        part,
        name,
        tag: tag.to_string(),
        digest: stored.manifest.digest,
        media_type: stored.manifest.media_type,
        bytes: stored.bytes,
        source: stored.source,
        upstream_digest: None,
        referrers: 0,
    }
}

/// The shim's name for a Go architecture.
pub fn shim_arch(go_arch: &str) -> &'static str {
    match go_arch {
        "arm64" => "aarch64",
        _ => "x86_64",
    }
}

fn versions(releases: &ReleaseSet) -> BTreeMap<String, String> {
    let mut versions: BTreeMap<String, String> = (releases.charts().iter())
        .map(|c| (c.name.to_string(), c.version.clone()))
        .collect();
    versions.insert("containerd-shim-spin".into(), releases.shim.clone());
    for module in releases.flux.all_modules() {
        versions.insert(module.name().to_string(), module.version.to_string());
    }
    versions
}

/// Deletes the blobs no manifest of the index reaches (what a previous bundle held).
pub fn remove_unreachable(layout: &Layout) -> anyhow::Result<usize> {
    let mut keep = BTreeSet::new();
    let mut todo: Vec<Digest> = layout.index()?.into_iter().map(|d| d.digest).collect();
    while let Some(digest) = todo.pop() {
        if !keep.insert(digest.hex().to_string()) {
            continue;
        }
        let bytes = layout.read_blob(&digest)?;
        for blob in blobs(&bytes).unwrap_or_default() {
            keep.insert(blob.digest.hex().to_string());
        }
        todo.extend(
            children(&bytes)
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.digest),
        );
    }
    let mut removed = 0;
    for entry in std::fs::read_dir(layout.root().join("blobs").join("sha256"))? {
        let entry = entry?;
        if !keep.contains(entry.file_name().to_string_lossy().as_ref()) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}
