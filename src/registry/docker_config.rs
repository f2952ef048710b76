//! Registry credentials from the Docker config (`$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json`): `auths` entries, `credHelpers` and `credsStore` helper programs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use base64::Engine;
use serde::Deserialize;

use super::credential::{Credential, Secret, SourcedCredential};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The reply of `docker-credential-<name> get`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperReply {
    username: String,
    secret: String,
}

/// The Docker config file we read: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir).join("config.json")),
        _ => dirs::home_dir().map(|home| home.join(".docker").join("config.json")),
    }
}

/// The credential the Docker config holds for `registry` (anonymous when it holds none).
pub fn lookup(registry: &str) -> anyhow::Result<SourcedCredential> {
    let Some(path) = config_path() else {
        return Ok(SourcedCredential::anonymous());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(SourcedCredential::anonymous())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let config: DockerConfig = serde_json::from_str(&text).map_err(|e| {
        crate::bad_input!(
            "the Docker config {} is not valid JSON ({e}); fix it or point DOCKER_CONFIG at another directory",
            path.display()
        )
    })?;
    resolve(&config, &path, registry)
}

fn resolve(
    config: &DockerConfig,
    path: &Path,
    registry: &str,
) -> anyhow::Result<SourcedCredential> {
    if let Some(helper) = find(&config.cred_helpers, registry) {
        return from_helper(helper, registry, path);
    }
    if let Some(entry) = find(&config.auths, registry) {
        if let Some(credential) = decode_entry(entry, path, registry)? {
            return Ok(SourcedCredential {
                credential,
                source: format!("the Docker config {}", path.display()),
                challenge: None,
            });
        }
    }
    match &config.creds_store {
        Some(store) if !store.is_empty() => from_helper(store, registry, path),
        _ => Ok(SourcedCredential::anonymous()),
    }
}

/// The entry for `registry`, matching keys written as `host`, `https://host` or `https://host/v1/`.
fn find<'a, T>(map: &'a BTreeMap<String, T>, registry: &str) -> Option<&'a T> {
    let wanted = canonical_host(registry);
    map.iter()
        .find(|(key, _)| canonical_host(key) == wanted)
        .map(|(_, value)| value)
}

fn canonical_host(key: &str) -> String {
    let key = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        _ => host,
    }
}

fn decode_entry(
    entry: &AuthEntry,
    path: &Path,
    registry: &str,
) -> anyhow::Result<Option<Credential>> {
    let (username, password) = match (&entry.auth, &entry.username, &entry.password) {
        (Some(auth), _, _) if !auth.is_empty() => {
            let bad = || {
                crate::bad_input!(
                    "the `auth` value for {registry} in {} is not base64 of `username:password`; run `docker login {registry}` again or fix the file",
                    path.display()
                )
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (user, pass) = decoded.split_once(':').ok_or_else(bad)?;
            (Some(user.to_string()), Some(pass.to_string()))
        }
        (_, user, pass) => (user.clone(), pass.clone()),
    };
    if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::IdentityToken {
            username: username.unwrap_or_default(),
            token: Secret::new(token.clone()),
        }));
    }
    Ok(match (username, password) {
        (Some(username), Some(password)) if !username.is_empty() => Some(Credential::Basic {
            username,
            password: Secret::new(password),
        }),
        _ => None,
    })
}

/// Runs `docker-credential-<helper> get` with the registry on stdin (the Docker helper protocol).
fn from_helper(helper: &str, registry: &str, config: &Path) -> anyhow::Result<SourcedCredential> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            crate::bad_input!(
                "the credential helper `{program}` named in {} cannot be run ({e}); install it on PATH or remove it from the Docker config",
                config.display()
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(registry.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        if stdout.contains("credentials not found") {
            return Ok(SourcedCredential::anonymous());
        }
        anyhow::bail!(
            "the credential helper `{program}` failed for {registry} ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let reply: HelperReply = serde_json::from_str(&stdout).with_context(|| {
        format!("the credential helper `{program}` answered something other than its JSON reply")
    })?;
    let credential = if reply.username == "<token>" {
        Credential::IdentityToken {
            username: String::new(),
            token: Secret::new(reply.secret),
        }
    } else {
        Credential::Basic {
            username: reply.username,
            password: Secret::new(reply.secret),
        }
    };
    Ok(SourcedCredential {
        credential,
        source: format!("the credential helper `{program}`"),
        challenge: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_json(json: &str, registry: &str) -> anyhow::Result<Credential> {
        let config: DockerConfig = serde_json::from_str(json).unwrap();
        resolve(&config, Path::new("config.json"), registry).map(|c| c.credential)
    }

    #[test]
    fn auth_field_decodes_to_basic_credentials() {
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:with:colons");
        let json = format!(r#"{{"auths":{{"https://example.com/v1/":{{"auth":"{auth}"}}}}}}"#);
        assert_eq!(
            resolve_json(&json, "example.com").unwrap(),
            Credential::Basic {
                username: "alice".into(),
                password: Secret::new("s3cret:with:colons")
            }
        );
    }

    #[test]
    fn username_and_password_fields_are_used_when_auth_is_absent() {
        let json = r#"{"auths":{"example.com:5000":{"username":"bob","password":"pw"}}}"#;
        assert_eq!(
            resolve_json(json, "example.com:5000").unwrap(),
            Credential::Basic {
                username: "bob".into(),
                password: Secret::new("pw")
            }
        );
    }

    #[test]
    fn identity_token_wins_over_the_password() {
        let json = r#"{"auths":{"myacr.azurecr.io":{"auth":"MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwOg==","identitytoken":"refresh"}}}"#;
        assert_eq!(
            resolve_json(json, "myacr.azurecr.io").unwrap(),
            Credential::IdentityToken {
                username: "00000000-0000-0000-0000-000000000000".into(),
                token: Secret::new("refresh")
            }
        );
    }

    #[test]
    fn docker_hub_keys_match_the_docker_io_alias() {
        let json = r#"{"auths":{"https://index.docker.io/v1/":{"username":"u","password":"p"}}}"#;
        assert!(matches!(
            resolve_json(json, "docker.io").unwrap(),
            Credential::Basic { .. }
        ));
    }

    #[test]
    fn unknown_registry_is_anonymous_and_bad_auth_is_bad_input() {
        let json = r#"{"auths":{"other.example":{"auth":"bm9jb2xvbg=="}}}"#;
        assert_eq!(
            resolve_json(json, "example.com").unwrap(),
            Credential::Anonymous
        );
        let err = resolve_json(json, "other.example").unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(err
            .to_string()
            .contains("not base64 of `username:password`"));
    }

    #[test]
    fn missing_helper_program_is_reported_by_name() {
        let json = r#"{"credHelpers":{"example.com":"surely-not-installed-xyz"}}"#;
        let err = resolve_json(json, "example.com").unwrap_err();
        assert!(err
            .to_string()
            .contains("docker-credential-surely-not-installed-xyz"));
    }
}
