//! Secret variables for apply: `--secret NAME=VALUE | NAME=@FILE | NAME` (env `SPIN_VARIABLE_<NAME>`)
//! fill the Secret keys the workload reads; required keys with no value anywhere stop apply first.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use base64::Engine;
use serde_json::{json, Value};

use crate::bad_input;
use crate::secret_input::{self, ValueSource};

/// One `--secret` flag. Its value is read only when needed and never printed (Debug redacts it).
#[derive(Clone)]
pub struct SecretArg {
    /// The Spin variable, lowercase.
    pub variable: String,
    source: SecretSource,
}

#[derive(Clone)]
enum SecretSource {
    Literal(String),
    File(PathBuf),
    Env,
}

impl fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretArg({} = <redacted>)", self.variable)
    }
}

impl SecretArg {
    /// Parses `NAME=VALUE`, `NAME=@FILE` or `NAME`; the error never repeats the value.
    pub fn parse(arg: &str) -> Result<Self, String> {
        let (name, source) = match arg.split_once('=') {
            Some((name, rest)) => match rest.strip_prefix('@') {
                Some(file) => (name, SecretSource::File(PathBuf::from(file))),
                None => (name, SecretSource::Literal(rest.to_string())),
            },
            None => (arg, SecretSource::Env),
        };
        let variable = name.to_ascii_lowercase();
        let valid = variable.starts_with(|c: char| c.is_ascii_lowercase())
            && variable
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            // Not echoed: a value given without `NAME=` would be the "name" here.
            return Err(
                "the name before `=` is not a Spin variable name (letters, digits and `_`, starting with a letter); write NAME=VALUE, NAME=@FILE or NAME".to_string(),
            );
        }
        Ok(SecretArg { variable, source })
    }

    /// The value, from the flag, the file or `SPIN_VARIABLE_<NAME>`; a file and the variable are
    /// read as `secrets set` reads them (UTF-8, a file's one final line ending dropped).
    pub fn value(&self) -> anyhow::Result<String> {
        match &self.source {
            SecretSource::Literal(value) => Ok(value.clone()),
            SecretSource::File(path) => {
                let what = format!("--secret {}=@{}", self.variable, path.display());
                let value = secret_input::read_source(ValueSource::File(path), &what)?;
                Ok(value.unwrap_or_default())
            }
            SecretSource::Env => {
                let env = format!("SPIN_VARIABLE_{}", self.variable.to_ascii_uppercase());
                secret_input::read_source(ValueSource::Env(&env), &env)?.ok_or_else(|| {
                    bad_input!(
                        "--secret {}: no value given and {env} is not set; pass --secret {}=<value>, --secret {}=@<file>, or set {env}",
                        self.variable, self.variable, self.variable
                    )
                })
            }
        }
    }
}

/// The Secrets the objects provide themselves: Secret objects, and those a SecretProviderClass
/// syncs from Key Vault (the CSI driver creates them; nobody passes their values to apply).
pub fn provided_secrets(objects: &[Value]) -> BTreeSet<&str> {
    let synced = objects
        .iter()
        .filter(|o| o["kind"] == "SecretProviderClass")
        .filter_map(|o| o["spec"]["secretObjects"].as_array())
        .flatten()
        .filter_map(|s| s["secretName"].as_str());
    objects
        .iter()
        .filter(|o| o["kind"] == "Secret")
        .filter_map(|o| o["metadata"]["name"].as_str())
        .chain(synced)
        .collect()
}

/// A workload variable read from a Secret key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    pub variable: String,
    pub secret: String,
    pub key: String,
    pub optional: bool,
}

