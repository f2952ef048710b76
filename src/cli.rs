//! The command-line contract of docs/cli.md: global flags and one struct per command.
//! Only parsing lives here; `commands` turns these into pipeline calls.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::azure::names;
use crate::azure::vault::Vault;
use crate::context::choose::ClusterSelector;
use crate::manifests::secrets::SecretArg;
use crate::oci::reference::{ImageRef, RegistryRef};
use crate::oci::ImageFormat;
use crate::output::OutputMode;
use crate::registry::auth::AuthMode;
use crate::workload::key_vault::KeyVaultMode;
use crate::workload::objects::{self, WorkloadKind};
use crate::workload::render::RenderType;
use crate::workload::runtime_config::{self, RuntimeStore};
use crate::workload::validate;

mod bundle;
mod cluster;
mod fleet;
mod settings;
#[cfg(test)]
mod tests;
mod workload;

pub use bundle::{BundleArgs, BundleCommand};
pub use cluster::*;
pub use fleet::*;
use settings::http_url;
pub use workload::*;

/// Take a Spin application to Azure Kubernetes Service: no Docker, no az, no kubectl.
#[derive(Debug, Parser)]
#[command(name = "spin-aks", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
    /// The subcommand's words joined by `-` (`push`, `cluster-install`): the name of its JSON schema.
    #[arg(skip)]
    pub command_name: String,
}

impl Cli {
    /// Parses the command line; run by Spin as its `aks` plugin (SPIN_VERSION and SPIN_BIN_PATH
    /// set), usage and errors read `spin aks …`.
    pub fn parse_invocation() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let mut command = Cli::command();
        if std::env::var_os("SPIN_VERSION").is_some() && std::env::var_os("SPIN_BIN_PATH").is_some()
        {
            command = command.bin_name("spin aks");
        }
        let matches = command.get_matches();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let mut words = Vec::new();
        let mut level = &matches;
        while let Some((name, sub)) = level.subcommand() {
            words.push(name);
            level = sub;
        }
        cli.command_name = words.join("-");
        cli
    }
}

/// The value parser of a flag whose value may hold a secret (`--secret`, `--kv-store`,
/// `--sqlite`): a refusal names the flag and the problem but never the value, which clap's own
/// "invalid value '…'" would repeat. The wrapped parser's message must not repeat it either.
fn redacted<T>(parse: fn(&str) -> Result<T, String>) -> Unechoed<T> {
    Unechoed {
        parse,
        note: " (its value is not shown: it may hold a secret)",
    }
}

/// The value parser of an image or repository flag (`--image`, `--repository`, `--with-deploy`):
/// the reference parser's own message shows the value with any `user:password@` hidden, so
/// clap's "invalid value '…'", which would show it whole, is left out.
fn reference<T>(parse: fn(&str) -> Result<T, String>) -> Unechoed<T> {
    Unechoed { parse, note: "" }
}

/// A value parser whose refusal is `invalid --<flag><note>: <why>`, never clap's message with
/// the raw value in it.
#[derive(Clone)]
struct Unechoed<T> {
    parse: fn(&str) -> Result<T, String>,
    note: &'static str,
}

impl<T: Clone + Send + Sync + 'static> clap::builder::TypedValueParser for Unechoed<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        parse_unechoed(self.parse, self.note, cmd, arg, value)
    }
}

/// Runs `parse` on a flag's value; a refusal is `invalid --<flag><note>: <why>`, never clap's
/// message with the raw value in it.
fn parse_unechoed<T>(
    parse: fn(&str) -> Result<T, String>,
    note: &str,
    cmd: &clap::Command,
    arg: Option<&clap::Arg>,
    value: &std::ffi::OsStr,
) -> Result<T, clap::Error> {
    let flag = arg
        .and_then(clap::Arg::get_long)
        .map_or_else(|| "a flag".to_string(), |long| format!("--{long}"));
    let refuse = |why: String| {
        let message = format!("invalid {flag}{note}: {why}\n");
        clap::Error::raw(clap::error::ErrorKind::ValueValidation, message).with_cmd(cmd)
    };
    let text = value
        .to_str()
        .ok_or_else(|| refuse("the value is not valid UTF-8".to_string()))?;
    parse(text).map_err(refuse)
}

