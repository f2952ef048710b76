//! The deploy route through AKS run command, for API servers spin-aks cannot reach (private
//! clusters): the objects go as files in the command's context; kubectl applies and waits there.

mod applyset;
mod secrets;
mod status;

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde_json::{json, Value};

use self::applyset::RemoteSet;
use self::secrets::SecretPlan;
use super::plan::{last_namespace_on, DeployPlan};
use super::route::{Deleted, Route, RouteApplied, RouteFeature, Waited};
use super::settings::Settings;
use crate::azure::run_command;
use crate::bad_input;
use crate::cluster::apply::{AppliedObject, ObjectAction, FIELD_MANAGER};
use crate::cluster::rollout::Rollout;
use crate::cluster::status::{compose, AppStatus, Place};
use crate::context::target::Aks;
use crate::manifests::source::Objects;
use crate::output::Output;
use crate::state::AppState;
use crate::workload::render::yaml_stream;
use crate::workload::validate::{parse_dns_subdomain, DnsLabel};

const EXECUTOR: &str = include_str!("../../../manifests/spinapp-executor.yaml");
/// The line the remote command prints per workload: `spin-aks-rollout <ready> <desired>`.
const ROLLOUT_MARK: &str = "spin-aks-rollout";

/// An AKS cluster reached through run command.
pub struct RunCommand {
    aks: Aks,
    /// The app's last namespace on this cluster, else `default`.
    default_namespace: String,
}

impl RunCommand {
    pub fn new(aks: Aks, remembered: &AppState) -> Self {
        let default_namespace = last_namespace_on(remembered, &aks.cluster.name).to_string();
        RunCommand {
            aks,
            default_namespace,
        }
    }
}

#[async_trait(?Send)]
impl Route for RunCommand {
    fn cluster(&self) -> &str {
        &self.aks.cluster.name
    }

    fn default_namespace(&self) -> &str {
        &self.default_namespace
    }

    fn supports(&self, feature: RouteFeature) -> anyhow::Result<()> {
        let flag = match feature {
            RouteFeature::ServerDryRun => "--dry-run server",
            RouteFeature::Diff => "--diff",
            RouteFeature::Expose => "--expose",
            RouteFeature::HelmChart => {
                return Err(bad_input!(
                    "a Helm chart cannot be installed through AKS run command by spin-aks yet; render it (helm template) into --dir, or run from a network that reaches the API server"
                ))
            }
        };
        Err(bad_input!(
            "{flag} is not available through AKS run command (the cluster's API server is private); run from a network that reaches it, or drop {flag}"
        ))
    }

    /// kubectl merges the Secrets, applies, prunes and waits in the cluster; the same report as a
    /// direct apply.
    async fn apply(&self, plan: &DeployPlan<'_>, out: &Output) -> anyhow::Result<RouteApplied> {
        let Objects::Manifests(objects) = &plan.objects else {
            return Err(self.supports(RouteFeature::HelmChart).unwrap_err());
        };
        let namespace = shell_label(&plan.namespace, "namespace")?;
        let name = app_label(plan.name)?;
        let settings = plan.settings;
        let secrets = SecretPlan::new(objects, &settings.secrets)?;
        let (mut members, given) = members(&namespace, &secrets, objects.clone());
        check_members(&members)?;
        let set = RemoteSet::new(&name, &namespace, &mut members, secrets.read());
        let (given_secrets, objects) = members.split_at(given);
        let files = context_files(&namespace, given_secrets, objects, &secrets, &set);
        let steps = steps(
            &namespace,
            &secrets,
            &set,
            &workload_names(objects),
            settings,
        );
        let started = std::time::Instant::now();
        let result = self.run_script("applying", steps, &files, out).await?;
        if let Some(missing) = secrets.missing_in(&result.logs) {
            return Err(missing);
        }
        let logs = result.success("kubectl apply through run command")?;
        Ok(RouteApplied {
            objects: applied(&members, &logs)
                .into_iter()
                .chain(applyset::deleted_in(&logs))
                .collect(),
            diff: None,
            rollout: rollout(&logs, settings.wait, started.elapsed().as_secs_f64()),
        })
    }

    /// The command waited in the cluster: its counts; no endpoint (`--expose` is refused).
    async fn wait(
        &self,
        _plan: &DeployPlan<'_>,
        applied: &RouteApplied,
        _out: &Output,
    ) -> anyhow::Result<Waited> {
        Ok(Waited {
            rollout: applied.rollout.clone(),
            endpoint: None,
        })
    }

    /// Read by kubectl in the cluster, made as a direct read makes it.
    async fn status(&self, namespace: &str, name: &str, out: &Output) -> anyhow::Result<AppStatus> {
        let steps = status::steps(&shell_label(namespace, "namespace")?, &app_label(name)?);
        let logs = self
            .run_script("reading the status", steps, &[], out)
            .await?
            .success("kubectl get through run command")?;
        let place = Place {
            cluster: &self.aks.cluster.name,
            namespace,
            name,
        };
        compose(&place, status::observed(&logs)?)
    }

    /// The members of the app's ApplySet and its parent, as a direct delete.
    async fn delete(
        &self,
        namespace: &str,
        name: &str,
        dry_run: bool,
        out: &Output,
    ) -> anyhow::Result<Vec<Deleted>> {
        if dry_run {
            self.supports(RouteFeature::ServerDryRun)?;
        }
        let (namespace, name) = (shell_label(namespace, "namespace")?, app_label(name)?);
        let set = RemoteSet::new(&name, &namespace, &mut [], BTreeSet::new());
        let logs = self
            .run_script("deleting", set.delete(), &[], out)
            .await?
            .success("kubectl delete through run command")?;
        Ok(applyset::deleted_in(&logs)
            .into_iter()
            .map(|d| Deleted {
                kind: d.kind,
                name: d.name,
            })
            .collect())
    }
}

