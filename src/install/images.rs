//! Lists the container images each pinned chart and Flux controller runs, per version, and writes
//! the HelmRelease values that point each image value of a chart at its mirror copy, by digest.

use serde_json::{json, Map, Value};

use super::releases::{Chart, Module};
use crate::bad_input;

/// Where Flux publishes its controllers' images (`flux install --registry` changes it).
pub const FLUX_REGISTRY: &str = "ghcr.io/fluxcd";

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Image {
    /// `host/path` as the publisher names it, e.g. `quay.io/jetstack/cert-manager-controller`.
    pub repository: String,
    pub tag: String,
}

impl Image {
    /// `repository:tag`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

/// How a chart lets its values name an image by digest.
#[derive(Clone, Copy, Debug)]
enum Knob {
    /// `<path>.repository`, `<path>.tag` and `<path>.digest`, rendered `repository:tag@digest`
    /// (cert-manager's `image` helper, templates/_helpers.tpl).
    Digest,
    /// `<path>.repository` and `<path>.tag`, rendered `repository:tag`: the digest rides in the
    /// tag as `tag@digest`.
    TagAtDigest,
}

/// One chart version's images: the value path (dotted) of each, its repository, and the tag
/// every image of that version runs with the values spin-aks sets.
struct Listed {
    chart: &'static str,
    version: &'static str,
    tag: &'static str,
    knob: Knob,
    images: &'static [(&'static str, &'static str)],
}

/// The images of each chart version spin-aks knows; adding a version is one entry. Every value
/// that names an image is listed, parts spin-aks turns off included: cert-manager's
/// startupapicheck Job, and its ACME solver, which the controller is given as an argument and
/// runs for HTTP-01 challenges; runtime-class-manager's shim downloader and node installer,
/// which its controller runs as Jobs (their references reach it through environment variables).
/// runtime-class-manager's values default to `latest`: spin-aks sets its release's tag.
const LISTED: &[Listed] = &[
    Listed {
        chart: "cert-manager",
        version: "v1.20.0",
        tag: "v1.20.0",
        knob: Knob::Digest,
        images: &[
            ("image", "quay.io/jetstack/cert-manager-controller"),
            ("webhook.image", "quay.io/jetstack/cert-manager-webhook"),
            (
                "cainjector.image",
                "quay.io/jetstack/cert-manager-cainjector",
            ),
            (
                "acmesolver.image",
                "quay.io/jetstack/cert-manager-acmesolver",
            ),
            (
                "startupapicheck.image",
                "quay.io/jetstack/cert-manager-startupapicheck",
            ),
        ],
    },
    Listed {
        chart: "runtime-class-manager",
        version: "0.2.0",
        tag: "v0.2.0",
        knob: Knob::TagAtDigest,
        images: &[
            ("image", "ghcr.io/spinframework/runtime-class-manager"),
            (
                "rcm.shimDownloaderImage",
                "ghcr.io/spinframework/shim-downloader",
            ),
            (
                "rcm.nodeInstallerImage",
                "ghcr.io/spinframework/node-installer",
            ),
        ],
    },
    // The operator's image tag defaults to the chart's appVersion, which its release workflow
    // sets to the release tag (spin-operator .github/workflows/publish.yaml:30,74).
    Listed {
        chart: "spin-operator",
        version: "0.6.1",
        tag: "v0.6.1",
        knob: Knob::TagAtDigest,
        images: &[(
            "controllerManager.manager.image",
            "ghcr.io/spinframework/spin-operator",
        )],
    },
];

/// The entry of `chart`'s version; bad input naming the versions spin-aks knows otherwise.
fn listed(chart: &Chart) -> anyhow::Result<&'static Listed> {
    let same_chart = || LISTED.iter().filter(|l| l.chart == chart.name);
    if let Some(found) = same_chart().find(|l| l.version == chart.version) {
        return Ok(found);
    }
    let known: Vec<&str> = same_chart().map(|l| l.version).collect();
    let known = match known.is_empty() {
        true => "no version".to_string(),
        false => known.join(", "),
    };
    Err(bad_input!(
        "--{name}-version {version}: spin-aks knows which images {name} runs at {known} only, so it cannot carry or mirror those of {version}; pick a version it knows, or upgrade spin-aks",
        name = chart.name,
        version = chart.version,
    ))
}

/// Every image `chart` runs at its version — every value of the chart that names an image, parts
/// that spin-aks turns off included (cert-manager's startupapicheck, its ACME solver image given
/// as an argument, runtime-class-manager's shim downloader and node installer, which its
/// controller runs as Jobs) — with the values spin-aks sets (rcm's images at `v<version>`, not
/// `latest`). A version with no list: bad input naming the chart, the version and the versions
/// spin-aks knows.
pub fn chart_images(chart: &Chart) -> anyhow::Result<Vec<Image>> {
    let listed = listed(chart)?;
    Ok((listed.images.iter())
        .map(|(_, repository)| Image {
            repository: repository.to_string(),
            tag: listed.tag.to_string(),
        })
        .collect())
}

/// Flux's controller images: `ghcr.io/fluxcd/<module name>:<version>` for each module.
pub fn flux_images(modules: &[&Module]) -> Vec<Image> {
    (modules.iter())
        .map(|module| Image {
            repository: format!("{FLUX_REGISTRY}/{}", module.name()),
            tag: module.version.to_string(),
        })
        .collect()
}