/// `--image`: an image reference; the message hides credentials (see [`reference`]).
fn parse_image(value: &str) -> Result<ImageRef, String> {
    ImageRef::parse(value).map_err(|e| format!("{e:#}"))
}

/// The value parser of a flag whose values are the `A` enum's and whose field holds the domain
/// type `D` it converts into: the flag's names, docs and `--help` come from `A` alone.
fn converted<A, D>() -> clap::builder::MapValueParser<clap::builder::EnumValueParser<A>, fn(A) -> D>
where
    A: ValueEnum + Clone + Send + Sync + 'static,
    D: From<A> + Clone + Send + Sync + 'static,
{
    clap::builder::TypedValueParser::map(
        clap::builder::EnumValueParser::<A>::new(),
        D::from as fn(A) -> D,
    )
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
    #[arg(long, global = true, value_parser = converted::<OutputArg, OutputMode>(), default_value = "text")]
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
    Export(Box<ExportArgs>),
    /// Build (unless given a layout or archive) and push the image to a registry
    Push(PushArgs),
    /// Write deployment files (plain YAML, Kustomize or Helm, and a Dockerfile); re-runs keep your edits
    Scaffold(Box<ScaffoldArgs>),
    /// Server-side apply the app's objects to a cluster and wait until the pods run the image
    Apply(Box<ApplyArgs>),
    /// Build, push, apply, wait and print where the app answers: each step skipped when unchanged
    Up(Box<UpArgs>),
    /// Deploy the app, then redeploy on every saved change (build commands of changed components, new layers only), streaming its logs, until Ctrl-C
    Dev(Box<DevArgs>),
    /// What runs: image digest, ready/desired replicas, endpoint, conditions
    Status(StatusArgs),
    /// Print the app's logs (`--follow` to keep streaming)
    Logs(LogsArgs),
    /// Serve the app on http://127.0.0.1:<port> through the API server, without kubectl
    PortForward(PortForwardArgs),
    /// Delete the objects apply created for this app, nothing else
    Delete(DeleteArgs),
    /// Choose the AKS cluster and registry, get credentials, attach a registry
    Cluster(ClusterArgs),
    /// Give the app an Azure workload identity: managed identity, federated credential, data roles
    Identity(IdentityArgs),
    /// Write the app's secret variables to Azure Key Vault, and list what the vault holds
    Secrets(SecretsArgs),
    /// Publish the app's deploy objects (image pinned by digest, no Secrets) as a Flux OCI artifact beside its image
    Publish(Box<PublishArgs>),
    /// Clusters that follow the app's deploy artifact through Flux: add, remove, status
    Fleet(Box<FleetArgs>),
    /// Point one environment's deploy artifact tag at another's digest, once its clusters converged
    Promote(PromoteArgs),
    /// Check an image's Notary Project signature against trusted certificates (in a registry, or offline in an oci-archive) and list its SBOM and provenance
    Verify(Box<VerifyArgs>),
    /// Carry the app and the platform it runs on (SpinKube, Flux, the shim) into a closed network: create, inspect, push
    Bundle(Box<BundleArgs>),
    /// Print a completion script for a shell (e.g. `spin-aks completions bash > /etc/bash_completion.d/spin-aks`)
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a directory
    #[command(hide = true)]
    Man(ManArgs),
}

/// `--output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputArg {
    Text,
    Json,
}

impl From<OutputArg> for OutputMode {
    fn from(arg: OutputArg) -> Self {
        match arg {
            OutputArg::Text => OutputMode::Text,
            OutputArg::Json => OutputMode::Json,
        }
    }
}

/// `--format`: which OCI shape to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ImageFormatArg {
    /// The Spin OCI artifact (`spin registry push` format): one layer per wasm and file
    Spin,
    /// A plain `wasi/wasm` image with /spin.toml, as a `FROM scratch` Dockerfile builds
    Image,
}

