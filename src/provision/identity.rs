//! `identity setup` as a step: the app's user-assigned identity, federated with its ServiceAccount on
//! an AKS cluster and given its vault's and Cosmos DB accounts' data roles, each made or found.

use anyhow::Context;
use serde::Serialize;

use crate::azure::arm::Arm;
use crate::azure::identity::{self, DataRole, StepOutcome};
use crate::azure::vault::Vault;
use crate::azure::ClusterRef;
use crate::context::target::Target;
use crate::context::AppContext;
use crate::deploy::{self, plan, workload};
use crate::output::Output;
use crate::prompt;
use crate::state::WorkloadIdentity;

/// Everything [`setup`] needs, already resolved from flags, state and defaults.
#[derive(Clone, Debug)]
pub struct IdentityPlan {
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
    pub action: StepOutcome,
}

#[derive(Clone, Debug, Serialize)]
pub struct CredentialReport {
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub action: StepOutcome,
}

#[derive(Clone, Debug, Serialize)]
pub struct RoleReport {
    pub role: DataRole,
    pub scope: String,
    pub action: StepOutcome,
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

/// The default identity name for an app.
pub fn default_name(app_dns_name: &str) -> String {
    format!("{app_dns_name}-identity")
}

/// Checks the cluster and finds the vault and accounts (reads only), then makes or finds
/// the identity, its federated credential and its roles, one `progress` line each.
pub async fn setup(
    arm: &Arm,
    plan: &IdentityPlan,
    progress: &dyn Fn(String),
) -> anyhow::Result<SetupReport> {
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
    )?;
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
    progress(format!(
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
    progress(format!(
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
        progress(format!("{} {on}", action.verb("assigned")));
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

/// `cannot <what>: <err>` (ARM's refusal names the role that would allow it; an operation that
/// failed in Azure says a re-run continues).
fn cannot(what: String, err: anyhow::Error) -> anyhow::Error {
    let failed =
        (err.downcast_ref::<crate::azure::arm::ArmError>()).is_some_and(|e| e.operation_failed());
    match failed {
        true => anyhow::anyhow!(
            "cannot {what}: {err}\n  {}",
            crate::azure::arm::RERUN_CONTINUES
        ),
        false => anyhow::anyhow!("cannot {what}: {err}"),
    }
}

/// `up`'s offer: when the app reads Key Vault or a Cosmos DB store and has no workload identity
/// yet, sets one up on the targeted AKS cluster (asked on a terminal, done with `yes`) and
/// remembers it, as `identity setup` would.
pub async fn offer(
    ctx: &mut AppContext,
    target: &Target,
    settings: &deploy::Settings,
    yes: bool,
    out: &Output,
) -> anyhow::Result<()> {
    let wanted = &settings.workload;
    let has_identity = ctx.remembered().identity.is_some() || wanted.identity_client_id.is_some();
    let Some((key_vault, cosmos)) = workload::identity_needs(wanted, ctx.remembered())? else {
        return Ok(());
    };
    let Some(aks) = target.aks().filter(|_| !has_identity) else {
        return Ok(());
    };
    let question = format!(
        "The app reads {} with a workload identity and has none: set one up on {} now?",
        key_vault
            .as_ref()
            .map(|v| format!("Key Vault {}", v.name))
            .unwrap_or_else(|| format!("Cosmos DB account {}", cosmos.join(", "))),
        aks.cluster.name
    );
    let agreed = yes || (prompt::on_terminal() && prompt::confirm(&question)?);
    if !agreed {
        return Ok(());
    }
    let plan = IdentityPlan {
        cluster: aks.cluster.clone(),
        identity: default_name(&ctx.name),
        namespace: plan::planned_namespace(ctx, settings, &aks.cluster.name)?,
        service_account: wanted
            .service_account
            .clone()
            .unwrap_or_else(|| ctx.name.clone()),
        key_vault,
        cosmos,
    };
    let report = setup(&aks.arm, &plan, &|line| out.info(line)).await?;
    ctx.remember_identity(report.workload_identity(), plan.key_vault.as_ref(), out)
}
