//! The command-line contract of docs/cli.md: global flags and one struct per command.
//! Only parsing lives here; `commands` turns these into pipeline calls.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::azure::choose::ClusterSelector;
use crate::azure::names;
use crate::azure::vault::Vault;
use crate::cluster::secrets::SecretArg;
use crate::kube::key_vault::KeyVaultMode;
use crate::kube::objects::{self, WorkloadKind};
use crate::kube::render::RenderType;
use crate::kube::runtime_config::{self, Store};
use crate::kube::validate;
use crate::oci::reference::{ImageRef, RegistryRef};
use crate::oci::ImageFormat;
use crate::output::OutputMode;
use crate::registry::auth::AuthMode;

mod bundle;
pub use bundle::{BundleArgs, BundleCommand};

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

#[derive(Debug, Args)]
pub struct ScaffoldArgs {
    /// What to write: plain YAML, a Kustomize base and overlay, or a Helm chart [default: kube]
    #[arg(long = "type", value_parser = converted::<RenderTypeArg, RenderType>(), value_name = "TYPE")]
    pub render_type: Option<RenderType>,
    /// The output directory (default `<app dir>/deploy`)
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The image reference, `[registry/]repository[:tag][@sha256:…]` (default `<app>:<version>`)
    #[arg(long, value_name = "REF", value_parser = reference(parse_image))]
    pub image: Option<ImageRef>,
    /// Also write a `FROM scratch` Dockerfile and .dockerignore into the app directory
    #[arg(long)]
    pub dockerfile: bool,
    /// The namespace of the objects (the Kustomize overlay sets it)
    #[arg(long, value_name = "NS", value_parser = validate::parse_dns_label)]
    pub namespace: Option<String>,
    /// On conflicting edits, take the newly generated values
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// The Kustomize overlay directory name
    #[arg(long, value_name = "ENV", default_value = "production", value_parser = validate::parse_dns_label)]
    pub overlay: String,
}

/// The flags that shape the workload objects, shared by scaffold, apply and up.
#[derive(Debug, Args)]
pub struct WorkloadArgs {
    /// What runs the app: a SpinKube SpinApp, or a Deployment and Service [default: spinapp]
    #[arg(long = "workload", value_parser = converted::<WorkloadArg, WorkloadKind>())]
    pub kind: Option<WorkloadKind>,
    /// Replicas (the minimum with --autoscale)
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(1..))]
    pub replicas: i32,
    /// RuntimeClass of a `--workload deployment` pod
    #[arg(long, value_name = "NAME", default_value = objects::DEFAULT_RUNTIME_CLASS, value_parser = validate::parse_dns_label)]
    pub runtime_class: String,
    /// Read secret and required variables from this Azure Key Vault (`https://<vault>.vault.azure.net/`; default: the app's remembered vault)
    #[arg(long, value_name = "URL", value_parser = Vault::parse)]
    pub key_vault: Option<Vault>,
    /// How pods get the vault's secrets: `csi` syncs each mapped secret (`api_key` ← `api-key`) through the Secrets Store CSI driver; `provider` is Spin's own provider, which looks up every variable under its own name
    #[arg(long, value_parser = converted::<KeyVaultModeArg, KeyVaultMode>(), default_value = "csi", value_name = "MODE")]
    pub key_vault_mode: KeyVaultMode,
    /// The client id of the workload identity that reads the vault (default: the one `identity setup` made)
    #[arg(long, value_name = "GUID", value_parser = validate::parse_guid)]
    pub identity_client_id: Option<String>,
    /// The Entra tenant of that identity (default: the one `identity setup` made)
    #[arg(long, value_name = "GUID", value_parser = validate::parse_guid)]
    pub tenant_id: Option<String>,
    /// The pod's service account (with Key Vault: the one federated with the identity; default: the app's name)
    #[arg(long, value_name = "NAME", value_parser = validate::parse_dns_subdomain)]
    pub service_account: Option<String>,
    /// A key-value store: `<label>=redis:<url>` or `<label>=cosmos:<account>/<database>/<container>` (repeatable)
    #[arg(long = "kv-store", value_name = "LABEL=BACKEND", value_parser = redacted(runtime_config::parse_kv_store))]
    pub kv_stores: Vec<Store>,
    /// A SQLite database: `<label>=libsql:<url>` (repeatable)
    #[arg(long = "sqlite", value_name = "LABEL=BACKEND", value_parser = redacted(runtime_config::parse_sqlite))]
    pub sqlite: Vec<Store>,
    /// CPU limit, e.g. `500m`
    #[arg(long, value_name = "QUANTITY", value_parser = validate::parse_quantity)]
    pub cpu_limit: Option<String>,
    /// Memory limit, e.g. `128Mi`
    #[arg(long, value_name = "QUANTITY", value_parser = validate::parse_quantity)]
    pub memory_limit: Option<String>,
    /// CPU request, e.g. `100m`
    #[arg(long, value_name = "QUANTITY", value_parser = validate::parse_quantity)]
    pub cpu_request: Option<String>,
    /// Memory request, e.g. `64Mi`
    #[arg(long, value_name = "QUANTITY", value_parser = validate::parse_quantity)]
    pub memory_request: Option<String>,
    /// Add a HorizontalPodAutoscaler from --replicas to --max-replicas on CPU (needs --cpu-limit or --cpu-request)
    #[arg(long)]
    pub autoscale: bool,
    /// The most replicas the autoscaler may run
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..), requires = "autoscale")]
    pub max_replicas: i32,
    /// Average CPU utilization (percent of the request) the autoscaler aims for
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(i32).range(1..=100), requires = "autoscale")]
    pub autoscaler_target_cpu_utilization: i32,
    /// HTTP path for readiness and liveness probes, e.g. `/health`
    #[arg(long, value_name = "PATH", value_parser = validate::parse_http_path)]
    pub health_path: Option<String>,
    /// A Secret for pulling the image (repeatable)
    #[arg(long = "image-pull-secret", value_name = "NAME", value_parser = validate::parse_dns_subdomain)]
    pub image_pull_secrets: Vec<String>,
}

