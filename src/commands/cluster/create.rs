//! `spin-aks cluster create` and `cluster delete`: an AKS cluster ready for Spin apps made through
//! ARM (the steps are `crate::provision`), confirmed when it costs money, then SpinKube installed.

use serde_json::json;

use super::{describe, install};
use crate::azure::arm::Arm;
use crate::bad_input;
use crate::cli::{ClusterCreateArgs, ClusterDeleteArgs, GlobalArgs};
use crate::context::choose::{self, Mode};
use crate::context::target::{Target, TargetSettings};
use crate::output::Output;
use crate::prompt;
use crate::provision;

pub async fn run(
    global: &GlobalArgs,
    args: &ClusterCreateArgs,
    out: &Output,
) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let mut store = global.store(out)?;
    let arm = Arm::from_env()?;
    let selector = args.install.target.aks.selector();
    let mode = Mode::detect(global.yes);
    let subscription = choose::resolve_subscription(&arm, &selector, store.state(), mode).await?;
    let location = provision::location(&arm, &settings, &subscription).await?;
    let spec = settings.spec(subscription, location);
    let plan = provision::plan(&arm, &spec, store.state(), out).await?;
    if settings.dry_run {
        let text = plan.lines().join("\n");
        return out.report(&json!({"dry_run": true, "plan": plan}), text);
    }
    if let Some(costs) = plan.costs(&spec) {
        confirm(
            global.yes,
            &format!("Create {costs}? They cost money while they exist."),
        )?;
    }
    let mut lines = plan.lines();
    let created = provision::apply(&arm, &spec, plan, out).await?;
    let (cluster, login_server) = (&created.cluster, &created.registry_login_server);
    store.update(out, |s| {
        s.last_cluster = Some(cluster.clone());
        s.last_registry = Some(login_server.clone());
    })?;
    lines.push(format!(
        "the kubelet identity pulls from {login_server} (AcrPull)"
    ));
    let installed = match &settings.install {
        Some(install_settings) => {
            let target = TargetSettings::created(cluster);
            let target = Target::resolve(&target, store.state(), global.yes).await?;
            let report = install::install_on(target, install_settings, out).await?;
            lines.extend(install::lines(&report));
            Some(report)
        }
        None => {
            lines.push(format!(
                "install SpinKube with `spin-aks cluster install --cluster {}`",
                cluster.name
            ));
            None
        }
    };
    lines.push(format!(
        "using AKS cluster {}; registry {login_server}",
        describe(cluster)
    ));
    out.report(
        &json!({"created": created, "install": installed}),
        lines.join("\n"),
    )
}

pub async fn delete(
    global: &GlobalArgs,
    args: &ClusterDeleteArgs,
    out: &Output,
) -> anyhow::Result<()> {
    let mut store = global.store(out)?;
    let arm = Arm::from_env()?;
    let mode = Mode::detect(global.yes);
    let cluster =
        choose::resolve_cluster(&arm, &args.target.selector(), store.state(), mode).await?;
    confirm(
        global.yes,
        &format!(
            "Delete AKS cluster {} and every app on it?",
            describe(&cluster)
        ),
    )?;
    let deleted = provision::delete(&arm, &cluster, out).await?;
    if store.state().last_cluster.as_ref() == Some(&cluster) {
        store.update(out, |s| s.last_cluster = None)?;
    }
    let text = match deleted {
        true => format!("deleted AKS cluster {}", describe(&cluster)),
        false => format!(
            "there is no AKS cluster {}: nothing to delete",
            describe(&cluster)
        ),
    };
    out.report(&json!({"cluster": cluster, "deleted": deleted}), text)
}

/// Asks `question` on a terminal; `-y` answers yes; without a terminal and `-y`, refuses.
fn confirm(yes: bool, question: &str) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !prompt::on_terminal() {
        return Err(bad_input!(
            "{question} Nobody is at a terminal to answer: pass -y to confirm"
        ));
    }
    match prompt::confirm(question)? {
        true => Ok(()),
        false => Err(bad_input!("not confirmed: nothing was written")),
    }
}