impl From<ImageFormatArg> for ImageFormat {
    fn from(arg: ImageFormatArg) -> Self {
        match arg {
            ImageFormatArg::Spin => ImageFormat::Spin,
            ImageFormatArg::Image => ImageFormat::Image,
        }
    }
}

/// `--auth`: where `push` takes registry credentials from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuthArg {
    /// Azure for `*.azurecr.io`/`.cn`/`.us`, the Docker config for other registries
    Auto,
    /// Entra credentials exchanged for an ACR refresh token
    Azure,
    /// The Docker config: `auths`, `credHelpers`, `credsStore`
    Docker,
    /// No credentials
    Anonymous,
}

impl From<AuthArg> for AuthMode {
    fn from(arg: AuthArg) -> Self {
        match arg {
            AuthArg::Auto => AuthMode::Auto,
            AuthArg::Azure => AuthMode::Azure,
            AuthArg::Docker => AuthMode::Docker,
            AuthArg::Anonymous => AuthMode::Anonymous,
        }
    }
}

/// `--type`: the renderer scaffold uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RenderTypeArg {
    /// Plain multi-document YAML
    Kube,
    /// A Kustomize base and an overlay that sets the image and namespace
    Kustomize,
    /// A Helm chart
    Helm,
}

impl From<RenderTypeArg> for RenderType {
    fn from(arg: RenderTypeArg) -> Self {
        match arg {
            RenderTypeArg::Kube => RenderType::Kube,
            RenderTypeArg::Kustomize => RenderType::Kustomize,
            RenderTypeArg::Helm => RenderType::Helm,
        }
    }
}

/// `--workload`: what runs the app in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WorkloadArg {
    /// A SpinKube SpinApp; the operator creates the Deployment and Service
    Spinapp,
    /// A Deployment on the wasmtime-spin-v2 RuntimeClass and a Service (no SpinKube needed)
    Deployment,
}

impl From<WorkloadArg> for WorkloadKind {
    fn from(arg: WorkloadArg) -> Self {
        match arg {
            WorkloadArg::Spinapp => WorkloadKind::Spinapp,
            WorkloadArg::Deployment => WorkloadKind::Deployment,
        }
    }
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    /// Image format: the Spin OCI artifact, or a plain wasi/wasm image
    #[arg(long, value_parser = converted::<ImageFormatArg, ImageFormat>(), default_value = "spin")]
    pub format: ImageFormat,
    /// Never run `spin build`, even when a component's wasm is missing or stale
    #[arg(long)]
    pub skip_spin_build: bool,
    /// The containerd-shim-spin release the cluster runs; features it lacks are warned about
    #[arg(long, value_name = "VERSION", default_value = crate::app::compat::DEFAULT_TARGET_SHIM)]
    pub shim_version: String,
    /// The SBOM attached to the image as a referrer: CycloneDX 1.6 JSON, or none
    #[arg(long, value_name = "FORMAT", default_value = "cyclonedx", value_parser = ["cyclonedx", "none"])]
    pub sbom: String,
    /// The build provenance attached to the image as a referrer: an in-toto statement with a SLSA v1 predicate, or none
    #[arg(long, value_name = "FORMAT", default_value = "slsa", value_parser = ["slsa", "none"])]
    pub provenance: String,
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
    #[command(flatten)]
    pub sign: SignArgs,
    /// The archive to write (default `<app dir>/<app>-<version>.oci.tar`)
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also carry the deploy artifact, its objects running the image from this repository (where the image will be pushed on the other side)
    #[arg(long, value_name = "REPOSITORY", value_parser = reference(parse_repository))]
    pub with_deploy: Option<RegistryRef>,
    /// With --with-deploy: the deploy artifact's tag (an environment, repeatable; default `latest`)
    #[arg(long = "env", value_name = "ENV", requires = "with_deploy", value_parser = validate::parse_dns_label)]
    pub envs: Vec<String>,
    #[command(flatten)]
    pub objects: ObjectArgs,
}

/// Flags that only shape a build, meaningless when pushing an existing layout or archive.
const BUILD_ONLY: [&str; 3] = ["format", "skip_spin_build", "shim_version"];

