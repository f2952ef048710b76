//! `identity setup`: the app's user-assigned identity, federated with its ServiceAccount on the
//! chosen AKS cluster and given its vault's and Cosmos DB accounts' data roles; [`setup`] is the step.

use anyhow::Context;
use serde::Serialize;

use super::cluster::load_state;
use super::push::canonical;
use crate::app;
use crate::azure::arm::Arm;
use crate::azure::choose::{self, Mode};
use crate::azure::identity::{self, Action, DataRole};
use crate::azure::vault::Vault;
use crate::bad_input;
use crate::cli::{GlobalArgs, IdentityArgs, IdentityCommand, IdentitySetupArgs};
use crate::kube::key_vault::CLIENT_ID_ANNOTATION;
use crate::kube::objects;
use crate::output::Output;
use crate::state::{ClusterRef, StateFile, WorkloadIdentity};

/// Everything [`setup`] needs, already resolved from flags, state and defaults.
#[derive(Clone, Debug)]
pub struct Plan {
    pub cluster: ClusterRef,
    /// The identity's name, in the cluster's resource group.
    pub identity: String,
    pub namespace: String,
    pub service_account: String,
    pub key_vault: Option<Vault>,
    /// Cosmos DB account names, in the cluster's subscription.
    pub cosmos: Vec<String>,
}

/// What `identity setup` reports (JSON), and what `up` would nest.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupReport {
    pub identity: IdentityReport,
    pub federated_credential: CredentialReport,
    pub roles: Vec<RoleReport>,
    pub service_account: ServiceAccountReport,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityReport {
    pub name: String,
    pub resource_id: String,
    pub client_id: String,
    pub principal_id: String,
    pub tenant_id: String,
    pub action: Action,
}

#[derive(Clone, Debug, Serialize)]
pub struct CredentialReport {
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub action: Action,
}

