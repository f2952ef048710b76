//! `spin-aks bundle`'s flags, and the one place they become validated settings: what to copy
//! (versions, platforms, mirrors, the app) and where to load it.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{http_url, RegistryArgs, ReleaseArgs, TrustArgs};
use crate::bundle::copy::Platform;
use crate::bundle::create::BundleCreateSettings;
use crate::bundle::push::BundlePushSettings;
use crate::oci::reference::RegistryRef;

#[derive(Debug, Args)]
pub struct BundleArgs {
    #[command(subcommand)]
    pub command: BundleCommand,
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Copy everything an install and a deploy need into one oci-archive (on a connected machine)
    Create(BundleCreateArgs),
    /// List what a bundle carries: each part, its version, digest and origin
    Inspect(BundleInspectArgs),
    /// Check a bundle whole, then load it into the closed network's registry (resumable)
    Push(BundlePushArgs),
}

#[derive(Debug, Args)]
pub struct BundleCreateArgs {
    /// The bundle file to write (an oci-archive); an unchanged bundle is not rewritten
    #[arg(short, long, value_name = "FILE")]
    pub out: PathBuf,
    /// The app to carry: an oci-archive `spin-aks export --with-deploy REGISTRY/REPOSITORY` wrote
    #[arg(long, value_name = "FILE")]
    pub app: Option<PathBuf>,
    /// The nodes' architectures (comma-separated): images and shim archives for these only
    #[arg(
        long,
        value_name = "ARCH",
        value_delimiter = ',',
        default_value = "amd64"
    )]
    pub arch: Vec<String>,
    /// containers-registries.conf(5) naming mirrors of the publishers [default: the file skopeo and podman read]
    #[arg(long, value_name = "FILE")]
    pub registries_conf: Option<PathBuf>,
    /// The Go module proxy (or a mirror of it) the CRDs' modules come from
    #[arg(long, value_name = "URL", default_value = crate::install::crds::DEFAULT_PROXY)]
    pub module_proxy: String,
    /// Where the shim's release archives are (`<URL>/<version>/<file>`)
    #[arg(long, value_name = "URL", default_value = crate::bundle::fetch::SHIM_BASE)]
    pub shim_base_url: String,
    #[command(flatten)]
    pub versions: ReleaseArgs,
    /// Allow plain http:// for --module-proxy and --shim-base-url
    #[arg(long)]
    pub plain_http: bool,
}

#[derive(Debug, Args)]
pub struct BundleInspectArgs {
    /// The bundle file
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct BundlePushArgs {
    /// The bundle file
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The registry to load it into, `host[:port][/path]` (then `cluster install --mirror` it)
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
    /// The digest `bundle create` printed: refuse any other bundle
    #[arg(long, value_name = "DIGEST")]
    pub digest: Option<String>,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub transport: RegistryArgs,
}

impl BundleCreateArgs {
    pub fn settings(&self) -> anyhow::Result<BundleCreateSettings> {
        let releases = self.versions.releases()?;
        // Every chart's image list is known before anything is fetched.
        for chart in releases.charts() {
            crate::install::images::chart_images(chart)?;
        }
        let mut platforms: Vec<Platform> = Vec::new();
        for arch in &self.arch {
            let architecture = match arch.trim() {
                "amd64" | "x86_64" => "amd64",
                "arm64" | "aarch64" => "arm64",
                other => {
                    return Err(crate::bad_input!(
                        "--arch `{}`: give amd64 and/or arm64 (comma-separated), the architectures of AKS nodes",
                        crate::oci::reference::shown(other)
                    ))
                }
            };
            let platform = Platform {
                os: "linux".into(),
                architecture: architecture.into(),
            };
            if !platforms.contains(&platform) {
                platforms.push(platform);
            }
        }
        http_url("--module-proxy", &self.module_proxy, self.plain_http)?;
        http_url("--shim-base-url", &self.shim_base_url, self.plain_http)?;
        if let Some(conf) = &self.registries_conf {
            if !conf.is_file() {
                return Err(crate::bad_input!(
                    "--registries-conf {}: no such file",
                    conf.display()
                ));
            }
        }
        if let Some(app) = &self.app {
            if !app.is_file() {
                return Err(crate::bad_input!(
                    "--app {}: no such file; give the oci-archive `spin-aks export --with-deploy` wrote",
                    app.display()
                ));
            }
        }
        if self.out.is_dir() {
            return Err(crate::bad_input!(
                "-o {} is a directory; name the bundle file to write",
                self.out.display()
            ));
        }
        Ok(BundleCreateSettings {
            out: self.out.clone(),
            releases,
            platforms,
            registries_conf: self.registries_conf.clone(),
            module_proxy: self.module_proxy.clone(),
            shim_base: self.shim_base_url.clone(),
            app: self.app.clone(),
        })
    }
}

impl BundlePushArgs {
    pub fn settings(&self) -> anyhow::Result<BundlePushSettings> {
        let registry = self
            .registry
            .trim_start_matches("oci://")
            .trim_end_matches('/');
        RegistryRef::parse(&format!("{registry}/bundle")).map_err(|e| {
            let shown = crate::oci::reference::shown(&self.registry);
            crate::bad_input!("REGISTRY `{shown}` is not a registry and path: {e:#}")
        })?;
        let digest = match &self.digest {
            Some(given) => Some(given.parse().map_err(|e| {
                crate::bad_input!(
                    "--digest `{}` is not a digest ({e}); give the sha256:… `bundle create` printed",
                    crate::oci::reference::shown(given)
                )
            })?),
            None => None,
        };
        if !self.file.is_file() {
            return Err(crate::bad_input!(
                "{}: no such file; give the bundle `spin-aks bundle create` wrote",
                self.file.display()
            ));
        }
        let trust = self.trust.settings();
        let trust = match trust.certs.is_empty() {
            true => None,
            false => Some(crate::verify::trust_policy(&trust)?),
        };
        Ok(BundlePushSettings {
            archive: self.file.clone(),
            registry: registry.to_string(),
            digest,
            trust,
            transport: self.transport.settings(),
        })
    }
}
