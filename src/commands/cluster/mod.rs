//! `cluster use`, `get-credentials`, `token`, `attach-acr` (and `check`, in its own module): choose
//! and remember an AKS cluster, hand its credentials to kubectl, and let its nodes pull from a registry.

mod attach_acr;
mod check;
mod create;
mod install;

use anyhow::Context;
use serde_json::json;

use crate::azure::aks;
use crate::azure::arm::Arm;
use crate::azure::credential::AzureCredential;
use crate::azure::kubeconfig_file;
use crate::azure::ClusterRef;
use crate::cli::{
    ClusterArgs, ClusterCommand, ClusterUseArgs, GetCredentialsArgs, GlobalArgs, TokenArgs,
};
use crate::context::choose::{self, Mode, RegistryChoice};
use crate::output::Output;

pub async fn run(global: &GlobalArgs, args: &ClusterArgs, out: &Output) -> anyhow::Result<()> {
    match &args.command {
        ClusterCommand::Use(args) => use_cluster(global, args, out).await,
        ClusterCommand::GetCredentials(args) => get_credentials(global, args, out).await,
        ClusterCommand::Token(args) => token(args).await,
        ClusterCommand::AttachAcr(args) => attach_acr::run(global, args, out).await,
        ClusterCommand::Check(args) => check::run(global, args, out).await,
        ClusterCommand::Install(args) => install::run(global, args, out).await,
        ClusterCommand::Uninstall(args) => install::uninstall(global, args, out).await,
        ClusterCommand::Create(args) => create::run(global, args, out).await,
        ClusterCommand::Delete(args) => create::delete(global, args, out).await,
    }
}

fn describe(cluster: &ClusterRef) -> String {
    format!(
        "{} (resource group {}, subscription {})",
        cluster.name, cluster.resource_group, cluster.subscription
    )
}

async fn use_cluster(
    global: &GlobalArgs,
    args: &ClusterUseArgs,
    out: &Output,
) -> anyhow::Result<()> {
    let mut store = global.store(out)?;
    let arm = Arm::from_env()?;
    let mode = Mode::detect(global.yes);
    let state = store.state();
    let cluster = choose::resolve_cluster(&arm, &args.target.selector(), state, mode).await?;
    let managed = arm.cluster(&cluster).await?;
    let wanted = args.registry.as_deref();
    let registry = match choose::registry_if_asked(&arm, &cluster.subscription, wanted, state, mode)
        .await?
    {
        RegistryChoice::Chosen(registry) => Some(registry),
        RegistryChoice::NoneThere => {
            out.info(format!(
                    "no container registry in subscription {}; push to any registry with `spin-aks push <ref>`",
                    cluster.subscription
                ));
            None
        }
        RegistryChoice::Undecided(names) => {
            out.info(format!(
                "several container registries in subscription {} ({}) and none remembered: \
                     none chosen; the first push asks (or takes a reference), or choose one with \
                     `spin-aks cluster use --registry NAME`",
                cluster.subscription,
                names.join(", ")
            ));
            None
        }
    };
    let login_server = registry.map(|r| r.properties.login_server);
    store.update(out, |s| {
        s.last_cluster = Some(cluster.clone());
        if login_server.is_some() {
            s.last_registry = login_server.clone();
        }
    })?;
    let report = json!({
        "cluster": cluster,
        "registry": login_server,
        "private": managed.is_private(),
        "entra": managed.is_entra(),
        "fqdn": managed.properties.fqdn.as_ref().or(managed.properties.private_fqdn.as_ref()),
    });
    let registry_text = login_server
        .as_deref()
        .map(|r| format!("; registry {r}"))
        .unwrap_or_default();
    out.report(
        &report,
        format!("using AKS cluster {}{registry_text}", describe(&cluster)),
    )
}

async fn get_credentials(
    global: &GlobalArgs,
    args: &GetCredentialsArgs,
    out: &Output,
) -> anyhow::Result<()> {
    let store = global.store(out)?;
    let arm = Arm::from_env()?;
    let mode = Mode::detect(global.yes);
    let selector = args.target.selector();
    let cluster = choose::resolve_cluster(&arm, &selector, store.state(), mode).await?;
    let yaml = aks::fetch_kubeconfig_text(&arm, &cluster).await?;
    let plugin = std::env::current_exe().context("cannot find the spin-aks executable")?;
    let entry = kubeconfig_file::entry_from_arm(&yaml, &plugin)?;
    let path = match &args.file {
        Some(path) => path.clone(),
        None => kubeconfig_file::default_path()?,
    };
    let outcome = kubeconfig_file::merge_into(&path, &entry, args.overwrite_existing)?;
    let context = entry.context["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let report = json!({"file": path, "context": context, "outcome": outcome});
    let verb = match outcome {
        kubeconfig_file::Outcome::Added => "merged",
        kubeconfig_file::Outcome::Replaced => "replaced",
        kubeconfig_file::Outcome::Unchanged => "already had",
    };
    out.report(
        &report,
        format!(
            "{} {verb} context {context} (current context)",
            path.display()
        ),
    )
}

/// The exec plugin: its stdout is the ExecCredential kubectl reads, whatever `--output` says.
async fn token(args: &TokenArgs) -> anyhow::Result<()> {
    let exec_info = std::env::var("KUBERNETES_EXEC_INFO").ok();
    let api_version = aks::requested_exec_api_version(exec_info.as_deref())?;
    let credential = AzureCredential::from_env();
    let token = credential
        .token(&aks::server_scope(&args.server_id))
        .await?;
    let credential = aks::exec_credential(api_version, &token.token, token.expires_on);
    crate::output::print_stdout(&format!("{credential}\n"), "the ExecCredential")
}