#[derive(Debug, Args)]
pub struct PushArgs {
    /// `registry/repository[:tag]` (default: the app's last push; tag default: the app version)
    #[arg(value_name = "REFERENCE")]
    pub reference: Option<String>,
    /// Push this OCI image layout instead of building
    #[arg(long, value_name = "DIR", conflicts_with = "from_archive", conflicts_with_all = BUILD_ONLY)]
    pub from_layout: Option<PathBuf>,
    /// Push this oci-archive (as written by `export`) instead of building
    #[arg(long, value_name = "FILE", conflicts_with_all = BUILD_ONLY)]
    pub from_archive: Option<PathBuf>,
    #[command(flatten)]
    pub image: ImageArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub sign: SignArgs,
    /// Also publish the app's deploy objects as a Flux OCI artifact (`<repository>-deploy:<env>`, as `publish` does)
    #[arg(long)]
    pub publish: bool,
    /// With --publish (or `up --fleet`): the deploy artifact's tag, an environment (repeatable; default `latest`)
    #[arg(long = "env", value_name = "ENV", value_parser = validate::parse_dns_label)]
    pub envs: Vec<String>,
}

/// Signing what is pushed or exported: push, up, publish and export share these.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Sign the image and its provenance (Notary Project signatures) with KEY: a PEM private key file, or an Azure Key Vault key URL (https://NAME.vault.azure.net/keys/KEY[/VERSION]); remembered for the app, `none` stops signing
    #[arg(long, value_name = "KEY")]
    pub sign: Option<String>,
    /// The signing key's PEM certificate chain, leaf first (default: the certificates in the key file, or the Key Vault certificate's)
    #[arg(long, value_name = "FILE", requires = "sign")]
    pub sign_cert: Option<PathBuf>,
}

impl SignArgs {
    pub fn settings(&self) -> anyhow::Result<crate::attest::signing::Signing> {
        use crate::attest::signing::{SignSettings, Signing};
        Ok(match self.sign.as_deref() {
            None => Signing::Remembered,
            Some("none") => Signing::Off,
            Some(key) => Signing::With(SignSettings::new(key, self.sign_cert.clone())?),
        })
    }
}

/// How to talk to a registry: push, publish and promote share these.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Talk HTTP instead of HTTPS to the registry
    #[arg(long)]
    pub plain_http: bool,
    /// Trust the CA certificates in this PEM file too
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Blobs uploaded at once
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// How long each blob (and the manifest) may keep retrying transient failures
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = humantime::parse_duration)]
    pub retry_budget: std::time::Duration,
    /// Where credentials come from (auto: Azure for *.azurecr.io/.cn/.us, else the Docker config)
    #[arg(long, value_parser = converted::<AuthArg, AuthMode>(), default_value = "auto")]
    pub auth: AuthMode,
}

/// Which cluster and namespace, like kubectl.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The kubeconfig file (else `KUBECONFIG`, a list of files merged, else `~/.kube/config`)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (else the one this app last used, else the current context)
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace (else the one this app last used, else the context's, else `default`)
    #[arg(short = 'n', long, value_name = "NS", value_parser = validate::parse_dns_label)]
    pub namespace: Option<String>,
    /// An AKS cluster instead of a kubeconfig: credentials come from ARM, in memory
    #[command(flatten)]
    pub aks: AksClusterArgs,
}

/// `--dry-run`: whether the server persists the apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    /// Apply for real
    #[default]
    None,
    /// Send everything with dryRun=All: validated and defaulted by the server, nothing persisted
    Server,
}

/// `--expose`: how the app is reached from outside the cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ExposeKind {
    /// No public endpoint; use `spin-aks port-forward`
    #[default]
    None,
    /// A Service of type LoadBalancer
    Loadbalancer,
    /// An Ingress for the AKS application routing add-on (needs --host)
    Ingress,
}

