//! `secrets set` and `secrets list`: a Spin variable's value into the app's Key Vault (never from an
//! argument, never shown), and the vault's secret names against the app's secret variables.

use std::io::{IsTerminal, Read};

use serde::Serialize;

use super::cluster::load_state;
use super::push::canonical;
use crate::app::{self, App};
use crate::azure::keyvault::KeyVault;
use crate::azure::vault::{self, Vault};
use crate::azure::Secret;
use crate::bad_input;
use crate::cli::{GlobalArgs, KeyVaultArg, SecretSetArgs, SecretsArgs, SecretsCommand};
use crate::output::Output;
use crate::prompt;
use crate::state::StateFile;

pub async fn run(global: &GlobalArgs, args: &SecretsArgs, out: &Output) -> anyhow::Result<()> {
    match &args.command {
        SecretsCommand::Set(args) => set(global, args, out).await,
        SecretsCommand::List(args) => list(global, &args.vault, out).await,
    }
}

#[derive(Serialize)]
struct SetReport<'a> {
    vault: &'a str,
    variable: &'a str,
    secret: &'a str,
    version: &'a str,
}

async fn set(global: &GlobalArgs, args: &SecretSetArgs, out: &Output) -> anyhow::Result<()> {
    refuse_inline_value(args)?;
    let app = app::load(&global.from)?;
    let variable = args.variable.as_str();
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
    let target = AppVault::resolve(global, &app, &args.vault, out)?;
    let value = read_value(global, args)?;
    let secret = vault::secret_name(variable);
    let keyvault = KeyVault::from_env(target.vault.clone())?;
    let version = keyvault.set_secret(&secret, &value).await?;
    target.remember(out)?;
    let report = SetReport {
        vault: &target.vault.url,
        variable,
        secret: &secret,
        version: &version,
    };
    let summary = format!(
        "set {variable} as secret {secret} in vault {} (version {version})",
        target.vault.name
    );
    out.report(&report, summary)
}

/// `secrets set api_key=…` or `secrets set api_key …`: exit 2 without repeating the value.
fn refuse_inline_value(args: &SecretSetArgs) -> anyhow::Result<()> {
    let name = args.variable.split('=').next().unwrap_or_default();
    if args.variable.contains('=') || !args.inline_value.is_empty() {
        return Err(bad_input!(
            "`secrets set` takes no value on the command line, where it would land in your shell history; give the value of `{name}` on stdin, with --from-file FILE or --from-env VAR, or type it at the prompt"
        ));
    }
    Ok(())
}

/// The value, from the first source given: a file, an environment variable, piped stdin, a
/// hidden prompt on a terminal.
fn read_value(global: &GlobalArgs, args: &SecretSetArgs) -> anyhow::Result<Secret> {
    let variable = &args.variable;
    let (value, source) = if let Some(path) = &args.from_file {
        let bytes = std::fs::read(path)
            .map_err(|e| bad_input!("cannot read --from-file {}: {e}", path.display()))?;
        let what = format!("--from-file {}", path.display());
        (without_final_newline(text(bytes, &what)?), what)
    } else if let Some(name) = &args.from_env {
        let what = format!("--from-env {name}");
        match std::env::var_os(name) {
            Some(value) => (text(value.into_encoded_bytes(), &what)?, what),
            None => {
                return Err(bad_input!(
                    "--from-env {name}: the environment variable {name} is not set; export it, or give the value another way"
                ))
            }
        }
    } else if !std::io::stdin().is_terminal() {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| bad_input!("cannot read the value of `{variable}` from stdin: {e}"))?;
        (without_final_newline(text(bytes, "stdin")?), "stdin".into())
    } else if global.yes {
        return Err(bad_input!(
            "no value for `{variable}`: pipe it on stdin, or pass --from-file or --from-env (-y never prompts)"
        ));
    } else {
        let value = prompt::password(&format!("Value of {variable} (hidden)"))?;
        (value, "the prompt".into())
    };
    if value.is_empty() {
        return Err(bad_input!(
            "the value of `{variable}` from {source} is empty; Key Vault would store an empty secret, give the value itself"
        ));
    }
    Ok(Secret::new(value))
}

/// Key Vault secrets are strings: bytes that are not UTF-8 are refused.
fn text(bytes: Vec<u8>, what: &str) -> anyhow::Result<String> {
    String::from_utf8(bytes).map_err(|_| {
        bad_input!("the value from {what} is not UTF-8 text; Key Vault secrets are strings, so store binary data base64-encoded")
    })
}

/// Drops exactly one trailing line ending (`\n` or `\r\n`), as `echo` and editors add one.
fn without_final_newline(mut value: String) -> String {
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    value
}

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

async fn list(global: &GlobalArgs, flag: &KeyVaultArg, out: &Output) -> anyhow::Result<()> {
    let app = app::load(&global.from)?;
    let target = AppVault::resolve(global, &app, flag, out)?;
    let mut items = KeyVault::from_env(target.vault.clone())?
        .list_secrets()
        .await?;
    target.remember(out)?;
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
    let summary = list_text(&target.vault, &app, &secrets, &missing);
    let report = ListReport {
        vault: &target.vault.url,
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

/// The vault a command works on: `--key-vault`, else the one remembered for the app.
struct AppVault {
    state: StateFile,
    key: String,
    vault: Vault,
    /// Given on the command line and not yet the remembered one.
    new: bool,
}

impl AppVault {
    fn resolve(
        global: &GlobalArgs,
        app: &App,
        flag: &KeyVaultArg,
        out: &Output,
    ) -> anyhow::Result<AppVault> {
        let key = canonical(&app.manifest_path)?;
        let (state, all) = load_state(global, out)?;
        let remembered = all.apps.get(&key).cloned().unwrap_or_default();
        let vault = remembered.vault_or(flag.key_vault.as_ref()).ok_or_else(|| {
            bad_input!(
                "no Key Vault given and none remembered for {}; pass --key-vault https://<vault>.vault.azure.net/",
                app.manifest_path.display()
            )
        })?;
        let new = remembered.key_vault.as_ref() != Some(&vault);
        Ok(AppVault {
            state,
            key,
            vault,
            new,
        })
    }

    /// Remembers a vault given on the command line as the app's vault.
    fn remember(&self, out: &Output) -> anyhow::Result<()> {
        if !self.new {
            return Ok(());
        }
        let warning = self.state.update(|state| {
            state.apps.entry(self.key.clone()).or_default().key_vault = Some(self.vault.clone());
        })?;
        if let Some(warning) = warning {
            out.warn(warning);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_final_newline_is_dropped() {
        assert_eq!(without_final_newline("s3cret\n".into()), "s3cret");
        assert_eq!(without_final_newline("s3cret\r\n".into()), "s3cret");
        assert_eq!(without_final_newline("s3cret\n\n".into()), "s3cret\n");
        assert_eq!(without_final_newline("a\nb".into()), "a\nb");
    }
}