/// `--key-vault-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyVaultModeArg {
    Csi,
    Provider,
}

impl From<KeyVaultModeArg> for KeyVaultMode {
    fn from(arg: KeyVaultModeArg) -> Self {
        match arg {
            KeyVaultModeArg::Csi => KeyVaultMode::Csi,
            KeyVaultModeArg::Provider => KeyVaultMode::Provider,
        }
    }
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
    #[arg(long, value_enum, default_value_t = Via::Auto)]
    pub via: Via,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub verify: DeployVerifyArgs,
}

/// `--via`: the route to an AKS cluster's API server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Via {
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
    /// How long the files must be quiet after a change before a round starts (`spin watch` waits 100ms)
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_debounce)]
    pub debounce: std::time::Duration,
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
pub struct PublishArgs {
    /// The image the objects run (default: this app's last push, pinned by digest)
    #[arg(long, value_name = "REF", value_parser = reference(parse_image))]
    pub image: Option<ImageRef>,
    /// The deploy artifact's repository, `registry/name` (default: `<image repository>-deploy`)
    #[arg(long, value_name = "REPOSITORY", value_parser = reference(parse_repository))]
    pub repository: Option<RegistryRef>,
    /// The tag to push, one per environment (repeatable; default `latest`)
    #[arg(long = "env", value_name = "ENV", value_parser = validate::parse_dns_label)]
    pub envs: Vec<String>,
    #[command(flatten)]
    pub objects: ObjectArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub sign: SignArgs,
}

#[derive(Debug, Args)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub command: FleetCommand,
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Make clusters (kubeconfig contexts) follow the app's deploy artifact: an OCIRepository and a Kustomization, applied server-side
    Add(Box<FleetAddArgs>),
    /// Stop clusters following the deploy artifact; the app keeps running unless --delete-app
    Remove(FleetRemoveArgs),
    /// For every cluster of the fleet: the revision Flux applied, whether the app runs the published image, and why not
    Status(FleetStatusArgs),
}

#[derive(Debug, Args)]
pub struct FleetAddArgs {
    /// The kubeconfig contexts to add
    #[arg(value_name = "CLUSTER", required = true)]
    pub clusters: Vec<String>,
    /// The kubeconfig file (else `KUBECONFIG`, a list of files merged, else `~/.kube/config`)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The namespace the app runs in on those clusters
    #[arg(short = 'n', long, value_name = "NS", default_value = "default", value_parser = validate::parse_dns_label)]
    pub namespace: String,
    /// The deploy artifact tag (environment) the clusters follow
    #[arg(long, value_name = "ENV", default_value = crate::publish::deploy::DEFAULT_ENV, value_parser = validate::parse_dns_label)]
    pub env: String,
    /// How often Flux looks for a new artifact and re-applies it
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_flux_duration)]
    pub interval: std::time::Duration,
    /// How long Flux's health checks may wait for the app to run the new image
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_flux_duration)]
    pub timeout: std::time::Duration,
    /// Flux pulls the artifact over plain HTTP (a registry without TLS; loopback registries always)
    #[arg(long)]
    pub insecure: bool,
    /// A secret variable's value, written into each cluster's Secret: `NAME=VALUE`, `NAME=@FILE`, or `NAME` (from env `SPIN_VARIABLE_<NAME>`)
    #[arg(long = "secret", value_name = "NAME[=VALUE|=@FILE]", value_parser = redacted(SecretArg::parse))]
    pub secrets: Vec<SecretArg>,
    #[command(flatten)]
    pub objects: ObjectArgs,
    #[command(flatten)]
    pub verify: FleetVerifyArgs,
    /// Where a cluster without Flux's source- or kustomize-controller gets them: a mirror `spin-aks
    /// bundle push` filled (`host[:port][/path]`; plain HTTP with --insecure or on loopback; not for AKS)
    #[arg(long, value_name = "REGISTRY")]
    pub mirror: Option<String>,
}

#[derive(Debug, Args)]
pub struct FleetRemoveArgs {
    /// The kubeconfig contexts to remove from the fleet
    #[arg(value_name = "CLUSTER", required = true)]
    pub clusters: Vec<String>,
    /// The kubeconfig file (else `KUBECONFIG`, else `~/.kube/config`)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Also delete the app's objects Flux applied there (default: they keep running, unmanaged)
    #[arg(long)]
    pub delete_app: bool,
}