impl RunCommand {
    /// Runs `steps` in the cluster as one shell script that stops at the first failing step,
    /// saying what it is `doing` there.
    async fn run_script(
        &self,
        doing: &str,
        steps: Vec<String>,
        files: &[(String, Vec<u8>)],
        out: &Output,
    ) -> anyhow::Result<run_command::CommandResult> {
        let aks = &self.aks;
        out.info(format!(
            "{doing} through AKS run command on {} (kubectl runs in the cluster)",
            aks.cluster.name
        ));
        let script = ["set -e".to_string()]
            .into_iter()
            .chain(steps)
            .collect::<Vec<_>>()
            .join("\n");
        run_command::run(&aks.arm, &aks.cluster, &script, files).await
    }
}

/// What the app applies, in `namespace`: the given Secrets (their count second), then `objects`.
fn members(namespace: &DnsLabel, secrets: &SecretPlan, objects: Vec<Value>) -> (Vec<Value>, usize) {
    let secret_objects = secrets.objects();
    let given = secret_objects.len();
    let mut members: Vec<Value> = secret_objects.into_iter().chain(objects).collect();
    for member in &mut members {
        member["metadata"]["namespace"] = json!(namespace.as_str());
    }
    (members, given)
}

/// A name that goes into the shell command: a DNS label, so it cannot break out of it.
fn shell_label(value: &str, what: &str) -> anyhow::Result<DnsLabel> {
    DnsLabel::parse(value).map_err(|e| bad_input!("{what} {e}"))
}

/// The app's name (made a DNS label from spin.toml's name) as a shell word.
fn app_label(name: &str) -> anyhow::Result<DnsLabel> {
    shell_label(name, "the app's name (from spin.toml)")
}

/// Names go into the shell command: each must be one Kubernetes allows, so none can break out of it.
fn check_members(members: &[Value]) -> anyhow::Result<()> {
    for member in members {
        let kind = member["kind"].as_str().unwrap_or_default();
        let api_version = member["apiVersion"].as_str().unwrap_or_default();
        let kind_ok = !kind.is_empty() && kind.chars().all(|c| c.is_ascii_alphanumeric());
        let version_ok = !api_version.is_empty()
            && api_version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '/'));
        if !kind_ok || !version_ok {
            return Err(bad_input!(
                "an object has apiVersion `{api_version}` and kind `{kind}`, which are not Kubernetes names"
            ));
        }
        let name = member["metadata"]["name"].as_str().unwrap_or_default();
        parse_dns_subdomain(name).map_err(|e| bad_input!("{kind} name {e}"))?;
    }
    Ok(())
}

/// The run command's files: name → bytes.
type ContextFiles = Vec<(String, Vec<u8>)>;

/// The zip context: `setup/` (the namespace, and the standard executor when a SpinApp needs it),
/// `app/` (the given Secrets, one file each, and the app's objects) and the ApplySet parent.
fn context_files(
    namespace: &DnsLabel,
    given_secrets: &[Value],
    objects: &[Value],
    secrets: &SecretPlan,
    set: &RemoteSet,
) -> ContextFiles {
    let namespace_object =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace.as_str()}});
    let mut files = vec![(
        "setup/0-namespace.yaml".to_string(),
        yaml_stream(&[namespace_object]).into_bytes(),
    )];
    if objects.iter().any(|o| o["kind"] == "SpinApp") {
        files.push((
            "setup/1-executor.yaml".to_string(),
            EXECUTOR.as_bytes().to_vec(),
        ));
    }
    files.extend(given_secrets.iter().filter_map(|s| secrets.file(s)));
    files.push((
        "app/objects.yaml".to_string(),
        yaml_stream(objects).into_bytes(),
    ));
    files.push(set.parent_file());
    files
}

/// The Deployments to wait for: each Deployment, and the one SpinKube makes per SpinApp.
fn workload_names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o["kind"] == "SpinApp" || o["kind"] == "Deployment")
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// The steps of the apply run in the cluster: the Secret steps, the namespace and executor, the
/// ApplySet parent, server-side apply of the app, the prune, then per workload its creation, its
/// rollout and a `spin-aks-rollout <ready> <desired>` line.
fn steps(
    namespace: &DnsLabel,
    secrets: &SecretPlan,
    set: &RemoteSet,
    workloads: &[String],
    args: &Settings,
) -> Vec<String> {
    let force = if args.force_conflicts {
        " --force-conflicts"
    } else {
        ""
    };
    let mut steps = secrets.steps(namespace);
    steps.push(format!(
        "kubectl apply --server-side --field-manager={FIELD_MANAGER} -n {namespace} -f setup/"
    ));
    steps.extend(set.before_apply());
    steps.push(format!(
        "kubectl apply --server-side --field-manager={FIELD_MANAGER}{force} -n {namespace} -f app/"
    ));
    if args.prune {
        steps.extend(set.prune());
    }
    if args.wait {
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
    steps
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
    fn names_that_could_break_out_of_the_shell_command_are_bad_input() {
        let object = |kind: &str, name: &str| json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name}});
        assert!(check_members(&[object("ConfigMap", "app.config-1")]).is_ok());
        let refused = [
            object("ConfigMap", "x';kubectl delete ns shop;'"),
            object("Config Map", "app"),
        ];
        for member in refused {
            let err = check_members(&[member]).unwrap_err();
            assert_eq!(crate::error::exit_code(&err), 2, "{err}");
        }
        for namespace in ["shop$(id)", "a b", "-x", ""] {
            let err = shell_label(namespace, "namespace").unwrap_err();
            assert_eq!(crate::error::exit_code(&err), 2, "{err}");
        }
    }

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