/// The flags of apply that up shares: objects, target, wait and endpoint.
#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Apply the objects in this directory (plain YAML, a Kustomize directory, or a Helm chart)
    /// instead of `<app dir>/deploy` or the generated ones
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// `server`: the API server validates and admits everything but persists nothing
    #[arg(long, value_enum, default_value_t = DryRun::None)]
    pub dry_run: DryRun,
    /// Print a unified diff of the live objects against the result (Secret values redacted)
    #[arg(long)]
    pub diff: bool,
    /// Take fields another field manager owns
    #[arg(long)]
    pub force_conflicts: bool,
    /// Delete objects this app applied before and no longer generates
    #[arg(long)]
    pub prune: bool,
    /// Return after applying, without waiting for the rollout
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the rollout (and the endpoint address)
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Make the app reachable: a LoadBalancer Service or an Ingress
    #[arg(long, value_enum, default_value_t = ExposeKind::None)]
    pub expose: ExposeKind,
    /// The host name of the Ingress (with --expose ingress)
    #[arg(long, value_name = "HOST", value_parser = validate::parse_dns_subdomain)]
    pub host: Option<String>,
    /// A secret variable's value: `NAME=VALUE`, `NAME=@FILE`, or `NAME` (from env `SPIN_VARIABLE_<NAME>`)
    #[arg(long = "secret", value_name = "NAME[=VALUE|=@FILE]", value_parser = redacted(SecretArg::parse))]
    pub secrets: Vec<SecretArg>,
    /// How to reach an AKS API server: directly, or through AKS run command (the default for private clusters)
    #[arg(long, value_enum, default_value_t = ViaArg::Auto)]
    pub via: ViaArg,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub verify: DeployVerifyArgs,
}

/// `--via`: the route to an AKS cluster's API server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ViaArg {
    /// Run command when the API server is private, else directly
    #[default]
    Auto,
    /// The API server's address, like kubectl
    Api,
    /// AKS run command: kubectl runs in the cluster, spin-aks talks only to ARM
    RunCommand,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The image (default: this app's last push, pinned by digest)
    #[arg(long, value_name = "REF", value_parser = reference(parse_image))]
    pub image: Option<ImageRef>,
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// How to reach the image's registry, with --verify
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// The certificates a signature must chain to and the identity that must have signed.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// A certificate to trust, the signers' root or intermediate CA: PEM or DER (repeatable)
    #[arg(long = "trust-cert", value_name = "FILE")]
    pub trust_certs: Vec<PathBuf>,
    /// The signing identity to require, in Notation's x509.subject form (`C=US,ST=WA,O=Example,CN=Signer`)
    #[arg(long, value_name = "DN", value_parser = reference(parse_subject))]
    pub subject: Option<String>,
}

/// `--verify` of up and apply: nothing is deployed unless its signature verifies.
#[derive(Debug, Args)]
pub struct DeployVerifyArgs {
    /// Refuse to deploy an image whose Notary Project signature does not verify against --trust-cert (remembered for the app)
    #[arg(long)]
    pub verify: bool,
    /// Stop verifying this app's images (forgets a remembered --verify)
    #[arg(long, conflicts_with = "verify")]
    pub no_verify: bool,
    #[command(flatten)]
    pub trust: TrustArgs,
}

/// `--verify` of fleet add: each cluster's Flux refuses a deploy artifact that does not verify.
#[derive(Debug, Args)]
pub struct FleetVerifyArgs {
    /// Each cluster's Flux verifies the deploy artifact's Notary Project signature against --trust-cert and refuses it when it does not verify (remembered for the app, as by `up --verify`; not on aks: clusters)
    #[arg(long)]
    pub verify: bool,
    /// Stop verifying this app's deploy artifact and images (forgets a remembered --verify)
    #[arg(long, conflicts_with = "verify")]
    pub no_verify: bool,
    #[command(flatten)]
    pub trust: TrustArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The image, `registry/repository:tag` or `…@sha256:…`; with --archive, the image's name in the archive (default: its one image)
    #[arg(value_name = "IMAGE", required_unless_present = "archive")]
    pub image: Option<String>,
    /// Verify the image in this oci-archive (as `export` writes it) instead: no network
    #[arg(long, value_name = "FILE")]
    pub archive: Option<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub push: PushArgs,
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// When the cluster cannot run SpinApps, install SpinKube (`cluster install`) without asking
    #[arg(long)]
    pub install_spinkube: bool,
    /// Publish the deploy artifact (`--env` tags) instead of applying, then wait until every cluster of the app's fleet following those tags converged (`--timeout`)
    #[arg(long, conflicts_with_all = ["dry_run", "diff", "prune", "force_conflicts", "expose", "install_spinkube", "secrets", "verify", "no_verify", "trust_certs", "subject"])]
    pub fleet: bool,
    #[command(flatten)]
    pub install_sources: InstallSourceArgs,
}