#[derive(Debug, Args)]
pub struct FleetStatusArgs {
    /// The kubeconfig file (else `KUBECONFIG`, else `~/.kube/config`)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Only the clusters following this tag (environment)
    #[arg(long, value_name = "ENV", value_parser = validate::parse_dns_label)]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The environment whose published digest moves on, given first: `promote staging --to prod`
    /// (`--from`, as for every command, names the app's spin.toml, not an environment)
    #[arg(value_name = "FROM_ENV", value_parser = validate::parse_dns_label)]
    pub from_env: Option<String>,
    /// The environment tag that gets it
    #[arg(long, value_name = "ENV", value_parser = validate::parse_dns_label)]
    pub to: String,
    /// The kubeconfig file for reading the `--from` clusters (else `KUBECONFIG`, else `~/.kube/config`)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Wait until the `--to` clusters converged, for at most this long
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub wait: Option<std::time::Duration>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// How to reach an AKS API server: directly, or through AKS run command (the default for private clusters)
    #[arg(long, value_enum, default_value_t = Via::Auto)]
    pub via: Via,
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
    #[arg(long, value_enum, default_value_t = Via::Auto)]
    pub via: Via,
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, ValueEnum};

    use super::*;

    #[test]
    fn every_command_has_unique_flags() {
        super::Cli::command().debug_assert();
    }

    /// Each flag value names the domain value it converts into (JSON reports and scaffold's
    /// prompts use the domain name).
    #[test]
    fn flag_values_name_their_domain_values() {
        fn names<A: ValueEnum, D: From<A>>(name: fn(D) -> String) -> Vec<(String, String)> {
            A::value_variants()
                .iter()
                .map(|a| {
                    let flag = a.to_possible_value().unwrap().get_name().to_string();
                    (flag, name(D::from(a.clone())))
                })
                .collect()
        }
        fn json<T: serde::Serialize>(value: T) -> String {
            serde_json::to_value(value)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        }
        let pairs = [
            names::<RenderTypeArg, RenderType>(|d| d.name().to_string()),
            names::<RenderTypeArg, RenderType>(json),
            names::<WorkloadArg, WorkloadKind>(|d| d.name().to_string()),
            names::<WorkloadArg, WorkloadKind>(json),
            names::<ImageFormatArg, ImageFormat>(json),
        ];
        for (flag, domain) in pairs.iter().flatten() {
            assert_eq!(flag, domain);
        }
    }
}

/// Which AKS cluster (flags beat the state file that `cluster use` writes).
#[derive(Clone, Debug, Default, Args)]
pub struct AksClusterArgs {
    /// The Azure subscription of the AKS cluster
    #[arg(long, env = "AZURE_SUBSCRIPTION_ID", value_name = "ID", value_parser = |v: &str| names::SUBSCRIPTION.parse(v).map_err(|rule| format!("{rule}; it comes from --subscription or AZURE_SUBSCRIPTION_ID")))]
    pub subscription: Option<String>,
    /// The resource group of the AKS cluster
    #[arg(long, value_name = "NAME", value_parser = |v: &str| names::RESOURCE_GROUP.parse(v))]
    pub resource_group: Option<String>,
    /// The AKS cluster name
    #[arg(long, value_name = "NAME", value_parser = |v: &str| names::CLUSTER.parse(v))]
    pub cluster: Option<String>,
}