/// The Secret keys the workloads in `objects` read variables from (SpinApp `variables`,
/// container `env`), with the Spin variable each feeds.
pub fn secret_refs(objects: &[Value]) -> Vec<SecretRef> {
    let mut refs = Vec::new();
    for object in objects {
        let entries: Vec<(&Value, String)> = if object["kind"] == "SpinApp" {
            vars(&object["spec"]["variables"], |name| name.to_string())
        } else {
            object
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|c| vars(&c["env"], spin_variable_of_env))
                .collect()
        };
        for (entry, variable) in entries {
            let selector = &entry["valueFrom"]["secretKeyRef"];
            if let (Some(secret), Some(key)) = (selector["name"].as_str(), selector["key"].as_str())
            {
                refs.push(SecretRef {
                    variable,
                    secret: secret.to_string(),
                    key: key.to_string(),
                    optional: selector["optional"].as_bool().unwrap_or(false),
                });
            }
        }
    }
    refs
}

fn vars(list: &Value, variable: impl Fn(&str) -> String) -> Vec<(&Value, String)> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| Some((v, variable(v["name"].as_str()?))))
        .collect()
}

/// Container env `SPIN_VARIABLE_API_KEY` or `API_KEY` feeds Spin variable `api_key`.
fn spin_variable_of_env(env: &str) -> String {
    env.strip_prefix("SPIN_VARIABLE_")
        .unwrap_or(env)
        .to_ascii_lowercase()
}

/// Checks every `--secret` names a variable the workload reads from a Secret, and that every
/// required key has a value (given now, or already in the live Secret). Errors list every name.
pub fn plan(
    refs: &[SecretRef],
    given: &[SecretArg],
    live_keys: &dyn Fn(&str) -> BTreeSet<String>,
) -> anyhow::Result<Vec<(String, BTreeMap<String, String>)>> {
    let mut values: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for arg in given {
        let matching: Vec<&SecretRef> =
            refs.iter().filter(|r| r.variable == arg.variable).collect();
        if matching.is_empty() {
            let known: BTreeSet<&str> = refs.iter().map(|r| r.variable.as_str()).collect();
            return Err(bad_input!(
                "--secret {}: the workload reads no variable `{}` from a Secret (secret and required variables of spin.toml: {})",
                arg.variable,
                arg.variable,
                if known.is_empty() { "none".to_string() } else { known.into_iter().collect::<Vec<_>>().join(", ") }
            ));
        }
        let value = arg.value()?;
        for r in matching {
            values
                .entry(r.secret.clone())
                .or_default()
                .insert(r.key.clone(), value.clone());
        }
    }
    let missing: Vec<&SecretRef> = refs
        .iter()
        .filter(|r| !r.optional)
        .filter(|r| {
            let given = values
                .get(&r.secret)
                .is_some_and(|v| v.contains_key(&r.key));
            !given && !live_keys(&r.secret).contains(&r.key)
        })
        .collect();
    if !missing.is_empty() {
        return Err(missing_values(&missing));
    }
    Ok(values.into_iter().collect())
}

/// The error for required variables with no value, given or live; each named with its key.
pub fn missing_values(missing: &[&SecretRef]) -> anyhow::Error {
    let named: Vec<String> = missing
        .iter()
        .map(|r| format!("{} (key `{}` of Secret {})", r.variable, r.key, r.secret))
        .collect();
    bad_input!(
        "required secret variables have no value: {}; pass --secret <name>=<value> (or =@<file>, or set SPIN_VARIABLE_<NAME>); nothing was applied",
        named.join(", ")
    )
}

