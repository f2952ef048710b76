//! Spin runtime configuration (docs/cluster.md) from scaffold flags: `--kv-store`, `--sqlite`, `--key-vault`.
//! Parses the flag syntax and writes the `runtime-config.toml` the shim reads.

use std::fmt::Write;

use crate::secret::Secret;

/// One `--kv-store` or `--sqlite` flag: a store label and the backend that serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeStore {
    pub label: String,
    pub backend: Backend,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Redis {
        url: String,
    },
    Cosmos {
        account: String,
        database: String,
        container: String,
    },
    Libsql {
        url: String,
        /// From `SPIN_AKS_LIBSQL_TOKEN_<LABEL>` when apply sends the runtime config.
        token: Option<Secret>,
    },
}

/// The environment variable a libsql store's token is read from (`db-1` → `SPIN_AKS_LIBSQL_TOKEN_DB_1`).
pub fn libsql_token_env(label: &str) -> String {
    format!(
        "SPIN_AKS_LIBSQL_TOKEN_{}",
        label.to_ascii_uppercase().replace('-', "_")
    )
}

/// Parses `--kv-store <label>=redis:<url>` or `<label>=cosmos:<account>/<database>/<container>`.
pub fn parse_kv_store(flag: &str) -> Result<RuntimeStore, String> {
    let (label, spec) = split_label(flag)?;
    let backend = if let Some(url) = spec.strip_prefix("redis:") {
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(format!(
                "the redis URL of `{label}` must start with redis:// or rediss://, e.g. {label}=redis:redis://cache:6379"
            ));
        }
        Backend::Redis {
            url: url.to_string(),
        }
    } else if let Some(path) = spec.strip_prefix("cosmos:") {
        match path.split('/').collect::<Vec<_>>()[..] {
            [account, database, container] if !account.is_empty() && !database.is_empty() && !container.is_empty() => {
                Backend::Cosmos {
                    account: account.to_string(),
                    database: database.to_string(),
                    container: container.to_string(),
                }
            }
            _ => {
                return Err(format!(
                    "cosmos for `{label}` needs <account>/<database>/<container>, e.g. {label}=cosmos:myaccount/spin/kv"
                ))
            }
        }
    } else {
        return Err(format!(
            "the backend of `{label}` must be redis:<url> or cosmos:<account>/<database>/<container>"
        ));
    };
    Ok(RuntimeStore { label, backend })
}

/// Parses `--sqlite <label>=libsql:<url>`.
pub fn parse_sqlite(flag: &str) -> Result<RuntimeStore, String> {
    let (label, spec) = split_label(flag)?;
    match spec.strip_prefix("libsql:") {
        Some(url) if url.contains("://") => Ok(RuntimeStore {
            label,
            backend: Backend::Libsql {
                url: url.to_string(),
                token: None,
            },
        }),
        _ => Err(format!(
            "the backend of `{label}` must be libsql:<url>, e.g. {label}=libsql:https://mydb.turso.io"
        )),
    }
}

fn split_label(flag: &str) -> Result<(String, String), String> {
    let (label, spec) = flag
        .split_once('=')
        .ok_or_else(|| "the value must be <label>=<backend>".to_string())?;
    let valid = !label.is_empty()
        && label.starts_with(|c: char| c.is_ascii_lowercase())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid {
        return Err(
            "the label before `=` must be lowercase letters, digits, `_` or `-`, starting with a letter"
                .to_string(),
        );
    }
    Ok((label.to_string(), spec.to_string()))
}

/// What goes into runtime-config.toml.
#[derive(Clone, Debug, Default)]
pub struct RuntimeConfigToml<'a> {
    pub key_vault: Option<&'a str>,
    pub kv_stores: &'a [RuntimeStore],
    pub sqlite: &'a [RuntimeStore],
}

