//! The parts `cluster install` puts on a cluster, pinned: SpinKube's charts (name, version, OCI
//! registry), Go modules by the checksum database's hash (the operator's CRDs; Flux's controllers
//! where Flux is missing) and the shim's release archives.

use crate::bad_input;

/// One chart: where its publisher serves it, and the version pinned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chart {
    /// The chart's name in its registry (and the Helm release's name).
    pub name: &'static str,
    /// The publisher's OCI registry, without `oci://`.
    pub registry: &'static str,
    pub version: String,
}

/// A Go module and the `h1:` hash the Go checksum database records for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub path: &'static str,
    pub version: &'static str,
    pub h1: &'static str,
}

/// The releases one install puts on a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseSet {
    pub cert_manager: Chart,
    pub runtime_class_manager: Chart,
    pub spin_operator: Chart,
    /// The operator's module, whose `config/crd/bases` are the CRDs its chart leaves out.
    pub operator_module: Module,
    /// containerd-shim-spin, e.g. `v0.25.1`.
    pub shim: String,
    /// Flux's controllers, installed where the cluster has no Flux.
    pub flux: FluxControllers,
}

/// Flux's source- and helm-controller, at the versions Flux v2.9.5 releases them with: their
/// modules hold their CRDs, their images are `<registry>/<controller>:<version>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FluxControllers {
    pub source_controller: Module,
    pub helm_controller: Module,
    /// What `fleet add` needs on a cluster: installed from a mirror where it is missing.
    pub kustomize_controller: Module,
}

impl FluxControllers {
    /// The controllers at the versions spin-aks pins (those of `ReleaseSet::pinned`).
    pub fn pinned() -> &'static FluxControllers {
        &FLUX
    }

    /// The controllers `cluster install` installs.
    pub fn modules(&self) -> [&Module; 2] {
        [&self.source_controller, &self.helm_controller]
    }

    /// Every controller a bundle carries.
    pub fn all_modules(&self) -> [&Module; 3] {
        [
            &self.source_controller,
            &self.helm_controller,
            &self.kustomize_controller,
        ]
    }
}

impl Module {
    /// The last element of the module path (a Flux controller's name).
    pub fn name(&self) -> &'static str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }
}

/// The Flux controllers spin-aks installs (hashes as `go mod download` verified them against
/// sum.golang.org).
const FLUX: FluxControllers = FluxControllers {
    source_controller: Module {
        path: "github.com/fluxcd/source-controller",
        version: "v1.9.5",
        h1: "h1:MFPyCodUi9hZIMaKDsC/rYbNoyzpvrAdrPVixj7W9F0=",
    },
    helm_controller: Module {
        path: "github.com/fluxcd/helm-controller",
        version: "v1.6.4",
        h1: "h1:u/Ew7LehrwDQaE/NqWdaB3XnNDCxRGDcp1FZl7RKj4g=",
    },
    kustomize_controller: Module {
        path: "github.com/fluxcd/kustomize-controller",
        version: "v1.9.5",
        h1: "h1:/XY2zy3K7fntyppEXIHG7oRMzmfgIt50eJzUfaPX1Kc=",
    },
};

/// cert-manager's chart versions carry a `v`; the spinframework charts' do not.
const CERT_MANAGER: (&str, &str) = ("cert-manager", "quay.io/jetstack/charts");
const RUNTIME_CLASS_MANAGER: (&str, &str) =
    ("runtime-class-manager", "ghcr.io/spinframework/charts");
const SPIN_OPERATOR: (&str, &str) = ("spin-operator", "ghcr.io/spinframework/charts");

/// spin-operator releases spin-aks knows the CRDs of (module path as its go.mod names it).
const OPERATOR_MODULES: [Module; 1] = [Module {
    path: "github.com/spinkube/spin-operator",
    version: "v0.6.1",
    h1: "h1:JpWkv8H5UJSsRACpOeoco2UksdJ2XlenzKD86oDqzn4=",
}];

/// The versions asked for; `None` takes the current release.
#[derive(Clone, Debug, Default)]
pub struct Versions {
    pub cert_manager: Option<String>,
    pub runtime_class_manager: Option<String>,
    pub spin_operator: Option<String>,
    pub shim: Option<String>,
}

