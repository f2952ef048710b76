//! Turns the workload flags (`WorkloadSettings`, validated) into `WorkloadOptions` with what the
//! app remembers; scaffold, apply and up share it so all three generate the same objects.

use crate::app::App;
use crate::azure::vault::Vault;
use crate::bad_input;
use crate::oci::reference::ImageRef;
use crate::secret::Secret;
use crate::state::AppState;
use crate::workload::key_vault::{self, IdentityOptions, KeyVaultMode, KeyVaultOptions};
use crate::workload::objects::{
    self, Autoscale, ResourceOptions, WorkloadKind, WorkloadOptions, WorkloadSettings,
};
use crate::workload::runtime_config::{libsql_token_env, Backend, RuntimeStore};

/// Refuses an autoscaler that could not work: one with no CPU request to scale on, or a maximum
/// below the minimum.
pub fn check_autoscale(
    autoscale: Option<&Autoscale>,
    replicas: i32,
    resources: &ResourceOptions,
) -> anyhow::Result<()> {
    let Some(autoscale) = autoscale else {
        return Ok(());
    };
    if resources.cpu_limit.is_none() && resources.cpu_request.is_none() {
        return Err(bad_input!(
            "--autoscale scales on CPU utilization, which needs a CPU request; add --cpu-limit or --cpu-request (e.g. --cpu-limit 500m)"
        ));
    }
    if autoscale.max_replicas < replicas {
        return Err(bad_input!(
            "--max-replicas {} is below --replicas {}; the autoscaler needs max ≥ min",
            autoscale.max_replicas,
            replicas
        ));
    }
    Ok(())
}

/// The options `objects::build` takes, from the settings, what this app remembers, and what the
/// command decided.
pub fn options(
    args: &WorkloadSettings,
    app: &App,
    remembered: &AppState,
    kind: WorkloadKind,
    image: ImageRef,
    namespace: Option<String>,
) -> anyhow::Result<WorkloadOptions> {
    let key_vault = key_vault(args, app, remembered)?;
    Ok(WorkloadOptions {
        kind,
        image,
        namespace,
        key_vault: key_vault.clone(),
        identity: identity(args, app, remembered, key_vault.as_ref())?,
        settings: args.clone(),
    })
}

/// A libsql store with its token from `SPIN_AKS_LIBSQL_TOKEN_<LABEL>`, when set.
pub fn with_env_token(mut store: RuntimeStore) -> RuntimeStore {
    if let Backend::Libsql { token, .. } = &mut store.backend {
        *token = std::env::var(libsql_token_env(&store.label))
            .ok()
            .map(Secret::new);
    }
    store
}

/// Refuses to send a runtime config without the libsql tokens it needs (apply and up).
pub fn require_tokens(settings: &WorkloadSettings) -> anyhow::Result<()> {
    for store in &settings.sqlite {
        if let Backend::Libsql { token: None, .. } = store.backend {
            return Err(bad_input!(
                "--sqlite {}: the libsql token is not set; export {} (it goes only into the runtime-config Secret in the cluster)",
                store.label,
                libsql_token_env(&store.label)
            ));
        }
    }
    Ok(())
}

/// What a workload identity would be for: the vault (flag, else remembered) and the Cosmos DB
/// accounts of `--kv-store` flags; None when the app needs no identity.
pub fn identity_needs(
    args: &WorkloadSettings,
    remembered: &AppState,
) -> anyhow::Result<Option<(Option<Vault>, Vec<String>)>> {
    let vault = remembered.vault_or(args.key_vault.as_ref());
    let cosmos: Vec<String> = args
        .kv_stores
        .iter()
        .filter_map(|s| match &s.backend {
            Backend::Cosmos { account, .. } => Some(account.clone()),
            _ => None,
        })
        .collect();
    Ok((vault.is_some() || !cosmos.is_empty()).then_some((vault, cosmos)))
}

/// The Key Vault options: `--key-vault`, else the app's remembered vault; provider mode only
/// when Spin can find every variable.
fn key_vault(
    args: &WorkloadSettings,
    app: &App,
    remembered: &AppState,
) -> anyhow::Result<Option<KeyVaultOptions>> {
    let Some(vault) = identity_needs(args, remembered)?.and_then(|(vault, _)| vault) else {
        return Ok(None);
    };
    let mode = args.key_vault_mode;
    let unresolvable = key_vault::unresolvable_by_provider(app);
    if mode == KeyVaultMode::Provider && !unresolvable.is_empty() {
        return Err(bad_input!(
            "--key-vault-mode provider: Spin looks up every variable in the vault under its own name, and Key Vault names cannot contain `_`, so {} can never resolve; use the default --key-vault-mode csi (which maps `_` to `-`), or rename them in {}",
            unresolvable.join(", "),
            app.manifest_path.display()
        ));
    }
    Ok(Some(KeyVaultOptions { vault, mode }))
}

/// The workload identity, when something needs one (a vault, a Cosmos DB store): from
/// `--identity-client-id`/`--tenant-id`, else the one `identity setup` made for this app.
fn identity(
    args: &WorkloadSettings,
    app: &App,
    remembered: &AppState,
    key_vault: Option<&KeyVaultOptions>,
) -> anyhow::Result<Option<IdentityOptions>> {
    let cosmos = args
        .kv_stores
        .iter()
        .find(|s| matches!(s.backend, Backend::Cosmos { .. }));
    let needed_by = match (key_vault, cosmos) {
        (Some(kv), _) => format!("Key Vault {}", kv.vault.name),
        (None, Some(store)) => format!("the Cosmos DB store `{}`", store.label),
        (None, None) => return Ok(None),
    };
    let remembered = remembered.identity.as_ref();
    let client_id = args.identity_client_id.clone();
    let tenant_id = args.tenant_id.clone();
    let (Some(client_id), Some(tenant_id)) = (
        client_id.or_else(|| remembered.map(|i| i.client_id.clone())),
        tenant_id.or_else(|| remembered.map(|i| i.tenant_id.clone())),
    ) else {
        let flags = match (key_vault, cosmos) {
            (Some(kv), _) => format!("--key-vault {}", kv.vault.url),
            (
                None,
                Some(RuntimeStore {
                    backend: Backend::Cosmos { account, .. },
                    ..
                }),
            ) => {
                format!("--cosmos {account}")
            }
            _ => String::new(),
        };
        return Err(bad_input!(
            "{needed_by} is reached with a workload identity, and this app has none yet: run `spin-aks identity setup {flags}` (or pass --identity-client-id and --tenant-id)"
        ));
    };
    let service_account = args
        .service_account
        .clone()
        .or_else(|| remembered.map(|i| i.service_account.clone()))
        .unwrap_or_else(|| objects::dns_name(&app.name));
    Ok(Some(IdentityOptions {
        client_id,
        tenant_id,
        service_account,
    }))
}