impl AksClusterArgs {
    pub fn selector(&self) -> ClusterSelector {
        ClusterSelector {
            subscription: self.subscription.clone(),
            resource_group: self.resource_group.clone(),
            cluster: self.cluster.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Choose the AKS cluster (and registry) later commands target, and remember them
    Use(ClusterUseArgs),
    /// Merge the cluster's context into a kubeconfig file (Entra users run `spin-aks cluster token`)
    GetCredentials(GetCredentialsArgs),
    /// Print an ExecCredential with a token for the AKS API server (the kubeconfig exec plugin)
    Token(TokenArgs),
    /// Let the cluster's kubelet identity pull from a container registry (AcrPull)
    AttachAcr(AttachAcrArgs),
    /// Can this cluster run this app? One line per check with its fix (exit 1 when one fails)
    Check(ClusterCheckArgs),
    /// Make the cluster able to run Spin apps: SpinKube's charts through Flux's helm-controller,
    /// the operator's CRDs, the shim on labelled nodes (pinned versions; a re-run changes nothing)
    Install(ClusterInstallArgs),
    /// Remove what `cluster install` put on the cluster (refused while SpinApps run, unless --force)
    Uninstall(ClusterUninstallArgs),
    /// Create an AKS cluster ready for Spin apps (resource group, Azure Linux nodes labelled for
    /// the shim, OIDC issuer, workload identity, app routing, a registry attached), then install
    /// SpinKube; a re-run changes only what differs
    Create(Box<ClusterCreateArgs>),
    /// Delete an AKS cluster `cluster create` made (asks first; `-y` answers yes)
    Delete(ClusterDeleteArgs),
}

#[derive(Debug, Args)]
pub struct ClusterCreateArgs {
    /// The Azure region (default: the resource group's, when it exists)
    #[arg(long, short = 'l', value_name = "REGION")]
    pub location: Option<String>,
    /// Nodes in the cluster's (system) pool
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub node_count: u32,
    /// The nodes' VM size
    #[arg(long, value_name = "SIZE", default_value = "Standard_D2s_v5")]
    pub node_vm_size: String,
    /// The Kubernetes version (default: AKS's default)
    #[arg(long, value_name = "VERSION")]
    pub kubernetes_version: Option<String>,
    /// The registry the nodes pull from: an existing one by name or login server, or a new one's
    /// name (default: the remembered or only registry of the subscription, else `<cluster>acr`)
    #[arg(long, value_name = "NAME")]
    pub registry: Option<String>,
    /// The SKU of a registry created
    #[arg(long, value_name = "SKU", default_value = "Basic")]
    pub registry_sku: String,
    /// Create the cluster only; install SpinKube later with `spin-aks cluster install`
    #[arg(long)]
    pub no_install: bool,
    /// The cluster (`--cluster`, `--resource-group`, `--subscription`) and the install's flags
    /// (`--dry-run` plans the whole creation and writes nothing)
    #[command(flatten)]
    pub install: ClusterInstallArgs,
}

#[derive(Debug, Args)]
pub struct ClusterDeleteArgs {
    #[command(flatten)]
    pub target: AksClusterArgs,
}

#[derive(Debug, Args)]
pub struct ClusterUninstallArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Uninstall even though SpinApps run (deleting the CRDs deletes them all)
    #[arg(long)]
    pub force: bool,
    /// How long each part may take to clean up
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

/// Where `cluster install` (and `up --install-spinkube`) take SpinKube's parts from.
#[derive(Debug, Args)]
pub struct InstallSourceArgs {
    /// Take every chart from this OCI registry (`host[:port][/path]`, e.g. your ACR) instead of
    /// their publishers' (for private and air-gapped clusters)
    #[arg(long, value_name = "REGISTRY")]
    pub chart_registry: Option<String>,
    /// The Go module proxy (or a mirror of it) the operator's CRDs (and Flux's, where Flux is
    /// installed) come from
    #[arg(long, value_name = "URL", default_value = crate::install::crds::DEFAULT_PROXY)]
    pub module_proxy: String,
    /// Where the nodes pull Flux's controller images from, where the cluster has no Flux
    /// (`host[:port][/path]`, images `<REGISTRY>/source-controller:<version>`; e.g. your ACR)
    #[arg(long, value_name = "REGISTRY", default_value = crate::install::flux::DEFAULT_REGISTRY)]
    pub flux_registry: String,
    /// Take everything from this registry, as `spin-aks bundle push` loaded it (`host[:port][/path]`;
    /// for air-gapped clusters): charts, every image by digest, the CRDs, Flux and the shim
    #[arg(long, value_name = "REGISTRY", conflicts_with_all = ["chart_registry", "module_proxy", "flux_registry"])]
    pub mirror: Option<String>,
}

#[derive(Debug, Args)]
pub struct ClusterInstallArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// cert-manager release [default: 1.20.0]
    #[arg(long, value_name = "VERSION")]
    pub cert_manager_version: Option<String>,
    /// runtime-class-manager release [default: 0.2.0]
    #[arg(long, value_name = "VERSION")]
    pub runtime_class_manager_version: Option<String>,
    /// spin-operator release [default: 0.6.1]
    #[arg(long, value_name = "VERSION")]
    pub spin_operator_version: Option<String>,
    /// containerd-shim-spin release the nodes get [default: 0.25.1]
    #[arg(long, value_name = "VERSION")]
    pub shim_version: Option<String>,
    #[command(flatten)]
    pub sources: InstallSourceArgs,
    /// Talk plain HTTP to the chart registry and the module proxy (loopback ones always may)
    #[arg(long)]
    pub plain_http: bool,
    /// List what would be applied; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// How long each stage may take
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ClusterCheckArgs {
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub struct ClusterUseArgs {
    #[command(flatten)]
    pub target: AksClusterArgs,
    /// The container registry for images: its name or login server
    #[arg(long, value_name = "NAME")]
    pub registry: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetCredentialsArgs {
    #[command(flatten)]
    pub target: AksClusterArgs,
    /// The kubeconfig to merge into (default: KUBECONFIG's first file, else ~/.kube/config)
    #[arg(long, value_name = "KUBECONFIG")]
    pub file: Option<PathBuf>,
    /// Replace entries of the same name that differ
    #[arg(long)]
    pub overwrite_existing: bool,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The Entra application of the AKS API server
    #[arg(long, value_name = "ID", default_value = crate::azure::aks::AKS_SERVER_APP)]
    pub server_id: String,
}

#[derive(Debug, Args)]
pub struct AttachAcrArgs {
    #[command(flatten)]
    pub target: AksClusterArgs,
    /// The registry: its name or login server (default: the remembered one, else a choice)
    #[arg(long, value_name = "NAME")]
    pub registry: Option<String>,
}

#[derive(Debug, Args)]
pub struct IdentityArgs {
    #[command(subcommand)]
    pub command: IdentityCommand,
}

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Create or find the app's managed identity, federate it with a ServiceAccount of the AKS
    /// cluster, and let it read the Key Vault and use Cosmos DB accounts
    Setup(IdentitySetupArgs),
}

#[derive(Debug, Args)]
pub struct IdentitySetupArgs {
    #[command(flatten)]
    pub target: AksClusterArgs,
    /// The app's Key Vault: Key Vault Secrets User on it (default: the one remembered for the app)
    #[arg(long, value_name = "URL", value_parser = crate::azure::vault::Vault::parse)]
    pub key_vault: Option<crate::azure::vault::Vault>,
    /// A Cosmos DB account the app uses: Cosmos DB Built-in Data Contributor on it (repeatable)
    #[arg(long, value_name = "ACCOUNT")]
    pub cosmos: Vec<String>,
    /// The ServiceAccount the identity trusts (default: the app's name)
    #[arg(long, value_name = "NAME", value_parser = validate::parse_dns_subdomain)]
    pub service_account: Option<String>,
    /// The ServiceAccount's namespace (default: where the app was last applied, else `default`)
    #[arg(short = 'n', long, value_name = "NS", value_parser = validate::parse_dns_label)]
    pub namespace: Option<String>,
    /// The managed identity, in the cluster's resource group (default `<app>-identity`)
    #[arg(long, value_name = "IDENTITY", value_parser = |v: &str| names::IDENTITY.parse(v))]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct SecretsArgs {
    #[command(subcommand)]
    pub command: SecretsCommand,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Write a variable's value to Key Vault as a new version of its secret (`_` in the name becomes `-`)
    ///
    /// The value comes from --from-file, from --from-env, else from stdin when stdin is not a
    /// terminal (one trailing newline, `\n` or `\r\n`, is dropped), else from a hidden prompt.
    /// Never from an argument: it would land in the shell history.
    Set(SecretSetArgs),
    /// The vault's secret names (never values), and the app's secret and required variables it lacks
    List(SecretListArgs),
}

/// The vault of `secrets set` and `secrets list`.
#[derive(Debug, Args)]
pub struct KeyVaultArg {
    /// The Azure Key Vault, `https://<vault>.vault.azure.net/` (default: the one remembered for the app; a given one is remembered)
    #[arg(long, value_name = "URL", value_parser = Vault::parse)]
    pub key_vault: Option<Vault>,
}

#[derive(Debug, Args)]
pub struct SecretSetArgs {
    /// The Spin variable, as declared under [variables] in spin.toml
    #[arg(value_name = "VARIABLE")]
    pub variable: String,
    /// A value given as an argument: refused (kept only to refuse it without echoing it)
    #[arg(value_name = "VALUE", hide = true)]
    pub inline_value: Vec<String>,
    #[command(flatten)]
    pub vault: KeyVaultArg,
    /// Read the value from this file: its bytes as given (UTF-8 text), but one trailing newline (`\n` or `\r\n`) dropped
    #[arg(long, value_name = "FILE", conflicts_with = "from_env")]
    pub from_file: Option<PathBuf>,
    /// Read the value from this environment variable, exactly as set
    #[arg(long, value_name = "ENVVAR")]
    pub from_env: Option<String>,
}

#[derive(Debug, Args)]
pub struct SecretListArgs {
    #[command(flatten)]
    pub vault: KeyVaultArg,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `spin-aks.1` and `spin-aks-<command>.1` into this directory instead of printing
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
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

impl GlobalArgs {
    /// The app `--from` names and what the state file remembers for it.
    pub fn app_context(
        &self,
        out: &crate::output::Output,
    ) -> anyhow::Result<crate::context::AppContext> {
        crate::context::AppContext::load(&self.from, self.state_file.as_deref(), out)
    }

    /// The state file, read (for commands about clusters and registries, not one app).
    pub fn store(&self, out: &crate::output::Output) -> anyhow::Result<crate::context::Store> {
        crate::context::Store::load(self.state_file.as_deref(), out)
    }
}

impl TargetArgs {
    /// The target, reached directly (commands that only talk to the API server).
    pub fn settings(&self) -> crate::target::TargetSettings {
        crate::target::TargetSettings {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespace: self.namespace.clone(),
            aks: self.aks.selector(),
            via: crate::target::Via::Auto,
        }
    }

    /// The target, reached by the route `--via` asks for.
    pub fn settings_via(&self, via: Via) -> crate::target::TargetSettings {
        crate::target::TargetSettings {
            via: match via {
                Via::Auto => crate::target::Via::Auto,
                Via::Api => crate::target::Via::Api,
                Via::RunCommand => crate::target::Via::RunCommand,
            },
            ..self.settings()
        }
    }
}

impl WorkloadArgs {
    /// The workload settings; refuses combinations clap cannot express (an autoscaler that
    /// could not work).
    pub fn settings(&self) -> anyhow::Result<crate::deploy::workload::WorkloadSettings> {
        use crate::deploy::workload;
        let resources = objects::ResourceOptions {
            cpu_limit: self.cpu_limit.clone(),
            memory_limit: self.memory_limit.clone(),
            cpu_request: self.cpu_request.clone(),
            memory_request: self.memory_request.clone(),
        };
        let autoscale = self.autoscale.then_some(objects::Autoscale {
            max_replicas: self.max_replicas,
            target_cpu_utilization: self.autoscaler_target_cpu_utilization,
        });
        workload::check_autoscale(autoscale.as_ref(), self.replicas, &resources)?;
        Ok(workload::WorkloadSettings {
            kind: self.kind,
            replicas: self.replicas,
            runtime_class: self.runtime_class.clone(),
            key_vault: self.key_vault.clone(),
            key_vault_mode: self.key_vault_mode,
            identity_client_id: self.identity_client_id.clone(),
            tenant_id: self.tenant_id.clone(),
            service_account: self.service_account.clone(),
            kv_stores: self.kv_stores.clone(),
            sqlite: self
                .sqlite
                .iter()
                .cloned()
                .map(workload::with_env_token)
                .collect(),
            resources,
            autoscale,
            health_path: self.health_path.clone(),
            image_pull_secrets: self.image_pull_secrets.clone(),
        })
    }
}

impl DeployArgs {
    /// The deploy settings: the workload's, the exposure (`--host` only with an Ingress, which
    /// needs one) and the libsql tokens a runtime config would need.
    pub fn settings(&self) -> anyhow::Result<crate::deploy::Settings> {
        use crate::cluster::expose::Exposure;
        let workload = self.workload.settings()?;
        let exposure = match (self.expose, &self.host) {
            (ExposeKind::Ingress, Some(host)) => Exposure::Ingress { host: host.clone() },
            (ExposeKind::Ingress, None) => return Err(crate::bad_input!(
                "--expose ingress needs --host <HOST>, the name the app answers on (e.g. --host hello.example.com)"
            )),
            (_, Some(_)) => return Err(crate::bad_input!("--host is only used with --expose ingress")),
            (ExposeKind::Loadbalancer, None) => Exposure::LoadBalancer,
            (ExposeKind::None, None) => Exposure::None,
        };
        crate::deploy::workload::require_tokens(&workload)?;
        Ok(crate::deploy::Settings {
            target: self.target.settings_via(self.via),
            dir: self.dir.clone(),
            dry_run: self.dry_run == DryRun::Server,
            diff: self.diff,
            force_conflicts: self.force_conflicts,
            prune: self.prune,
            wait: !self.no_wait,
            timeout: self.timeout,
            exposure,
            secrets: self.secrets.clone(),
            workload,
        })
    }
}

impl ImageArgs {
    /// How to build: the target shim release must be one spin-aks knows.
    pub fn settings(&self) -> anyhow::Result<crate::build::BuildSettings> {
        Ok(crate::build::BuildSettings {
            format: self.format,
            skip_spin_build: self.skip_spin_build,
            target: crate::app::compat::target_shim(&self.shim_version)?,
            sbom: self.sbom != "none",
            provenance: self.provenance != "none",
        })
    }
}

impl PushArgs {
    /// The push settings: where the image comes from, the reference (checked now, before any
    /// build), transport and credentials.
    pub fn settings(&self) -> anyhow::Result<crate::publish::PushSettings> {
        use crate::publish::ImageSource;
        let source = match (&self.from_layout, &self.from_archive) {
            (Some(dir), _) => ImageSource::Layout(dir.clone()),
            (None, Some(file)) => ImageSource::Archive(file.clone()),
            (None, None) => ImageSource::Build(self.image.settings()?),
        };
        let reference = self
            .reference
            .as_deref()
            .map(RegistryRef::parse)
            .transpose()?;
        Ok(crate::publish::PushSettings {
            source,
            reference,
            registry: self.registry.settings(),
            sign: self.sign.settings()?,
        })
    }
}

impl RegistryArgs {
    /// Transport, parallelism, retry budget and credentials.
    pub fn settings(&self) -> crate::publish::RegistrySettings {
        crate::publish::RegistrySettings {
            transport: crate::registry::TransportOptions {
                plain_http: self.plain_http,
                ca_file: self.ca_file.clone(),
                max_connections: usize::from(self.jobs),
            },
            jobs: usize::from(self.jobs),
            retry_budget: self.retry_budget,
            auth: self.auth,
        }
    }
}

impl TrustArgs {
    pub fn settings(&self) -> crate::verify::TrustSettings {
        crate::verify::TrustSettings {
            certs: self.trust_certs.clone(),
            subject: self.subject.clone(),
        }
    }
}

impl DeployVerifyArgs {
    /// `--verify`, `--no-verify` or neither; the trust flags only with `--verify`.
    pub fn settings(&self) -> anyhow::Result<crate::verify::DeployVerify> {
        deploy_verify(self.verify, self.no_verify, &self.trust)
    }
}

impl FleetVerifyArgs {
    /// As `up`'s: `--verify`, `--no-verify` or neither; the trust flags only with `--verify`.
    pub fn settings(&self) -> anyhow::Result<crate::verify::DeployVerify> {
        deploy_verify(self.verify, self.no_verify, &self.trust)
    }
}

fn deploy_verify(
    verify: bool,
    no_verify: bool,
    trust: &TrustArgs,
) -> anyhow::Result<crate::verify::DeployVerify> {
    let trust = trust.settings();
    let given = !trust.certs.is_empty() || trust.subject.is_some();
    if given && !verify {
        return Err(crate::bad_input!(
            "--trust-cert and --subject say what --verify trusts: add --verify"
        ));
    }
    Ok(crate::verify::DeployVerify {
        verify: (verify || no_verify).then_some(verify),
        trust,
    })
}

impl VerifyArgs {
    /// The image (a registry reference, or a name in an archive), the trust (at least one
    /// certificate) and how to reach the registry.
    pub fn settings(&self) -> anyhow::Result<crate::verify::VerifySettings> {
        use crate::verify::Subject;
        let trust = self.trust.settings();
        if trust.certs.is_empty() {
            return Err(crate::bad_input!(
                "verify needs the certificates to trust: give --trust-cert FILE (the signers' root or intermediate CA certificate, PEM or DER; repeatable)"
            ));
        }
        let subject = match (&self.archive, &self.image) {
            (Some(file), image) => Subject::Archive {
                file: file.clone(),
                image: image.clone(),
            },
            (None, Some(image)) => Subject::Registry(RegistryRef::parse(image)?),
            (None, None) => unreachable!("clap requires IMAGE without --archive"),
        };
        Ok(crate::verify::VerifySettings {
            subject,
            trust,
            registry: self.registry.settings(),
        })
    }
}

impl ObjectArgs {
    /// Deploy settings that shape only the objects (no cluster is reached through them).
    pub fn settings(&self) -> anyhow::Result<crate::deploy::Settings> {
        let workload = self.workload.settings()?;
        crate::deploy::workload::require_tokens(&workload)?;
        Ok(crate::deploy::Settings {
            target: Default::default(),
            dir: self.dir.clone(),
            dry_run: false,
            diff: false,
            force_conflicts: false,
            prune: false,
            wait: false,
            timeout: std::time::Duration::from_secs(300),
            exposure: crate::cluster::expose::Exposure::None,
            secrets: Vec::new(),
            workload,
        })
    }

    /// The objects as publish makes them with every flag at its default (`push --publish`).
    pub fn defaults() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            objects: ObjectArgs,
        }
        let matches = Only::command().get_matches_from(["spin-aks"]);
        Only::from_arg_matches(&matches)
            .expect("the defaults of the object flags parse")
            .objects
    }
}

impl PublishArgs {
    pub fn settings(&self) -> anyhow::Result<crate::publish::deploy::PublishSettings> {
        Ok(crate::publish::deploy::PublishSettings {
            image: self.image.clone(),
            repository: self.repository.clone(),
            envs: self.envs.clone(),
            objects: self.objects.settings()?,
            registry: self.registry.settings(),
            sign: self.sign.settings()?,
        })
    }
}

impl PushArgs {
    /// The deploy artifact's settings (`--publish`, `up --fleet`): the `--env` tags, the objects
    /// shaped by `objects`.
    pub fn publish_settings(
        &self,
        objects: crate::deploy::Settings,
    ) -> anyhow::Result<crate::publish::deploy::PublishSettings> {
        Ok(crate::publish::deploy::PublishSettings {
            image: None,
            repository: None,
            envs: self.envs.clone(),
            objects,
            registry: self.registry.settings(),
            sign: self.sign.settings()?,
        })
    }
}

impl FleetAddArgs {
    pub fn settings(&self) -> anyhow::Result<crate::fleet::AddSettings> {
        Ok(crate::fleet::AddSettings {
            clusters: self.clusters.clone(),
            kubeconfig: self.kubeconfig.clone(),
            namespace: self.namespace.clone(),
            env: self.env.clone(),
            interval: self.interval,
            timeout: self.timeout,
            insecure: self.insecure,
            secrets: self.secrets.clone(),
            objects: self.objects.settings()?,
            verify: self.verify.settings()?,
            mirror: (self.mirror.as_deref())
                .map(|given| mirror_setting(given, self.insecure))
                .transpose()?,
        })
    }
}

impl FleetRemoveArgs {
    pub fn settings(&self) -> crate::fleet::RemoveSettings {
        crate::fleet::RemoveSettings {
            clusters: self.clusters.clone(),
            kubeconfig: self.kubeconfig.clone(),
            delete_app: self.delete_app,
        }
    }
}

impl PromoteArgs {
    /// The promote settings; `app` is the global `--from`. `promote --from staging --to prod`
    /// reads as "from staging" but names the app: it is refused with the command meant.
    pub fn settings(
        &self,
        app: &std::path::Path,
    ) -> anyhow::Result<crate::fleet::promote::PromoteSettings> {
        let mistaken = validate::parse_dns_label(&app.to_string_lossy()).is_ok()
            && std::fs::symlink_metadata(app).is_err();
        let from = match &self.from_env {
            Some(from) if !mistaken => from.clone(),
            _ => {
                let env = match (&self.from_env, mistaken) {
                    (_, true) => app.to_string_lossy().into_owned(),
                    (Some(env), false) => env.clone(),
                    (None, false) => "<FROM_ENV>".to_string(),
                };
                return Err(crate::bad_input!(
                    "`--from` names the app's manifest (spin.toml), not the environment to promote from{}: write `spin-aks promote {env} --to {}`",
                    if mistaken { format!(", and `{}` is no file here", app.display()) } else { String::new() },
                    self.to
                ));
            }
        };
        Ok(crate::fleet::promote::PromoteSettings {
            from,
            to: self.to.clone(),
            kubeconfig: self.kubeconfig.clone(),
            registry: self.registry.settings(),
        })
    }
}

impl ClusterInstallArgs {
    /// The install settings: versions that are releases, the sources checked.
    pub fn settings(&self) -> anyhow::Result<crate::install::InstallSettings> {
        use crate::install::releases::{ReleaseSet, Versions};
        let releases = ReleaseSet::pinned(&Versions {
            cert_manager: self.cert_manager_version.clone(),
            runtime_class_manager: self.runtime_class_manager_version.clone(),
            spin_operator: self.spin_operator_version.clone(),
            shim: self.shim_version.clone(),
        })?;
        self.sources
            .settings(releases, self.plain_http, self.dry_run, self.timeout)
    }
}

impl ClusterCreateArgs {
    /// The creation's settings, every name checked before anything is asked of ARM.
    pub fn settings(&self) -> anyhow::Result<crate::provision::spec::CreateSettings> {
        use crate::provision::spec::{self, CreateSettings, RegistryWish};
        let target = &self.install.target;
        if target.kubeconfig.is_some() || target.context.is_some() || target.namespace.is_some() {
            return Err(crate::bad_input!(
                "cluster create makes an AKS cluster: --kubeconfig, --context and -n do not apply"
            ));
        }
        let aks = &target.aks;
        let required = |value: &Option<String>, flag: &str| {
            value.clone().ok_or_else(|| {
                crate::bad_input!("cluster create needs {flag}: the new cluster's {flag}")
            })
        };
        // Clap checked both names against Azure's rules (`azure::names`).
        Ok(CreateSettings {
            name: required(&aks.cluster, "--cluster")?,
            resource_group: required(&aks.resource_group, "--resource-group")?,
            location: self.location.as_deref().map(spec::location).transpose()?,
            node_count: self.node_count,
            node_vm_size: spec::vm_size(&self.node_vm_size)?,
            kubernetes_version: (self.kubernetes_version.as_deref())
                .map(spec::kubernetes_version)
                .transpose()?,
            registry: match &self.registry {
                // A name that could be neither an existing registry nor a new one's is refused
                // before ARM is asked anything.
                Some(name) => RegistryWish::Named(
                    names::parse_registry(name)
                        .map_err(|rule| crate::bad_input!("--registry {name:?}: {rule}"))?,
                ),
                None => RegistryWish::Default,
            },
            registry_sku: spec::registry_sku(&self.registry_sku)?,
            install: (!self.no_install)
                .then(|| self.install.settings())
                .transpose()?,
            dry_run: self.install.dry_run,
        })
    }
}

impl DevArgs {
    /// The dev settings; the `up` flags a redeploy loop cannot honour are refused.
    pub fn settings(&self) -> anyhow::Result<crate::dev::DevSettings> {
        let refused = [
            (self.push.from_layout.is_some(), "--from-layout"),
            (self.push.from_archive.is_some(), "--from-archive"),
            (self.push.publish, "--publish"),
            (!self.push.envs.is_empty(), "--env"),
            (self.deploy.dry_run == DryRun::Server, "--dry-run"),
            (self.deploy.no_wait, "--no-wait"),
            (self.deploy.diff, "--diff"),
        ];
        if let Some((_, flag)) = refused.iter().find(|(given, _)| *given) {
            return Err(crate::bad_input!(
                "dev builds the app and waits for every rollout, so it takes no {flag}: drop {flag} (or use `spin-aks up` for a one-off)"
            ));
        }
        Ok(crate::dev::DevSettings {
            debounce: self.debounce,
            logs: !self.no_logs,
            delete_on_exit: self.delete_on_exit,
        })
    }
}

impl UpArgs {
    /// The install `up` runs on a cluster that cannot run SpinApps: the pinned releases, from
    /// the sources given (plain HTTP as the push's `--plain-http` says, or on loopback).
    pub fn install_settings(&self) -> anyhow::Result<crate::install::InstallSettings> {
        let releases = crate::install::releases::ReleaseSet::pinned(&Default::default())?;
        let timeout = std::time::Duration::from_secs(600);
        (self.install_sources).settings(releases, self.push.registry.plain_http, false, timeout)
    }
}

impl InstallSourceArgs {
    /// A chart registry named as a registry host and path, a module proxy URL; plain HTTP only
    /// when asked for or on loopback.
    fn settings(
        &self,
        releases: crate::install::releases::ReleaseSet,
        plain_http: bool,
        dry_run: bool,
        timeout: std::time::Duration,
    ) -> anyhow::Result<crate::install::InstallSettings> {
        use crate::install::objects::ChartSource;
        let flux_registry = registry_path("--flux-registry", &self.flux_registry)?;
        let insecure = |registry: &str| registry_insecure(registry, plain_http);
        let mirror = (self.mirror.as_deref())
            .map(|given| mirror_setting(given, plain_http))
            .transpose()?;
        let charts = match (&self.chart_registry, &mirror) {
            (_, Some(mirror)) => ChartSource::Mirror {
                registry: mirror.repository(crate::install::mirror::CHARTS),
                insecure: mirror.insecure,
            },
            (None, None) => ChartSource::Publishers,
            (Some(given), None) => {
                let registry = registry_path("--chart-registry", given)?;
                ChartSource::Mirror {
                    insecure: insecure(&registry),
                    registry,
                }
            }
        };
        http_url("--module-proxy", &self.module_proxy, plain_http)?;
        Ok(crate::install::InstallSettings {
            releases,
            charts,
            module_proxy: self.module_proxy.clone(),
            flux_registry,
            mirror,
            dry_run,
            timeout,
        })
    }
}

/// `host[:port][/path]` of a registry given to `flag`: a repository path with a throwaway name
/// checks host and path as push does; its message shows the value with any credentials hidden
/// (they belong in the Docker config).
fn registry_path(flag: &str, given: &str) -> anyhow::Result<String> {
    let registry = given.trim_start_matches("oci://").trim_end_matches('/');
    RegistryRef::parse(&format!("{registry}/chart")).map_err(|e| {
        let shown = crate::oci::reference::shown(given);
        crate::bad_input!("{flag} `{shown}` is not a registry and path: {e:#}")
    })?;
    Ok(registry.to_string())
}

/// Plain HTTP to `registry`: when asked for, or on loopback.
fn registry_insecure(registry: &str, plain_http: bool) -> bool {
    let host = registry.split('/').next().unwrap_or_default();
    plain_http || crate::registry::host::is_loopback(host)
}

/// The mirror registry `--mirror` names, as `bundle push` filled it.
fn mirror_setting(given: &str, plain_http: bool) -> anyhow::Result<crate::install::mirror::Mirror> {
    let registry = registry_path("--mirror", given)?;
    Ok(crate::install::mirror::Mirror {
        insecure: registry_insecure(&registry, plain_http),
        registry,
    })
}

/// A URL with a host, `https://` (plain `http://` only on loopback or with `--plain-http`); its
/// login (a GOPROXY may carry one) is never repeated in a message.
fn http_url(flag: &str, given: &str, plain_http: bool) -> anyhow::Result<url::Url> {
    let url = url::Url::parse(given)
        .ok()
        .filter(|url| url.has_host())
        .ok_or_else(|| {
            crate::bad_input!("{flag} is not a URL with a host: give an https:// URL")
        })?;
    let shown = crate::redact::redact_userinfo(url.as_str());
    let loopback = url
        .host_str()
        .is_some_and(crate::registry::host::is_loopback);
    match url.scheme() {
        "https" => Ok(url),
        "http" if plain_http || loopback => Ok(url),
        _ => Err(crate::bad_input!(
            "{flag} `{shown}` must be https:// (plain http:// only on loopback or with --plain-http)"
        )),
    }
}