impl ReleaseSet {
    /// The current releases (2026-12): cert-manager v1.20.0, runtime-class-manager v0.2.0,
    /// spin-operator v0.6.1, containerd-shim-spin v0.25.1; each overridable.
    pub fn pinned(versions: &Versions) -> anyhow::Result<ReleaseSet> {
        let operator = bare(
            versions.spin_operator.as_deref().unwrap_or("0.6.1"),
            "--spin-operator-version",
        )?;
        let operator_module = OPERATOR_MODULES
            .iter()
            .find(|m| m.version.trim_start_matches('v') == operator)
            .cloned()
            .ok_or_else(|| {
                bad_input!(
                    "--spin-operator-version {operator}: spin-aks knows the CRDs of spin-operator {} only; pick that one, or upgrade spin-aks",
                    OPERATOR_MODULES.map(|m| m.version).join(", ")
                )
            })?;
        let cert_manager = bare(
            versions.cert_manager.as_deref().unwrap_or("1.20.0"),
            "--cert-manager-version",
        )?;
        let rcm = bare(
            versions.runtime_class_manager.as_deref().unwrap_or("0.2.0"),
            "--runtime-class-manager-version",
        )?;
        let shim = bare(
            versions.shim.as_deref().unwrap_or("0.25.1"),
            "--shim-version",
        )?;
        Ok(ReleaseSet {
            cert_manager: chart(CERT_MANAGER, format!("v{cert_manager}")),
            runtime_class_manager: chart(RUNTIME_CLASS_MANAGER, rcm),
            spin_operator: chart(SPIN_OPERATOR, operator),
            operator_module,
            shim: format!("v{shim}"),
            flux: FLUX,
        })
    }

    pub fn charts(&self) -> [&Chart; 3] {
        [
            &self.cert_manager,
            &self.runtime_class_manager,
            &self.spin_operator,
        ]
    }

    /// The shim's release archive for `arch` (`x86_64`, `aarch64`), from its publisher.
    pub fn shim_archive(&self, arch: &str) -> String {
        format!(
            "https://github.com/spinframework/containerd-shim-spin/releases/download/{}/containerd-shim-spin-v2-linux-{arch}.tar.gz",
            self.shim
        )
    }
}

fn chart((name, registry): (&'static str, &'static str), version: String) -> Chart {
    Chart {
        name,
        registry,
        version,
    }
}

/// A release version as `MAJOR.MINOR.PATCH` (a leading `v` dropped), refused otherwise: it goes
/// into chart references and URLs.
fn bare(version: &str, flag: &str) -> anyhow::Result<String> {
    let bare = version.strip_prefix('v').unwrap_or(version);
    let parts: Vec<&str> = bare.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 6 && p.bytes().all(|b| b.is_ascii_digit()));
    if !numeric {
        return Err(bad_input!(
            "{flag} `{version}` is not a release version; give one like 1.2.3"
        ));
    }
    Ok(bare.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_releases_are_pinned_and_each_can_be_overridden() {
        let set = ReleaseSet::pinned(&Versions::default()).unwrap();
        let versions: Vec<&str> = set.charts().iter().map(|c| c.version.as_str()).collect();
        assert_eq!(versions, ["v1.20.0", "0.2.0", "0.6.1"]);
        assert_eq!(set.shim, "v0.25.1");
        let newer = Versions {
            cert_manager: Some("v1.21.0".into()),
            shim: Some("0.26.0".into()),
            ..Versions::default()
        };
        let set = ReleaseSet::pinned(&newer).unwrap();
        assert_eq!(set.cert_manager.version, "v1.21.0");
        assert!(set
            .shim_archive("x86_64")
            .ends_with("/v0.26.0/containerd-shim-spin-v2-linux-x86_64.tar.gz"));
    }

    #[test]
    fn versions_that_are_not_releases_or_whose_crds_are_unknown_are_bad_input() {
        for (versions, wanted) in [
            (
                Versions {
                    shim: Some("latest".into()),
                    ..Versions::default()
                },
                "--shim-version `latest`",
            ),
            (
                Versions {
                    cert_manager: Some("1.2.3/../x".into()),
                    ..Versions::default()
                },
                "--cert-manager-version",
            ),
            (
                Versions {
                    spin_operator: Some("0.5.0".into()),
                    ..Versions::default()
                },
                "knows the CRDs of spin-operator v0.6.1",
            ),
        ] {
            let err = ReleaseSet::pinned(&versions).unwrap_err();
            assert!(
                err.is::<crate::error::BadInput>() && err.to_string().contains(wanted),
                "{err}"
            );
        }
    }
}
