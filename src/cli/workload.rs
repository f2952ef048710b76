//! The flags that shape the app's objects: what `scaffold` writes, and the workload (SpinApp or
//! Deployment, replicas, resources, variables, Key Vault) every deploying command shares.

use super::*;

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
    pub kv_stores: Vec<RuntimeStore>,
    /// A SQLite database: `<label>=libsql:<url>` (repeatable)
    #[arg(long = "sqlite", value_name = "LABEL=BACKEND", value_parser = redacted(runtime_config::parse_sqlite))]
    pub sqlite: Vec<RuntimeStore>,
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
