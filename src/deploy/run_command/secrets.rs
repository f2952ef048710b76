//! The Secrets of an apply through run command, handled in the cluster as a direct apply handles
//! the live Secret: given keys merged over the live ones, required keys checked before anything.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use serde_json::{json, Value};

use crate::bad_input;
use crate::manifests::secrets::{self, SecretArg};
use crate::workload::objects::MANAGED_BY;
use crate::workload::validate::DnsLabel;
use crate::yaml::to_yaml;

/// The line the remote command prints per required key with no value: `spin-aks-missing-secret <secret> <key>`.
const MISSING_MARK: &str = "spin-aks-missing-secret";

/// What the command does with the Secrets the workload reads variables from, as a direct apply
/// does with the live Secret: given keys are merged over the live ones there, and required keys
/// given no value must already be live, else nothing is applied.
pub struct SecretPlan {
    /// The workload's references, to name the variables behind missing keys.
    refs: Vec<secrets::SecretRef>,
    /// Secret name → the values given now.
    given: BTreeMap<String, BTreeMap<String, String>>,
}

impl SecretPlan {
    pub fn new(objects: &[Value], given: &[SecretArg]) -> anyhow::Result<Self> {
        let provided = secrets::provided_secrets(objects);
        let refs: Vec<secrets::SecretRef> = secrets::secret_refs(objects)
            .into_iter()
            .filter(|r| !provided.contains(r.secret.as_str()))
            .collect();
        for r in &refs {
            shell_safe_key(r)?;
        }
        // Required keys are checked in the cluster, where the live Secret is.
        let all_optional: Vec<secrets::SecretRef> = refs
            .iter()
            .map(|r| secrets::SecretRef {
                optional: true,
                ..r.clone()
            })
            .collect();
        let given = secrets::plan(&all_optional, given, &|_| BTreeSet::new())?;
        Ok(SecretPlan {
            refs,
            given: given.into_iter().collect(),
        })
    }

    /// The Secrets the workload reads, given values now or not: a prune keeps them.
    pub fn read(&self) -> BTreeSet<String> {
        self.refs.iter().map(|r| r.secret.clone()).collect()
    }

    /// Required references with no value given now: their keys must be live.
    fn needed_live(&self) -> Vec<&secrets::SecretRef> {
        self.refs
            .iter()
            .filter(|r| !r.optional)
            .filter(|r| {
                !self
                    .given
                    .get(&r.secret)
                    .is_some_and(|v| v.contains_key(&r.key))
            })
            .collect()
    }

    /// The given Secrets, without their values (the command writes those: [`SecretPlan::file`]).
    pub fn objects(&self) -> Vec<Value> {
        let labels = json!({ "app.kubernetes.io/managed-by": MANAGED_BY });
        self.given
            .keys()
            .map(|name| {
                let mut object = secrets::secret_object(name, &BTreeMap::new(), &labels);
                if let Some(map) = object.as_object_mut() {
                    map.remove("data");
                }
                object
            })
            .collect()
    }

    /// A given Secret's file, its `data` last so the command can append the live keys not given.
    pub fn file(&self, object: &Value) -> Option<(String, Vec<u8>)> {
        let name = object["metadata"]["name"].as_str()?;
        let values = self.given.get(name)?;
        let mut text = to_yaml(object);
        text.push_str("data:\n");
        for (key, value) in values {
            let encoded = base64::engine::general_purpose::STANDARD.encode(value);
            text.push_str(&format!("  {key}: {encoded}\n"));
        }
        Some((secret_file(name), text.into_bytes()))
    }

    /// The shell lines before the apply: one `spin-aks-missing-secret <secret> <key>` line per
    /// required key neither given nor live (then exit 3), and the live keys not given appended to
    /// each given Secret's file.
    pub fn steps(&self, namespace: &DnsLabel) -> Vec<String> {
        let mut steps = Vec::new();
        let needed = self.needed_live();
        if !needed.is_empty() {
            steps.push("missing=".to_string());
            let secrets: BTreeSet<&str> = needed.iter().map(|r| r.secret.as_str()).collect();
            for secret in secrets {
                let keys = "{{range $k, $v := .data}}{{$k}}{{\"\\n\"}}{{end}}";
                steps.push(format!("live=$({})", live_secret(secret, namespace, keys)));
                for r in needed.iter().filter(|r| r.secret == secret) {
                    steps.push(format!(
                        "printf '%s\\n' \"$live\" | grep -qxF '{key}' || {{ echo '{MISSING_MARK} {secret} {key}'; missing=1; }}",
                        key = r.key,
                    ));
                }
            }
            steps.push("[ -z \"$missing\" ] || exit 3".to_string());
        }
        for (name, values) in &self.given {
            let not_given: Vec<String> =
                values.keys().map(|k| format!("(ne $k \"{k}\")")).collect();
            let template = format!(
                "{{{{range $k, $v := .data}}}}{{{{if and {}}}}}  {{{{$k}}}}: {{{{$v}}}}{{{{\"\\n\"}}}}{{{{end}}}}{{{{end}}}}",
                not_given.join(" ")
            );
            steps.push(format!(
                "{} >> {}",
                live_secret(name, namespace, &template),
                secret_file(name)
            ));
        }
        steps
    }

    /// The missing-key lines of the command's logs as the error a direct apply gives.
    pub fn missing_in(&self, logs: &str) -> Option<anyhow::Error> {
        let missing: Vec<&secrets::SecretRef> = logs
            .lines()
            .filter_map(|line| line.trim().strip_prefix(MISSING_MARK))
            .filter_map(|rest| rest.trim().split_once(' '))
            .flat_map(|(secret, key)| {
                self.refs
                    .iter()
                    .filter(move |r| r.secret == secret && r.key == key && !r.optional)
            })
            .collect();
        (!missing.is_empty()).then(|| secrets::missing_values(&missing))
    }
}

fn secret_file(name: &str) -> String {
    format!("app/secret-{name}.yaml")
}

/// `kubectl get` of a Secret through a go template; nothing, and success, when it does not exist.
fn live_secret(name: &str, namespace: &DnsLabel, template: &str) -> String {
    format!(
        "kubectl get secret {name} -n {namespace} --ignore-not-found -o go-template='{template}'"
    )
}

/// Secret keys go into the shell command: only what Kubernetes allows in a key.
fn shell_safe_key(r: &secrets::SecretRef) -> anyhow::Result<()> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if valid(&r.key) && valid(&r.secret) {
        return Ok(());
    }
    Err(bad_input!(
        "variable {} reads key `{}` of Secret `{}`, which is not a valid Secret key or name (letters, digits, `-`, `_`, `.`)",
        r.variable,
        r.key,
        r.secret
    ))
}