#[derive(Debug, Args)]
pub struct DevArgs {
    #[command(flatten)]
    pub push: PushArgs,
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// How long the files must be quiet after a change before a round starts [default: 100ms, as `spin watch`, cut to 10ms once every changed file is closed after writing, renamed into place or removed]
    #[arg(long, value_name = "DURATION", value_parser = parse_debounce)]
    pub debounce: Option<std::time::Duration>,
    /// Do not stream the app's logs between rounds
    #[arg(long)]
    pub no_logs: bool,
    /// When watching stops (Ctrl-C), delete what was applied (default: the app keeps running)
    #[arg(long)]
    pub delete_on_exit: bool,
}

/// What shapes the published objects: the same as apply's.
#[derive(Debug, Args)]
pub struct ObjectArgs {
    /// The objects in this directory (plain YAML or a Kustomize directory) instead of `<app dir>/deploy` or the generated ones
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub workload: WorkloadArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// How to reach an AKS API server: directly, or through AKS run command (the default for private clusters)
    #[arg(long, value_enum, default_value_t = ViaArg::Auto)]
    pub via: ViaArg,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Keep streaming new lines (long form only: `-f` is the global `--from`)
    #[arg(long)]
    pub follow: bool,
    /// Only lines newer than this, e.g. `10m`
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub since: Option<std::time::Duration>,
    /// Lines from the end of each pod's log to start with
    #[arg(long, value_name = "N")]
    pub tail: Option<i64>,
}

#[derive(Debug, Args)]
pub struct PortForwardArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The local port (0 picks a free one)
    #[arg(long, value_name = "LOCAL", default_value_t = 8080)]
    pub port: u16,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Send the deletes with dryRun=All
    #[arg(long, value_enum, default_value_t = DryRun::None)]
    pub dry_run: DryRun,
    /// How to reach an AKS API server: directly, or through AKS run command (the default for private clusters)
    #[arg(long, value_enum, default_value_t = ViaArg::Auto)]
    pub via: ViaArg,
}

/// A repository without tag or digest, `registry/name`.
fn parse_repository(value: &str) -> Result<RegistryRef, String> {
    let reference = RegistryRef::parse(value).map_err(|e| format!("{e:#}"))?;
    if reference.tag().is_some() || reference.digest().is_some() {
        return Err(format!(
            "`{value}` names a tag or digest; give the repository only (tags come from --env)"
        ));
    }
    Ok(reference)
}

/// `--subject`: a signing identity in Notation's `x509.subject` form.
fn parse_subject(value: &str) -> Result<String, String> {
    crate::attest::notation::parse_subject(value).map(|_| value.to_string())
}

/// A duration Flux accepts (`1m`, `30s`): whole seconds, at least one.
fn parse_flux_duration(value: &str) -> Result<std::time::Duration, String> {
    let duration = humantime::parse_duration(value).map_err(|e| format!("`{value}`: {e}"))?;
    if duration.as_secs() == 0 || duration.subsec_nanos() != 0 {
        return Err(format!("`{value}` must be whole seconds, at least 1s"));
    }
    Ok(duration)
}

/// `dev --debounce`: more than zero, at most 10s.
fn parse_debounce(value: &str) -> Result<std::time::Duration, String> {
    let duration = humantime::parse_duration(value).map_err(|e| format!("`{value}`: {e}"))?;
    if duration.is_zero() || duration > std::time::Duration::from_secs(10) {
        return Err(format!(
            "`{value}` must be more than 0 and at most 10s (e.g. 100ms)"
        ));
    }
    Ok(duration)
}

// ---- Flags into validated settings: the one place each command's flags are checked and turned
// into the pipeline's types (the pipeline never sees clap).