impl RuntimeConfigToml<'_> {
    /// Whether the text carries a secret (a Redis URL, which may hold a password, or a libsql
    /// token), so it belongs only in a Secret sent to the cluster, never in a file.
    pub fn holds_secrets(&self) -> bool {
        self.kv_stores
            .iter()
            .chain(self.sqlite)
            .any(|s| !matches!(s.backend, Backend::Cosmos { .. }))
    }

    pub fn is_empty(&self) -> bool {
        self.key_vault.is_none() && self.kv_stores.is_empty() && self.sqlite.is_empty()
    }

    /// The TOML text; tables in a fixed order so the output is byte-stable.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        if let Some(url) = self.key_vault {
            let _ = writeln!(
                out,
                "[[variables_provider]]\ntype = \"azure_key_vault\"\nvault_url = {}\n",
                q(url)
            );
        }
        for (table, stores) in [
            ("key_value_store", self.kv_stores),
            ("sqlite_database", self.sqlite),
        ] {
            for store in stores {
                let _ = writeln!(out, "[{table}.{}]", store.label);
                match &store.backend {
                    Backend::Redis { url } => {
                        let _ = writeln!(out, "type = \"redis\"\nurl = {}", q(url));
                    }
                    Backend::Cosmos {
                        account,
                        database,
                        container,
                    } => {
                        let _ = writeln!(
                            out,
                            "type = \"azure_cosmos\"\naccount = {}\ndatabase = {}\ncontainer = {}",
                            q(account),
                            q(database),
                            q(container)
                        );
                    }
                    Backend::Libsql { url, token } => {
                        let _ = writeln!(out, "type = \"libsql\"\nurl = {}", q(url));
                        if let Some(token) = token {
                            let _ = writeln!(out, "token = {}", q(token.expose()));
                        }
                    }
                }
                out.push('\n');
            }
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_store_flags_parse_redis_and_cosmos() {
        assert_eq!(
            parse_kv_store("cache=redis:redis://cache:6379")
                .unwrap()
                .backend,
            Backend::Redis {
                url: "redis://cache:6379".into()
            }
        );
        let store = parse_kv_store("default=cosmos:acct/db/kv").unwrap();
        assert_eq!(store.label, "default");
        assert!(
            matches!(store.backend, Backend::Cosmos { ref container, .. } if container == "kv")
        );
    }

    #[test]
    fn malformed_store_flags_say_what_is_wrong_without_the_value() {
        // The backend may hold a password (`redis://:pw@host`) or a token: never repeated.
        for (flag, parse, problem) in [
            (
                "s3cret",
                parse_kv_store as fn(&str) -> Result<RuntimeStore, String>,
                "<label>=<backend>",
            ),
            (
                "cache=memcached:s3cret",
                parse_kv_store,
                "backend of `cache`",
            ),
            (
                "cache=cosmos:acct/s3cret",
                parse_kv_store,
                "cosmos for `cache`",
            ),
            (
                "cache=redis:http://:s3cret@x",
                parse_kv_store,
                "redis URL of `cache`",
            ),
            (
                "Cache=redis:redis://:s3cret@x",
                parse_kv_store,
                "label before `=`",
            ),
            ("db=postgres:s3cret", parse_sqlite, "backend of `db`"),
        ] {
            let err = parse(flag).unwrap_err();
            assert!(err.contains(problem), "{flag}: {err}");
            assert!(!err.contains("s3cret"), "{flag}: {err}");
        }
    }

    #[test]
    fn runtime_config_lists_vault_then_stores_then_databases() {
        let kv = [parse_kv_store("cache=redis:redis://c:6379").unwrap()];
        let mut db = [parse_sqlite("default=libsql:https://db.example").unwrap()];
        if let Backend::Libsql { token, .. } = &mut db[0].backend {
            *token = Some(Secret::new("t0ken"));
        }
        let text = RuntimeConfigToml {
            key_vault: Some("https://v.vault.azure.net/"),
            kv_stores: &kv,
            sqlite: &db,
        }
        .render();
        let parsed: toml::Table = text.parse().unwrap();
        assert_eq!(
            parsed["variables_provider"][0]["type"].as_str(),
            Some("azure_key_vault")
        );
        assert_eq!(
            parsed["key_value_store"]["cache"]["url"].as_str(),
            Some("redis://c:6379")
        );
        assert_eq!(
            parsed["sqlite_database"]["default"]["token"].as_str(),
            Some("t0ken")
        );
    }
}
