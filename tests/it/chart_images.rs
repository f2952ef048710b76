//! The images `install::images` lists for each pinned chart, checked by rendering the real charts
//! (`helm template`) with the values `cluster install` sets: every image reference they render is
//! listed, and with `mirror_values` merged in every one points at the mirror by digest.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use spin_aks::install::flux;
use spin_aks::install::images::{chart_images, flux_images, mirror_values, Image};
use spin_aks::install::objects::{self, ChartSource};
use spin_aks::install::releases::{Chart, ReleaseSet, Versions};

use crate::install_flux::rig_without_flux;
use crate::support::{run_ok, tool};

/// The mirror `mirror_values` is asked for.
const MIRROR: &str = "mirror.test:5000";
/// Registries the charts name upstream images in.
const UPSTREAM: [&str; 3] = ["quay.io/", "ghcr.io/", "docker.io/"];

/// A made-up digest for `image`'s copy in the mirror (distinct per image).
fn fake_digest(image: &Image) -> String {
    let sum = Sha256::digest(image.reference().as_bytes());
    format!("sha256:{}", hex::encode(sum))
}

/// Where `image`'s copy sits in [`MIRROR`]: its upstream repository under the mirror's host.
fn mirrored(image: &Image) -> (String, String) {
    (format!("{MIRROR}/{}", image.repository), fake_digest(image))
}

/// Values that turn on the parts of a chart spin-aks turns off, so that their images render too:
/// cert-manager's startupapicheck Job (`objects::releases` sets `startupapicheck.enabled: false`).
fn every_part_on(chart: &Chart) -> Value {
    match chart.name {
        "cert-manager" => json!({"startupapicheck": {"enabled": true}}),
        _ => json!({}),
    }
}

/// `helm template` of `chart` from the rig's chart registry into `namespace`, `values` given as
/// `-f` files in order (Helm deep-merges them, later over earlier); the rendered objects.
fn render(
    helm: &Path,
    dir: &Path,
    charts: &str,
    chart: &Chart,
    namespace: &str,
    values: &[&Value],
) -> Vec<Value> {
    let mut cmd = Command::new(helm);
    cmd.args([
        "template",
        chart.name,
        &format!("oci://{charts}/{}", chart.name),
    ])
    .args(["--version", &chart.version, "--plain-http", "-n", namespace])
    // Helm's config and cache stay in the test's directory.
    .env("HOME", dir)
    .env_remove("XDG_CACHE_HOME")
    .env_remove("XDG_CONFIG_HOME")
    .env_remove("XDG_DATA_HOME")
    .current_dir(dir);
    for (n, value) in values.iter().enumerate() {
        let file = dir.join(format!("{}-values-{n}.json", chart.name));
        std::fs::write(&file, value.to_string()).unwrap();
        cmd.arg("-f").arg(file);
    }
    let yaml = run_ok(&mut cmd);
    let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml).unwrap();
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// Whether `text` reads as an image reference with a registry host (`host[:port]/path…`).
fn looks_like_reference(text: &str) -> bool {
    let plain = !text.contains("://") && !text.contains(',') && !text.contains(char::is_whitespace);
    plain
        && text.split_once('/').is_some_and(|(host, path)| {
            (host.contains('.') || host.contains(':')) && !path.is_empty()
        })
}

