//! Works out what the pods read that the workload's objects do not hold: where each Spin variable
//! comes from (a value, a Secret key or Key Vault), and warnings on the Secrets and stores to set.

use super::model::{VariableSource, WorkloadOptions, WorkloadVariable};
use crate::app::{App, Component};
use crate::workload::key_vault::{self, KeyVaultMode, KeyVaultOptions};
use crate::workload::runtime_config::{libsql_token_env, Backend, RuntimeStore};

/// The variables the CSI driver syncs: those read from the synced Secret.
pub(super) fn vault_variables(variables: &[WorkloadVariable], name: &str) -> Vec<String> {
    let synced = key_vault::synced_secret(name);
    variables
        .iter()
        .filter(
            |v| matches!(&v.source, VariableSource::SecretKey { secret, .. } if *secret == synced),
        )
        .map(|v| v.name.clone())
        .collect()
}

/// One kind of runtime store: how to name it, and which labels components use.
struct StoreKind<'a> {
    what: &'static str,
    flag: &'static str,
    example: &'static str,
    configured: &'a [RuntimeStore],
    labels: fn(&Component) -> &[String],
}

/// Warns about store labels components use but no flag configures, flags no component uses, and
/// the libsql token placeholder.
pub(super) fn store_warnings(app: &App, options: &WorkloadOptions, warnings: &mut Vec<String>) {
    let kinds = [
        StoreKind {
            what: "key-value store",
            flag: "--kv-store",
            example: "redis:redis://<host>:6379",
            configured: &options.settings.kv_stores,
            labels: |c| &c.key_value_stores,
        },
        StoreKind {
            what: "SQLite database",
            flag: "--sqlite",
            example: "libsql:https://<host>",
            configured: &options.settings.sqlite,
            labels: |c| &c.sqlite_databases,
        },
    ];
    for kind in kinds {
        let StoreKind {
            what,
            flag,
            example,
            configured,
            labels,
        } = kind;
        let mut warned: Vec<&str> = Vec::new();
        for component in &app.components {
            for label in labels(component) {
                let configured = configured.iter().any(|s| &s.label == label);
                if configured || warned.contains(&label.as_str()) {
                    continue;
                }
                warned.push(label);
                // Spin serves an unconfigured `default` itself, from a file inside each pod.
                let fallback = match label.as_str() {
                    "default" => " (Spin keeps it in a file inside each pod: not shared by replicas, lost on restart)",
                    _ => "",
                };
                warnings.push(format!(
                    "component `{}` uses the {what} `{label}`, which nothing configures{fallback}; add {flag} {label}={example}",
                    component.id
                ));
            }
        }
        for store in configured {
            let label = &store.label;
            if !app.components.iter().any(|c| labels(c).contains(label)) {
                warnings.push(format!(
                    "{flag} {label}: no component uses the {what} `{label}`"
                ));
            }
            if let Backend::Libsql { .. } = store.backend {
                warnings.push(format!(
                    "{flag} {label}: apply and up read the libsql token from {}",
                    libsql_token_env(label)
                ));
            }
        }
    }
}

/// The variables the workload sets: defaults as values; secret or required ones from the
/// `<name>-variables` Secret, or with Key Vault from the CSI-synced Secret (or left to Spin's provider).
pub(super) fn variables(
    app: &App,
    options: &WorkloadOptions,
    name: &str,
    warnings: &mut Vec<String>,
) -> Vec<WorkloadVariable> {
    let key_vault = options.key_vault.as_ref();
    let secret_name = match key_vault.map(|kv| kv.mode) {
        None => Some(format!("{name}-variables")),
        Some(KeyVaultMode::Csi) => Some(key_vault::synced_secret(name)),
        Some(KeyVaultMode::Provider) => None,
    };
    let mut variables = Vec::new();
    let mut from_secret = Vec::new();
    let mut read_secret = |variable: &str, has_default: bool, variables: &mut Vec<_>| {
        let secret = secret_name.clone()?;
        from_secret.push(variable.to_string());
        variables.push(WorkloadVariable {
            name: variable.to_string(),
            source: VariableSource::SecretKey {
                secret: secret.clone(),
                key: variable.to_string(),
                optional: has_default && key_vault.is_none(),
            },
        });
        Some(secret)
    };
    for (var_name, var) in &app.variables {
        if var.secret || var.required {
            read_secret(var_name, var.default.is_some(), &mut variables);
        } else if let Some(default) = &var.default {
            variables.push(WorkloadVariable {
                name: var_name.clone(),
                source: VariableSource::Value(default.clone()),
            });
        }
    }
    if let Some(address) = redis_address(app) {
        if !address.contains("{{") && !app.variables.contains_key("redis_address") {
            let found = if address.is_empty() {
                "the redis trigger has no address in spin.toml".to_string()
            } else {
                format!(
                    "the redis trigger address `{}` is fixed in spin.toml",
                    crate::redact::redact_userinfo(&address)
                )
            };
            let source = match read_secret("redis_address", false, &mut variables) {
                Some(secret) => format!("from key redis_address of Secret {secret}"),
                None => "from Key Vault".to_string(),
            };
            warnings.push(format!(
                "{found}; set `address = \"{{{{ redis_address }}}}\"` under [application.trigger.redis] and declare a secret `redis_address` variable so the pod takes the address {source}"
            ));
        }
    }
    warnings.extend(secret_source_warning(
        app,
        key_vault,
        &from_secret,
        secret_name,
    ));
    variables
}

/// Where the secret values must be put for the pods to start.
fn secret_source_warning(
    app: &App,
    key_vault: Option<&KeyVaultOptions>,
    from_secret: &[String],
    secret_name: Option<String>,
) -> Option<String> {
    let Some(kv) = key_vault else {
        let secret_name = secret_name?;
        let literals: Vec<String> = from_secret
            .iter()
            .map(|k| format!("--from-literal={k}=<value>"))
            .collect();
        return (!from_secret.is_empty()).then(|| format!(
            "variables {} come from Secret {secret_name}: `spin-aks apply --secret <name>` fills it, or kubectl create secret generic {secret_name} {}",
            from_secret.join(", "),
            literals.join(" ")
        ));
    };
    let vault = &kv.vault.name;
    match kv.mode {
        KeyVaultMode::Csi => (!from_secret.is_empty()).then(|| {
            let mapped: Vec<String> = from_secret
                .iter()
                .map(|v| format!("{v} ← {}", crate::azure::vault::secret_name(v)))
                .collect();
            format!(
                "variables come from Key Vault {vault} through the Secrets Store CSI driver (AKS add-on azure-keyvault-secrets-provider): {}; each secret must exist before the pods start: spin-aks secrets set <variable>",
                mapped.join(", ")
            )
        }),
        KeyVaultMode::Provider => (!app.variables.is_empty()).then(|| {
            format!(
                "with --key-vault-mode provider Spin looks up every variable in Key Vault {vault} under its own name before any default: all of {} must exist there (spin-aks secrets set <variable>)",
                app.variables.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        }),
    }
}

/// The address of the app's redis trigger, if it has one.
fn redis_address(app: &App) -> Option<String> {
    let trigger = app.triggers.iter().find(|t| t.trigger_type == "redis")?;
    trigger
        .settings
        .get("address")
        .or_else(|| {
            app.trigger_settings
                .get("redis")
                .and_then(|s| s.get("address"))
        })
        .and_then(|a| a.as_str())
        .map(str::to_string)
        .or_else(|| Some(String::new()))
}