/// The HelmRelease values that point every image value of `chart` at its copy in a mirror, by
/// digest: `mirrored(image)` gives `(repository, digest)` of the copy, e.g.
/// `("mirror.example/quay.io/jetstack/cert-manager-controller", "sha256:…")`. Deep-merged over
/// the values `objects::releases` sets (so rcm's `image.tag` becomes `v0.2.0@sha256:…`).
pub fn mirror_values(
    chart: &Chart,
    mirrored: &dyn Fn(&Image) -> (String, String),
) -> anyhow::Result<Value> {
    let listed = listed(chart)?;
    let mut values = Value::Object(Map::new());
    for (path, image) in listed.images.iter().zip(chart_images(chart)?) {
        let (repository, digest) = mirrored(&image);
        let knob = match listed.knob {
            Knob::Digest => json!({"repository": repository, "tag": image.tag, "digest": digest}),
            Knob::TagAtDigest => {
                json!({"repository": repository, "tag": format!("{}@{digest}", image.tag)})
            }
        };
        *at(&mut values, path.0) = knob;
    }
    Ok(values)
}

/// The slot at dotted `path` in `values`, objects made on the way.
fn at<'v>(values: &'v mut Value, path: &str) -> &'v mut Value {
    path.split('.').fold(values, |slot, key| {
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        &mut slot[key]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::releases::{ReleaseSet, Versions};

    fn pinned() -> ReleaseSet {
        ReleaseSet::pinned(&Versions::default()).unwrap()
    }

    #[test]
    fn every_pinned_chart_has_its_images_listed_at_the_tags_spin_aks_runs() {
        let set = pinned();
        let references = |chart: &Chart| -> Vec<String> {
            (chart_images(chart).unwrap().iter())
                .map(Image::reference)
                .collect()
        };
        assert_eq!(
            references(&set.runtime_class_manager),
            [
                "ghcr.io/spinframework/runtime-class-manager:v0.2.0",
                "ghcr.io/spinframework/shim-downloader:v0.2.0",
                "ghcr.io/spinframework/node-installer:v0.2.0",
            ]
        );
        assert_eq!(
            references(&set.spin_operator),
            ["ghcr.io/spinframework/spin-operator:v0.6.1"]
        );
        let cert_manager = references(&set.cert_manager);
        assert_eq!(cert_manager.len(), 5);
        assert!(cert_manager.iter().all(|r| r.ends_with(":v1.20.0")));
        assert!(cert_manager.contains(&"quay.io/jetstack/cert-manager-acmesolver:v1.20.0".into()));
    }

    #[test]
    fn a_version_without_a_list_is_bad_input_naming_the_versions_known() {
        let mut chart = pinned().cert_manager;
        chart.version = "v1.21.0".into();
        for err in [
            chart_images(&chart).unwrap_err(),
            mirror_values(&chart, &|_| (String::new(), String::new())).unwrap_err(),
        ] {
            assert!(err.is::<crate::error::BadInput>(), "{err}");
            let said = err.to_string();
            assert!(
                said.contains("--cert-manager-version v1.21.0")
                    && said.contains("cert-manager runs at v1.20.0 only"),
                "{said}"
            );
        }
    }

    #[test]
    fn flux_images_are_the_controllers_at_their_versions() {
        let set = pinned();
        let references: Vec<String> = (flux_images(&set.flux.modules()).iter())
            .map(Image::reference)
            .collect();
        assert_eq!(
            references,
            [
                "ghcr.io/fluxcd/source-controller:v1.9.5",
                "ghcr.io/fluxcd/helm-controller:v1.6.4"
            ]
        );
    }

    #[test]
    fn mirror_values_use_each_charts_own_knobs() {
        let set = pinned();
        let mirrored = |image: &Image| {
            let digest = format!("sha256:{}", image.repository.len());
            (format!("mirror.example/{}", image.repository), digest)
        };
        let cert_manager = mirror_values(&set.cert_manager, &mirrored).unwrap();
        assert_eq!(
            cert_manager["acmesolver"]["image"],
            json!({
                "repository": "mirror.example/quay.io/jetstack/cert-manager-acmesolver",
                "tag": "v1.20.0",
                "digest": "sha256:40",
            })
        );
        assert_eq!(
            cert_manager["image"]["repository"],
            "mirror.example/quay.io/jetstack/cert-manager-controller"
        );
        let rcm = mirror_values(&set.runtime_class_manager, &mirrored).unwrap();
        assert_eq!(
            rcm,
            json!({
                "image": {
                    "repository": "mirror.example/ghcr.io/spinframework/runtime-class-manager",
                    "tag": "v0.2.0@sha256:43",
                },
                "rcm": {
                    "shimDownloaderImage": {
                        "repository": "mirror.example/ghcr.io/spinframework/shim-downloader",
                        "tag": "v0.2.0@sha256:37",
                    },
                    "nodeInstallerImage": {
                        "repository": "mirror.example/ghcr.io/spinframework/node-installer",
                        "tag": "v0.2.0@sha256:36",
                    },
                },
            })
        );
        let operator = mirror_values(&set.spin_operator, &mirrored).unwrap();
        assert_eq!(
            operator["controllerManager"]["manager"]["image"]["tag"],
            "v0.6.1@sha256:35"
        );
    }
}
