//! `spin-aks secrets set`: a Spin variable's value into the app's Key Vault as a new version of its
//! secret; the value never comes from an argument and is never shown.

use serde::Serialize;

use crate::azure::keyvault::KeyVault;
use crate::azure::vault;
use crate::bad_input;
use crate::cli::{GlobalArgs, SecretSetArgs};
use crate::output::Output;
use crate::secret_input;

#[derive(Serialize)]
struct SetReport<'a> {
    vault: &'a str,
    variable: &'a str,
    secret: &'a str,
    version: &'a str,
}

pub async fn run(global: &GlobalArgs, args: &SecretSetArgs, out: &Output) -> anyhow::Result<()> {
    let variable = args.variable()?;
    let mut ctx = global.app_context(out)?;
    let app = &ctx.app;
    if !app.variables.contains_key(variable) {
        let declared: Vec<&str> = app.variables.keys().map(String::as_str).collect();
        let declared = if declared.is_empty() {
            "it declares none".to_string()
        } else {
            format!("declared: {}", declared.join(", "))
        };
        return Err(bad_input!(
            "variable `{variable}` is not declared in {} ({declared}); declare it under [variables] or pick one of those",
            app.manifest_path.display()
        ));
    }
    let vault = ctx.vault(args.vault.key_vault.as_ref())?;
    let from_file = args.from_file.as_deref();
    let value = secret_input::read(variable, from_file, args.from_env.as_deref(), global.yes)?;
    let secret = vault::secret_name(variable);
    let version = KeyVault::from_env(vault.clone())?
        .set_secret(&secret, &value)
        .await?;
    ctx.remember_vault(&vault, out)?;
    let report = SetReport {
        vault: &vault.url,
        variable,
        secret: &secret,
        version: &version,
    };
    let summary = format!(
        "set {variable} as secret {secret} in vault {} (version {version})",
        vault.name
    );
    out.report(&report, summary)
}