/// Every image reference the rendered objects hold: `image` fields (containers and init
/// containers), argument values (`--flag=REF`, as cert-manager's controller takes its ACME
/// solver's image: `--acme-http01-solver-image`, cert-manager templates/deployment.yaml:117) and
/// environment values (runtime-class-manager's `SHIM_DOWNLOADER_IMAGE` and
/// `SHIM_NODE_INSTALLER_IMAGE`, its deploy/helm/templates/deployment.yaml:46-49).
fn references(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let strings = child.as_array().into_iter().flatten();
                match key.as_str() {
                    "image" => found.extend(child.as_str().map(str::to_string)),
                    "args" | "command" => found.extend(
                        (strings.filter_map(Value::as_str))
                            .filter_map(|a| a.split_once('=').map(|(_, v)| v))
                            .filter(|v| looks_like_reference(v))
                            .map(str::to_string),
                    ),
                    "env" => found.extend(
                        (strings.filter_map(|e| e["value"].as_str()))
                            .filter(|v| looks_like_reference(v))
                            .map(str::to_string),
                    ),
                    _ => {}
                }
                references(child, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

/// Every string of the rendered objects (or its part after `=`) that names an upstream registry
/// outside a URL: each must be one of [`references`], or an image reference was missed.
fn upstream_mentions(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::String(text) => {
            let text = text.split_once('=').map_or(text.as_str(), |(_, v)| v);
            if !text.contains("://") && UPSTREAM.iter().any(|u| text.contains(u)) {
                found.insert(text.to_string());
            }
        }
        Value::Object(map) => map.values().for_each(|v| upstream_mentions(v, found)),
        Value::Array(items) => items.iter().for_each(|v| upstream_mentions(v, found)),
        _ => {}
    }
}

/// The image references of rendered `docs`, checked to leave no upstream mention uncounted.
fn rendered_references(docs: &[Value], what: &str) -> BTreeSet<String> {
    let (mut found, mut mentions) = (BTreeSet::new(), BTreeSet::new());
    for doc in docs {
        references(doc, &mut found);
        upstream_mentions(doc, &mut mentions);
    }
    let missed: Vec<&String> = mentions.difference(&found).collect();
    assert!(
        missed.is_empty(),
        "{what}: not counted as images: {missed:?}"
    );
    found
}

#[test]
fn the_images_listed_for_each_pinned_chart_are_those_it_renders_and_mirror_values_move_every_one() {
    // Any `--flux` rig serves the charts packaged from their module zips; this one starts no
    // controllers.
    let Some((_rig, sources)) = rig_without_flux() else {
        return;
    };
    let Some(helm) = tool("helm") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let releases = ReleaseSet::pinned(&Versions::default()).unwrap();
    // The HelmReleases `cluster install` applies (its dry run lists them without their values).
    let planned = objects::releases(&releases, &ChartSource::Publishers, true, None).unwrap();

    for chart in releases.charts() {
        let release = (planned.iter())
            .find(|r| r["metadata"]["name"] == chart.name)
            .unwrap();
        let ours = &release["spec"]["values"];
        let namespace = release["spec"]["targetNamespace"].as_str().unwrap();
        let listed = chart_images(chart).unwrap();
        let listed_refs: BTreeSet<String> = listed.iter().map(Image::reference).collect();
        let on = every_part_on(chart);
        let render = |values: &[&Value]| {
            render(&helm, dir.path(), &sources.charts, chart, namespace, values)
        };
        let what = format!("{} {}", chart.name, chart.version);

        // As installed: every image rendered is listed (none `latest`).
        let installed = rendered_references(&render(&[ours]), &what);
        assert!(
            installed.is_subset(&listed_refs),
            "{what} renders images not listed: {:?}",
            installed.difference(&listed_refs).collect::<Vec<_>>()
        );
        // With the parts spin-aks turns off on: exactly the list.
        let every = rendered_references(&render(&[ours, &on]), &what);
        assert_eq!(every, listed_refs, "{what}: rendered (left) against listed");

        // With the mirror's values merged over ours: each image its copy, tag and digest.
        let mirror = mirror_values(chart, &mirrored).unwrap();
        let moved = rendered_references(&render(&[ours, &mirror, &on]), &what);
        let wanted: BTreeSet<String> = (listed.iter())
            .map(|image| {
                let (repository, digest) = mirrored(image);
                format!("{repository}:{}@{digest}", image.tag)
            })
            .collect();
        assert_eq!(
            moved, wanted,
            "{what} mirrored: rendered (left) against wanted"
        );
        assert!(
            moved.iter().all(|r| r.starts_with(&format!("{MIRROR}/"))),
            "{moved:?}"
        );
    }
}

#[test]
fn flux_images_are_those_the_flux_deployments_run() {
    let releases = ReleaseSet::pinned(&Versions::default()).unwrap();
    let objects = flux::objects(&releases.flux, flux::DEFAULT_REGISTRY);
    let running: Vec<&str> = (objects.iter())
        .filter(|o| o["kind"] == "Deployment")
        .flat_map(|o| {
            o["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
        })
        .map(|c| c["image"].as_str().unwrap())
        .collect();
    let listed: Vec<String> = (flux_images(&releases.flux.modules()).iter())
        .map(Image::reference)
        .collect();
    assert_eq!(running, listed);
}
