//! The flags of the cluster, identity, secrets and shell commands (AKS or a kubeconfig
//! context; SpinKube's install and its sources; Key Vault).

use super::*;

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

/// The releases SpinKube is installed (or bundled) at, each pinned unless given.
#[derive(Debug, Args)]
pub struct ReleaseArgs {
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
}

#[derive(Debug, Args)]
pub struct ClusterInstallArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub versions: ReleaseArgs,
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
