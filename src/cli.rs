//! The command-line contract of CLI.md: global flags and one struct per command.
//! Only parsing lives here; `commands` turns these into pipeline calls.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::OutputMode;

/// Take a Spin application to Azure Kubernetes Service: no Docker, no az, no kubectl.
#[derive(Debug, Parser)]
#[command(name = "spin-aks", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The app: a spin.toml, or the directory holding it
    #[arg(
        short = 'f',
        long = "from",
        global = true,
        value_name = "PATH",
        default_value = "spin.toml"
    )]
    pub from: PathBuf,
    /// `json` prints exactly one JSON object on stdout; text and progress go to stderr
    #[arg(long, global = true, value_enum, default_value_t = OutputMode::Text)]
    pub output: OutputMode,
    /// Never prompt; take defaults (state file, then built-in)
    #[arg(short = 'y', long = "yes", global = true)]
    pub yes: bool,
    /// More detail on stderr (repeat for more); errors show their cause chain
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Less on stderr: only warnings and errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The state file (last registry, cluster and image per app)
    #[arg(long, global = true, env = "SPIN_AKS_STATE_FILE", value_name = "PATH")]
    pub state_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the app for AKS/SpinKube, run `spin build` if needed, and write an OCI image layout
    Build(BuildArgs),
    /// Write the app's OCI image as an oci-archive (a tar of an OCI layout) for air-gapped transfer
    Export(ExportArgs),
}

/// Which OCI shape to produce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// The Spin OCI artifact (`spin registry push` format): one layer per wasm and file
    #[default]
    Spin,
    /// A plain `wasi/wasm` image with /spin.toml, as a `FROM scratch` Dockerfile builds
    Image,
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    /// Image format: the Spin OCI artifact, or a plain wasi/wasm image
    #[arg(long, value_enum, default_value_t = ImageFormat::Spin)]
    pub format: ImageFormat,
    /// Never run `spin build`, even when a component's wasm is missing or stale
    #[arg(long)]
    pub skip_spin_build: bool,
    /// The containerd-shim-spin release the cluster runs; features it lacks are warned about
    #[arg(long, value_name = "VERSION", default_value = crate::app::compat::DEFAULT_TARGET_SHIM)]
    pub shim_version: String,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    /// The OCI image layout directory to write (default `<app dir>/.spin-aks/oci`)
    #[arg(long, value_name = "DIR")]
    pub layout: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    /// The archive to write (default `<app dir>/<app>-<version>.oci.tar`)
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}