#[derive(Clone, Debug, Serialize)]
pub struct RoleReport {
    pub role: DataRole,
    pub scope: String,
    pub action: Action,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServiceAccountReport {
    pub namespace: String,
    pub name: String,
}

impl SetupReport {
    /// What the state file keeps: ids only.
    pub fn workload_identity(&self) -> WorkloadIdentity {
        WorkloadIdentity {
            resource_id: self.identity.resource_id.clone(),
            client_id: self.identity.client_id.clone(),
            principal_id: self.identity.principal_id.clone(),
            tenant_id: self.identity.tenant_id.clone(),
            namespace: self.service_account.namespace.clone(),
            service_account: self.service_account.name.clone(),
        }
    }
}

pub async fn run(global: &GlobalArgs, args: &IdentityArgs, out: &Output) -> anyhow::Result<()> {
    match &args.command {
        IdentityCommand::Setup(args) => run_setup(global, args, out).await,
    }
}

async fn run_setup(
    global: &GlobalArgs,
    args: &IdentitySetupArgs,
    out: &Output,
) -> anyhow::Result<()> {
    let app = app::load(&global.from)?;
    let key = canonical(&app.manifest_path)?;
    let (file, state) = load_state(global, out)?;
    let selector = args.target.selector();
    if selector.cluster.is_none() && state.last_cluster.is_none() {
        return Err(bad_input!(
            "no AKS cluster chosen: run `spin-aks cluster use`, or pass --cluster <NAME> \
             [--resource-group <GROUP>]"
        ));
    }
    let remembered = state.apps.get(&key).cloned().unwrap_or_default();
    let key_vault = remembered.vault_or(args.key_vault.as_ref());
    let arm = Arm::from_env()?;
    let cluster =
        choose::resolve_cluster(&arm, &selector, &state, Mode::detect(global.yes)).await?;
    let app_name = objects::dns_name(&app.name);
    let plan = Plan {
        cluster,
        identity: args.name.clone().unwrap_or_else(|| default_name(&app_name)),
        namespace: args
            .namespace
            .clone()
            .or_else(|| remembered.last_deploy.map(|d| d.namespace))
            .unwrap_or_else(|| "default".into()),
        service_account: args.service_account.clone().unwrap_or(app_name),
        key_vault,
        cosmos: args.cosmos.clone(),
    };
    let report = setup(&arm, &plan, out).await?;
    remember(&file, &key, &plan, &report, out)?;
    let summary = format!(
        "identity {} (client id {}) trusts {} on {}: scaffold, apply and up now give the app that ServiceAccount, annotated with the client id, and label its pods azure.workload.identity/use",
        report.identity.name,
        report.identity.client_id,
        report.federated_credential.subject,
        plan.cluster.name,
    );
    out.report(&report, summary)
}

/// Remembers the identity (ids only) and the vault for the app.
pub fn remember(
    file: &StateFile,
    key: &str,
    plan: &Plan,
    report: &SetupReport,
    out: &Output,
) -> anyhow::Result<()> {
    let warning = file.update(|s| {
        let app = s.apps.entry(key.to_string()).or_default();
        app.identity = Some(report.workload_identity());
        if let Some(vault) = &plan.key_vault {
            app.key_vault = Some(vault.clone());
        }
    })?;
    if let Some(warning) = warning {
        out.warn(warning);
    }
    Ok(())
}

/// Refuses a deploy whose ServiceAccount carries the remembered identity's client id under a
/// namespace or name its federated credential does not trust: Entra would refuse every token the
/// pods ask for, so the app would start and then fail on its first Key Vault or Cosmos DB call.
pub fn check_federation(
    identity: Option<&WorkloadIdentity>,
    namespace: &str,
    objects: &[serde_json::Value],
) -> anyhow::Result<()> {
    let Some(identity) = identity else {
        return Ok(());
    };
    let federated = objects.iter().filter(|o| {
        o["kind"] == "ServiceAccount"
            && o["metadata"]["annotations"][CLIENT_ID_ANNOTATION] == identity.client_id.as_str()
    });
    for account in federated {
        let name = account["metadata"]["name"].as_str().unwrap_or_default();
        let account_namespace = account["metadata"]["namespace"]
            .as_str()
            .unwrap_or(namespace);
        if (account_namespace, name)
            != (
                identity.namespace.as_str(),
                identity.service_account.as_str(),
            )
        {
            return Err(bad_input!(
                "the workload identity {} trusts ServiceAccount {}/{}, but this deploy gives the app {account_namespace}/{name}: its pods would get no tokens. Federate it there too with `spin-aks identity setup -n {account_namespace} --service-account {name}`, or deploy to -n {}",
                identity.client_id,
                identity.namespace,
                identity.service_account,
                identity.namespace
            ));
        }
    }
    Ok(())
}

/// The default identity name for an app.
pub fn default_name(app_dns_name: &str) -> String {
    format!("{app_dns_name}-identity")
}

/// The step: checks the cluster and finds the vault and accounts (reads only), then makes or finds
/// the identity, its federated credential and its roles, one human line each.
pub async fn setup(arm: &Arm, plan: &Plan, out: &Output) -> anyhow::Result<SetupReport> {
    let cluster = &plan.cluster;
    let managed = arm.cluster(cluster).await?;
    let issuer = identity::issuer(&managed, &cluster.resource_group)?;
    let location = managed.location.clone().with_context(|| {
        format!(
            "ARM returned the AKS cluster {} without a location",
            cluster.name
        )
    })?;
    let mut grants = Vec::new();
    if let Some(vault) = &plan.key_vault {
        grants.push((DataRole::KeyVaultSecretsUser, vault.name.as_str()));
    }
    grants.extend(
        plan.cosmos
            .iter()
            .map(|account| (DataRole::CosmosDataContributor, account.as_str())),
    );
    let mut targets = Vec::new();
    for (role, name) in grants {
        targets.push((role, role.find(arm, &cluster.subscription, name).await?));
    }

    let id = identity::identity_id(
        &cluster.subscription,
        &cluster.resource_group,
        &plan.identity,
    );
    let (managed_identity, action) = identity::ensure_identity(arm, &id, &location)
        .await
        .map_err(|err| {
            cannot(
                format!(
                    "create the managed identity {} in resource group {}",
                    plan.identity, cluster.resource_group
                ),
                err,
            )
        })?;
    let properties = &managed_identity.properties;
    out.info(format!(
        "{} identity {} (client id {})",
        action.verb("created"),
        managed_identity.name,
        properties.client_id
    ));
    let identity_report = IdentityReport {
        name: managed_identity.name.clone(),
        resource_id: managed_identity.id.clone(),
        client_id: properties.client_id.clone(),
        principal_id: properties.principal_id.clone(),
        tenant_id: properties.tenant_id.clone(),
        action,
    };

    let subject = identity::subject(&plan.namespace, &plan.service_account);
    let wanted = identity::credential_name(&cluster.name, &plan.namespace, &plan.service_account);
    let (name, action) =
        identity::ensure_credential(arm, &managed_identity, &wanted, &issuer, &subject)
            .await
            .map_err(|err| {
                cannot(
                    format!("federate the identity {} with {subject}", plan.identity),
                    err,
                )
            })?;
    out.info(format!(
        "{} federated credential {name} for {subject}",
        action.verb("created")
    ));
    let credential = CredentialReport {
        name,
        issuer,
        subject,
        action,
    };

    let principal = &properties.principal_id;
    let mut roles = Vec::new();
    for (role, resource) in targets {
        let on = format!(
            "{} on {} {}",
            role.name(),
            role.resource_kind(),
            resource.name
        );
        let action = role
            .ensure(arm, &resource.id, principal)
            .await
            .map_err(|err| cannot(format!("give the identity {on}"), err))?;
        out.info(format!("{} {on}", action.verb("assigned")));
        roles.push(RoleReport {
            role,
            scope: resource.id,
            action,
        });
    }
    Ok(SetupReport {
        identity: identity_report,
        federated_credential: credential,
        roles,
        service_account: ServiceAccountReport {
            namespace: plan.namespace.clone(),
            name: plan.service_account.clone(),
        },
    })
}

/// `cannot <what>: <err>` (ARM's refusal names the role that would allow it).
fn cannot(what: String, err: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!("cannot {what}: {err}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn remembered() -> WorkloadIdentity {
        WorkloadIdentity {
            client_id: "c1".into(),
            namespace: "shop".into(),
            service_account: "shop".into(),
            ..WorkloadIdentity::default()
        }
    }

    fn account(namespace: Option<&str>, name: &str, client_id: &str) -> serde_json::Value {
        json!({"kind": "ServiceAccount", "metadata": {
            "name": name, "namespace": namespace,
            "annotations": {CLIENT_ID_ANNOTATION: client_id}}})
    }

    #[test]
    fn a_service_account_the_identity_trusts_passes() {
        let objects = [account(None, "shop", "c1")];
        check_federation(Some(&remembered()), "shop", &objects).unwrap();
        check_federation(None, "elsewhere", &objects).unwrap();
    }

    #[test]
    fn another_namespace_or_name_for_the_remembered_identity_is_refused_with_the_fix() {
        for (objects, namespace) in [
            ([account(None, "shop", "c1")], "prod"),
            ([account(Some("shop"), "api", "c1")], "shop"),
        ] {
            let err = check_federation(Some(&remembered()), namespace, &objects).unwrap_err();
            assert!(err.is::<crate::error::BadInput>(), "{err}");
            assert!(
                err.to_string().contains("trusts ServiceAccount shop/shop")
                    && err.to_string().contains("spin-aks identity setup -n"),
                "{err}"
            );
        }
    }

    #[test]
    fn an_identity_given_by_flag_is_not_checked_against_the_remembered_one() {
        let objects = [account(None, "shop", "other-client")];
        check_federation(Some(&remembered()), "prod", &objects).unwrap();
    }
}
