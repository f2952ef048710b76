//! apply through AKS run command, for API servers spin-aks cannot reach (private clusters): the
//! objects go as files in the command's context; kubectl merges Secrets, applies and waits there.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;

use serde_json::{json, Value};

use super::deploy::{self, Aks, AppRecord, DeployReport};
use super::identity;
use crate::azure::run_command;
use crate::bad_input;
use crate::cli::{DeployArgs, DryRun, Via};
use crate::cluster::apply::{AppliedObject, ObjectAction, FIELD_MANAGER};
use crate::cluster::expose::Exposure;
use crate::cluster::rollout::Rollout;
use crate::cluster::secrets;
use crate::cluster::source::Objects;
use crate::kube::image::ImageRef;
use crate::kube::objects::MANAGED_BY;
use crate::kube::render::{to_yaml, yaml_stream};
use crate::output::Output;

const EXECUTOR: &str = include_str!("../../manifests/spinapp-executor.yaml");
/// The line the remote command prints per workload: `spin-aks-rollout <ready> <desired>`.
const ROLLOUT_MARK: &str = "spin-aks-rollout";
/// The line the remote command prints per required key with no value: `spin-aks-missing-secret <secret> <key>`.
const MISSING_MARK: &str = "spin-aks-missing-secret";

/// Whether to go through run command: asked for, or automatically when the API server is private.
pub async fn chosen(aks: &Aks, via: Via) -> anyhow::Result<bool> {
    Ok(match via {
        Via::Api => false,
        Via::RunCommand => true,
        Via::Auto => aks.arm.cluster(&aks.cluster).await?.is_private(),
    })
}

/// The apply step through run command; the same report as a direct apply.
pub async fn deploy(
    record: &AppRecord,
    aks: &Aks,
    args: &DeployArgs,
    exposure: &Exposure,
    image: Option<ImageRef>,
    out: &Output,
) -> anyhow::Result<DeployReport> {
    refuse_unsupported(args, exposure)?;
    let image = deploy::choose_image(image, &record.state, out)?;
    let Objects::Manifests(objects) =
        deploy::load_objects(&record.app, &record.state, args, &image)?
    else {
        return Err(bad_input!(
            "a Helm chart cannot be installed through AKS run command by spin-aks yet; render it (helm template) into --dir, or run from a network that reaches the API server"
        ));
    };
    let fallback = deploy::last_namespace_on(&record.state, &aks.cluster.name);
    let namespace = deploy::namespace_for(args.target.namespace.as_deref(), fallback, &objects)?;
    identity::check_federation(record.state.identity.as_ref(), &namespace, &objects)?;
    let secrets = SecretPlan::new(&objects, args)?;
    let (files, objects) = context_files(&namespace, objects, &secrets);
    let command = command(&namespace, &secrets, &workload_names(&objects), args);
    out.info(format!(
        "applying through AKS run command on {} (kubectl runs in the cluster)",
        aks.cluster.name
    ));
    let started = std::time::Instant::now();
    let result = run_command::run(&aks.arm, &aks.cluster, &command, &files).await?;
    if let Some(missing) = secrets.missing_in(&result.logs) {
        return Err(missing);
    }
    let logs = result.success("kubectl apply through run command")?;
    deploy::remember(
        &record.state_file,
        &record.key,
        &aks.cluster.name,
        &namespace,
    )?;
    Ok(DeployReport {
        cluster: aks.cluster.name.clone(),
        namespace,
        image: image.to_string(),
        objects: applied(&objects, &logs),
        rollout: rollout(&logs, !args.no_wait, started.elapsed().as_secs_f64()),
        endpoint: None,
        diff: None,
        dry_run: false,
    })
}

fn refuse_unsupported(args: &DeployArgs, exposure: &Exposure) -> anyhow::Result<()> {
    let unsupported = [
        (args.dry_run == DryRun::Server, "--dry-run server"),
        (args.diff, "--diff"),
        (args.prune, "--prune"),
        (!matches!(exposure, Exposure::None), "--expose"),
    ];
    match unsupported.iter().find(|(given, _)| *given) {
        Some((_, flag)) => Err(bad_input!(
            "{flag} is not available through AKS run command (the cluster's API server is private); run from a network that reaches it, or drop {flag}"
        )),
        None => Ok(()),
    }
}

/// The run command's files: name → bytes.
type ContextFiles = Vec<(String, Vec<u8>)>;

/// What the command does with the Secrets the workload reads variables from, as a direct apply
/// does with the live Secret: given keys are merged over the live ones there, and required keys
/// given no value must already be live, else nothing is applied.
struct SecretPlan {
    /// The workload's references, to name the variables behind missing keys.
    refs: Vec<secrets::SecretRef>,
    /// Secret name → the values given now.
    given: BTreeMap<String, BTreeMap<String, String>>,
}

