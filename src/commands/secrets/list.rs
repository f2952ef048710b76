//! `spin-aks secrets list`: the app's Key Vault secret names (never values), matched to the app's
//! variables, and the secret and required variables that have no enabled secret.

use serde::Serialize;

use crate::app::App;
use crate::azure::keyvault::KeyVault;
use crate::azure::vault::{self, Vault};
use crate::cli::{GlobalArgs, KeyVaultArg};
use crate::output::Output;

#[derive(Serialize)]
struct ListReport<'a> {
    vault: &'a str,
    secrets: Vec<Listed<'a>>,
    missing: Vec<&'a str>,
}

#[derive(Serialize)]
struct Listed<'a> {
    name: String,
    variable: Option<&'a str>,
    enabled: bool,
}

pub async fn run(global: &GlobalArgs, flag: &KeyVaultArg, out: &Output) -> anyhow::Result<()> {
    let mut ctx = global.app_context(out)?;
    let vault = ctx.vault(flag.key_vault.as_ref())?;
    let mut items = KeyVault::from_env(vault.clone())?.list_secrets().await?;
    ctx.remember_vault(&vault, out)?;
    let app = &ctx.app;
    items.sort_by(|a, b| a.name.cmp(&b.name));
    // Key Vault names are case-insensitive.
    let variable_of = |secret: &str| {
        app.variables
            .keys()
            .find(|v| vault::secret_name(v).eq_ignore_ascii_case(secret))
            .map(String::as_str)
    };
    let secrets: Vec<Listed> = items
        .into_iter()
        .map(|item| Listed {
            variable: variable_of(&item.name),
            name: item.name,
            enabled: item.enabled,
        })
        .collect();
    let missing: Vec<&str> = app
        .variables
        .iter()
        .filter(|(_, v)| v.secret || v.required)
        .map(|(name, _)| name.as_str())
        .filter(|name| {
            !secrets
                .iter()
                .any(|s| s.enabled && s.variable == Some(name))
        })
        .collect();
    let summary = list_text(&vault, app, &secrets, &missing);
    let report = ListReport {
        vault: &vault.url,
        secrets,
        missing,
    };
    out.report(&report, summary)
}

fn list_text(vault: &Vault, app: &App, secrets: &[Listed], missing: &[&str]) -> String {
    let mut text = format!(
        "Key Vault {} ({}): {} secret(s)",
        vault.name,
        vault.url,
        secrets.len()
    );
    let width = secrets.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for secret in secrets {
        let variable = secret
            .variable
            .map(|v| format!("variable {v}"))
            .unwrap_or_default();
        let disabled = if secret.enabled { "" } else { " (disabled)" };
        let line = format!("\n  {:width$}  {variable}{disabled}", secret.name);
        text.push_str(line.trim_end());
    }
    if missing.is_empty() {
        text.push_str(&format!(
            "\nevery secret and required variable of {} has an enabled secret",
            app.name
        ));
    }
    for variable in missing {
        text.push_str(&format!(
            "\nmissing: variable {variable} (secret {}); set it with `spin-aks secrets set {variable}`",
            vault::secret_name(variable)
        ));
    }
    text
}