/// The Secret object holding `data` (live values merged with the given ones), base64 in `data`.
pub fn secret_object(name: &str, data: &BTreeMap<String, Vec<u8>>, labels: &Value) -> Value {
    let encoded: BTreeMap<&String, String> = data
        .iter()
        .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": labels},
        "type": "Opaque",
        "data": encoded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs() -> Vec<SecretRef> {
        secret_refs(&[json!({"kind": "SpinApp", "spec": {"variables": [
            {"name": "api_key", "valueFrom": {"secretKeyRef": {"name": "app-variables", "key": "api_key"}}},
            {"name": "greeting", "value": "hi"},
            {"name": "token", "valueFrom": {"secretKeyRef": {"name": "app-variables", "key": "token", "optional": true}}}
        ]}})])
    }

    #[test]
    fn flags_parse_and_debug_never_shows_values() {
        let arg = SecretArg::parse("API_KEY=s3cret").unwrap();
        assert_eq!(arg.variable, "api_key");
        assert!(!format!("{arg:?}").contains("s3cret"));
        assert_eq!(arg.value().unwrap(), "s3cret");
        assert!(SecretArg::parse("9lives=x")
            .unwrap_err()
            .contains("not a Spin variable name"));
        // A value passed without `NAME=` is taken as the name: not repeated either.
        for arg in ["bad-name=hunter2", "hunter2!"] {
            assert!(!SecretArg::parse(arg).unwrap_err().contains("hunter2"));
        }
    }

    #[test]
    fn a_secret_file_loses_one_final_line_ending_as_secrets_set_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        // (file bytes, the value)
        let cases: [(&[u8], &str); 5] = [
            (b"s3cret\n", "s3cret"),
            (b"s3cret\r\n", "s3cret"),
            (b"s3cret\n\n", "s3cret\n"),
            (b"line one\nline two", "line one\nline two"),
            (b"", ""),
        ];
        for (i, (bytes, expected)) in cases.into_iter().enumerate() {
            let file = dir.path().join(format!("value-{i}"));
            std::fs::write(&file, bytes).unwrap();
            let arg = SecretArg::parse(&format!("x=@{}", file.display())).unwrap();
            assert_eq!(arg.value().unwrap(), expected, "{bytes:?}");
        }
        // Bytes that are not text are refused (exit 2) naming the flag and file, not the value.
        let file = dir.path().join("binary");
        std::fs::write(&file, b"hunter2\xff\n").unwrap();
        let err = SecretArg::parse(&format!("x=@{}", file.display()))
            .unwrap()
            .value()
            .unwrap_err();
        let message = format!("{err:#}");
        assert!(crate::error::exit_code(&err) == 2, "{message}");
        assert!(
            message.contains(&format!("--secret x=@{}", file.display())),
            "{message}"
        );
        assert!(message.contains("not UTF-8"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        let missing = SecretArg::parse("x=@/no/such/file")
            .unwrap()
            .value()
            .unwrap_err();
        assert!(format!("{missing:#}").contains("cannot read --secret x=@/no/such/file"));
    }

    #[test]
    fn deployment_env_maps_back_to_spin_variables() {
        let refs = secret_refs(&[
            json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
                {"name": "app", "env": [{"name": "SPIN_VARIABLE_API_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "api_key"}}}]}
            ]}}}}),
        ]);
        assert_eq!(refs[0].variable, "api_key");
    }

    #[test]
    fn required_keys_come_from_flags_or_the_live_secret() {
        let none = |_: &str| BTreeSet::new();
        let err = plan(&refs(), &[], &none).unwrap_err().to_string();
        assert!(
            err.contains("api_key (key `api_key` of Secret app-variables)"),
            "{err}"
        );
        assert!(
            !err.contains("token"),
            "optional keys are not required: {err}"
        );
        let live = |_: &str| BTreeSet::from(["api_key".to_string()]);
        assert!(plan(&refs(), &[], &live).unwrap().is_empty());
        let given = [SecretArg::parse("api_key=v").unwrap()];
        let planned = plan(&refs(), &given, &none).unwrap();
        assert_eq!(planned[0].0, "app-variables");
        assert_eq!(planned[0].1["api_key"], "v");
    }

    #[test]
    fn unknown_variables_are_refused_with_the_known_ones() {
        let given = [SecretArg::parse("greeting=x").unwrap()];
        let err = plan(&refs(), &given, &|_| BTreeSet::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("api_key, token"), "{err}");
    }
}