impl SecretPlan {
    fn new(objects: &[Value], args: &DeployArgs) -> anyhow::Result<Self> {
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
        let given = secrets::plan(&all_optional, &args.secrets, &|_| BTreeSet::new())?;
        Ok(SecretPlan {
            refs,
            given: given.into_iter().collect(),
        })
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

    /// Each given Secret as a file whose `data` ends the document, so the command can append the
    /// live keys not given; and the Secret without values, for the report.
    fn files(&self, namespace: &str) -> (ContextFiles, Vec<Value>) {
        let labels = json!({ "app.kubernetes.io/managed-by": MANAGED_BY });
        self.given
            .iter()
            .map(|(name, values)| {
                let mut object = secrets::secret_object(name, &BTreeMap::new(), &labels);
                object["metadata"]["namespace"] = json!(namespace);
                if let Some(map) = object.as_object_mut() {
                    map.remove("data");
                }
                let mut text = to_yaml(&object);
                text.push_str("data:\n");
                for (key, value) in values {
                    let encoded = base64::engine::general_purpose::STANDARD.encode(value);
                    text.push_str(&format!("  {key}: {encoded}\n"));
                }
                ((secret_file(name), text.into_bytes()), object)
            })
            .unzip()
    }

    /// The shell lines before the apply: one `spin-aks-missing-secret <secret> <key>` line per
    /// required key neither given nor live (then exit 3), and the live keys not given appended to
    /// each given Secret's file.
    fn steps(&self, namespace: &str) -> Vec<String> {
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
    fn missing_in(&self, logs: &str) -> Option<anyhow::Error> {
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
    format!("2-secret-{name}.yaml")
}

/// `kubectl get` of a Secret through a go template; nothing, and success, when it does not exist.
fn live_secret(name: &str, namespace: &str, template: &str) -> String {
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

/// The zip context (namespace, the standard executor when a SpinApp needs it, the given Secrets,
/// the app's objects), and every object applied, for the report.
fn context_files(
    namespace: &str,
    mut objects: Vec<Value>,
    secrets: &SecretPlan,
) -> (ContextFiles, Vec<Value>) {
    for object in &mut objects {
        object["metadata"]["namespace"] = json!(namespace);
    }
    let mut files = vec![(
        "0-namespace.yaml".to_string(),
        yaml_stream(&[
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        ])
        .into_bytes(),
    )];
    if objects.iter().any(|o| o["kind"] == "SpinApp") {
        files.push(("1-executor.yaml".to_string(), EXECUTOR.as_bytes().to_vec()));
    }
    let (secret_files, mut applied) = secrets.files(namespace);
    files.extend(secret_files);
    files.push(("3-app.yaml".to_string(), yaml_stream(&objects).into_bytes()));
    applied.append(&mut objects);
    (files, applied)
}

/// The Deployments to wait for: each Deployment, and the one SpinKube makes per SpinApp.
fn workload_names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o["kind"] == "SpinApp" || o["kind"] == "Deployment")
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// The shell command run in the cluster: the Secret steps, server-side apply, then per workload
/// its creation, its rollout and a `spin-aks-rollout <ready> <desired>` line; one line each, the
/// first failure ends it.
fn command(
    namespace: &str,
    secrets: &SecretPlan,
    workloads: &[String],
    args: &DeployArgs,
) -> String {
    let force = if args.force_conflicts {
        " --force-conflicts"
    } else {
        ""
    };
    let mut steps = vec!["set -e".to_string()];
    steps.extend(secrets.steps(namespace));
    steps.push(format!(
        "kubectl apply --server-side --field-manager={FIELD_MANAGER}{force} -n {namespace} -f ."
    ));
    if !args.no_wait {
        let timeout = args.timeout.as_secs().max(1);
        for name in workloads {
            let target = format!("deployment/{name} -n {namespace}");
            steps.push(format!(
                "kubectl wait --for=create {target} --timeout={timeout}s"
            ));
            steps.push(format!(
                "kubectl rollout status {target} --timeout={timeout}s"
            ));
            steps.push(format!(
                "kubectl get {target} -o jsonpath='{ROLLOUT_MARK} {{.status.readyReplicas}} {{.spec.replicas}}{{\"\\n\"}}'"
            ));
        }
    }
    steps.join("\n")
}

/// The objects kubectl reports as applied (`kind.group/name serverside-applied`).
fn applied(objects: &[Value], logs: &str) -> Vec<AppliedObject> {
    objects
        .iter()
        .filter_map(|object| {
            let kind = object["kind"].as_str()?;
            let name = object["metadata"]["name"].as_str()?;
            let reported = logs.lines().any(|line| {
                line.split_whitespace().next().is_some_and(|resource| {
                    let (kind_group, reported_name) = resource.split_once('/').unwrap_or_default();
                    reported_name == name
                        && kind_group.split('.').next() == Some(&kind.to_ascii_lowercase())
                })
            });
            reported.then(|| AppliedObject {
                kind: kind.to_string(),
                name: name.to_string(),
                action: ObjectAction::Configured,
                result: Value::Null,
            })
        })
        .collect()
}

/// The summed `spin-aks-rollout` lines, when the command waited.
fn rollout(logs: &str, waited: bool, seconds: f64) -> Option<Rollout> {
    waited.then(|| {
        let counts = logs
            .lines()
            .filter_map(|l| l.trim().strip_prefix(ROLLOUT_MARK))
            .map(|rest| {
                let mut numbers = rest
                    .split_whitespace()
                    .map(|n| n.parse::<i32>().unwrap_or(0));
                (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
            });
        let (ready, desired) = counts.fold((0, 0), |(r, d), (r2, d2)| (r + r2, d + d2));
        Rollout {
            ready,
            desired,
            seconds,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_output_becomes_applied_objects_and_rollout_counts() {
        let objects = vec![
            json!({"kind": "Secret", "metadata": {"name": "app-variables"}}),
            json!({"kind": "SpinApp", "metadata": {"name": "app"}}),
        ];
        let logs = "namespace/ns serverside-applied\nsecret/app-variables serverside-applied\nspinapp.core.spinkube.dev/app serverside-applied\nspin-aks-rollout 2 2\n";
        let names: Vec<String> = applied(&objects, logs)
            .into_iter()
            .map(|o| o.kind)
            .collect();
        assert_eq!(names, ["Secret", "SpinApp"]);
        let counted = rollout(logs, true, 1.0).unwrap();
        assert_eq!((counted.ready, counted.desired), (2, 2));
    }
}
