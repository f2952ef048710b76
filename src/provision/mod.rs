//! `cluster create` and `cluster delete` as steps: an AKS cluster made (or brought) to what Spin
//! apps need through ARM — planned first, so a re-run writes only what differs — and removed again.

pub mod explain;
pub mod identity;
pub mod spec;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use self::spec::{ClusterSpec, RegistryWish, CREATED_BY};
use crate::azure::arm::{self, Arm, Registry};
use crate::azure::roles::{self, Assignment};
use crate::azure::ClusterRef;
use crate::bad_input;
use crate::output::Output;
use crate::state::State;

/// What exists and what will be written.
#[derive(Debug, Serialize)]
pub struct ProvisionPlan {
    pub resource_group_created: bool,
    pub cluster: ClusterPlan,
    pub registry: RegistryPlan,
    /// What the existing cluster has other than asked, left as it is (sizes, region).
    pub kept: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum ClusterPlan {
    Create,
    /// The existing cluster lacks these features; it is written back with them on.
    Update {
        enable: Vec<&'static str>,
    },
    /// The last operation on the existing cluster failed (`provisioningState: Failed`): it is
    /// written back (with these features on), which has AKS reconcile it.
    Repair {
        enable: Vec<&'static str>,
    },
    Unchanged,
}

#[derive(Debug, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum RegistryPlan {
    Existing { name: String, login_server: String },
    Create { name: String },
}

impl ProvisionPlan {
    /// What costs money in this plan, for the confirmation (`None`: nothing new is created).
    pub fn costs(&self, spec: &ClusterSpec) -> Option<String> {
        let mut new = Vec::new();
        if matches!(self.cluster, ClusterPlan::Create) {
            new.push(format!(
                "AKS cluster {} in {} with {} × {} Azure Linux node(s)",
                spec.cluster.name, spec.location, spec.node_count, spec.node_vm_size
            ));
        }
        if let RegistryPlan::Create { name } = &self.registry {
            new.push(format!(
                "container registry {name} ({} SKU)",
                spec.registry_sku
            ));
        }
        (!new.is_empty()).then(|| new.join(" and "))
    }

    /// What the plan writes, one line each.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.resource_group_created {
            lines.push("resource group: created".to_string());
        }
        lines.push(match &self.cluster {
            ClusterPlan::Create => "cluster: created".to_string(),
            ClusterPlan::Update { enable } => format!("cluster: {} turned on", enable.join(", ")),
            ClusterPlan::Repair { .. } => {
                "cluster: its last operation failed; written again to repair it".to_string()
            }
            ClusterPlan::Unchanged => "cluster: unchanged".to_string(),
        });
        lines.push(match &self.registry {
            RegistryPlan::Existing { login_server, .. } => format!("registry: {login_server}"),
            RegistryPlan::Create { name } => format!("registry: {name} created"),
        });
        lines.extend(self.kept.iter().map(|k| format!("kept as it is: {k}")));
        lines
    }

    /// Whether applying it writes nothing.
    pub fn is_noop(&self) -> bool {
        !self.resource_group_created
            && matches!(self.cluster, ClusterPlan::Unchanged)
            && matches!(self.registry, RegistryPlan::Existing { .. })
    }
}

/// What `cluster create` did.
#[derive(Debug, Serialize)]
pub struct CreateReport {
    pub cluster: ClusterRef,
    /// What was found and written.
    pub plan: ProvisionPlan,
    pub registry_login_server: String,
    /// AcrPull for the kubelet identity on the registry.
    pub acr_pull: Assignment,
}

/// Where the cluster goes: `--location`, else its resource group's, which must exist.
pub async fn location(
    arm: &Arm,
    settings: &spec::CreateSettings,
    subscription: &str,
) -> anyhow::Result<String> {
    if let Some(location) = &settings.location {
        return Ok(location.clone());
    }
    let group = &settings.resource_group;
    arm.resource_group(subscription, group)
        .await?
        .ok_or_else(|| {
            bad_input!(
                "cluster create needs --location: the resource group {group} does not exist yet"
            )
        })
}

/// Reads what exists and decides what to write; writes nothing. A cluster an operation still
/// runs on (a run killed after its write, another client) is waited for first.
pub async fn plan(
    arm: &Arm,
    spec: &ClusterSpec,
    state: &State,
    out: &Output,
) -> anyhow::Result<ProvisionPlan> {
    let cluster = &spec.cluster;
    let group = arm
        .resource_group(&cluster.subscription, &cluster.resource_group)
        .await?;
    let waiting = |state: &str| {
        out.info(format!(
            "AKS cluster {} is {state}: waiting for that operation to end",
            cluster.name
        ))
    };
    let existing = match group {
        Some(_) => arm.settled_cluster(cluster, waiting).await?,
        None => None,
    };
    let mut kept = Vec::new();
    let cluster_plan = match &existing {
        None => ClusterPlan::Create,
        Some(resource) => {
            kept = differences_kept(resource, spec);
            let enable = spec::missing_features(&resource["properties"]);
            if resource["properties"]["provisioningState"] == "Failed" {
                ClusterPlan::Repair { enable }
            } else if enable.is_empty() {
                ClusterPlan::Unchanged
            } else {
                ClusterPlan::Update { enable }
            }
        }
    };
    let registry = plan_registry(arm, spec, state).await?;
    Ok(ProvisionPlan {
        resource_group_created: group.is_none(),
        cluster: cluster_plan,
        registry,
        kept,
    })
}

/// Writes what `plan` decided, waits for each operation with progress, and attaches the registry.
pub async fn apply(
    arm: &Arm,
    spec: &ClusterSpec,
    plan: ProvisionPlan,
    out: &Output,
) -> anyhow::Result<CreateReport> {
    let cluster = &spec.cluster;
    if plan.resource_group_created {
        out.info(format!(
            "creating resource group {} in {}",
            cluster.resource_group, spec.location
        ));
        (arm.put_resource_group(
            &cluster.subscription,
            &cluster.resource_group,
            &spec.location,
        ))
        .await
        .map_err(|e| explain::arm(e, spec))?;
    }
    let registry = match &plan.registry {
        RegistryPlan::Existing { name, .. } => existing_registry(arm, spec, name).await?,
        RegistryPlan::Create { name } => {
            let creating = format!("creating container registry {name}");
            let put = arm.put_registry(
                &cluster.subscription,
                &cluster.resource_group,
                name,
                &spec.location,
                &spec.registry_sku,
            );
            with_progress(out, &creating, put)
                .await
                .map_err(|e| explain::arm(e, spec))?
        }
    };
    let body = match &plan.cluster {
        ClusterPlan::Create => Some((spec.new_cluster(), "creating")),
        ClusterPlan::Update { .. } | ClusterPlan::Repair { .. } => {
            let verb = match &plan.cluster {
                ClusterPlan::Update { enable } => {
                    out.info(format!(
                        "turning on {} on {}",
                        enable.join(", "),
                        cluster.name
                    ));
                    "updating"
                }
                _ => "repairing",
            };
            let current = arm.cluster_resource(cluster).await?.unwrap_or_default();
            let mut body = spec::writable_cluster(&current);
            spec::enable_features(&mut body["properties"]);
            Some((body, verb))
        }
        ClusterPlan::Unchanged => None,
    };
    if let Some((body, verb)) = body {
        let doing = format!("{verb} AKS cluster {} (several minutes)", cluster.name);
        let write = explain::put_cluster_when_free(arm, spec, &body, out);
        with_progress(out, &doing, write).await?;
    }
    let managed = arm.cluster(cluster).await?;
    let kubelet = (managed.kubelet_identity())
        .and_then(|i| i.object_id.clone())
        .with_context(|| {
            format!(
                "the AKS cluster {} has no kubelet identity (identityProfile.kubeletidentity) to give AcrPull",
                cluster.name
            )
        })?;
    let acr_pull = roles::ensure_role(arm, &registry.id, roles::ACR_PULL, &kubelet)
        .await
        .with_context(|| {
            format!(
                "cannot give the kubelet identity of {} AcrPull on {}",
                cluster.name, registry.properties.login_server
            )
        })?;
    Ok(CreateReport {
        cluster: cluster.clone(),
        plan,
        registry_login_server: registry.properties.login_server,
        acr_pull,
    })
}

/// Deletes a cluster `cluster create` made (its tag says so), waiting with progress.
pub async fn delete(arm: &Arm, cluster: &ClusterRef, out: &Output) -> anyhow::Result<bool> {
    let Some(resource) = arm.cluster_resource(cluster).await? else {
        return Ok(false);
    };
    let (tag, by) = CREATED_BY;
    if resource["tags"][tag] != by {
        return Err(bad_input!(
            "{} was not created by spin-aks (it has no tag {tag}={by}), so spin-aks does not delete it; delete it in the Azure portal if you mean to",
            cluster.name
        ));
    }
    let started = arm.start_delete_cluster(cluster).await?;
    let deleting = format!("deleting AKS cluster {} (several minutes)", cluster.name);
    with_progress(out, &deleting, arm.wait_for(started)).await?;
    Ok(true)
}

/// The registry the plan settled on: named, remembered or only, else one to create.
async fn plan_registry(
    arm: &Arm,
    spec: &ClusterSpec,
    state: &State,
) -> anyhow::Result<RegistryPlan> {
    let subscription = &spec.cluster.subscription;
    let registries = arm.registries(subscription).await?;
    let is = |r: &Registry, wanted: &str| {
        r.name.eq_ignore_ascii_case(wanted)
            || r.properties.login_server.eq_ignore_ascii_case(wanted)
    };
    let found = match &spec.registry {
        RegistryWish::Named(wanted) => registries.iter().find(|r| is(r, wanted)),
        RegistryWish::Default => {
            let remembered = state.last_registry.as_deref();
            (remembered.and_then(|last| registries.iter().find(|r| is(r, last))))
                .or(registries.first().filter(|_| registries.len() == 1))
        }
    };
    if let Some(registry) = found {
        return Ok(RegistryPlan::Existing {
            name: registry.name.clone(),
            login_server: registry.properties.login_server.clone(),
        });
    }
    let (name, flag_given) = match &spec.registry {
        RegistryWish::Named(wanted) => (spec::registry_name(wanted)?, true),
        RegistryWish::Default => (spec.derived_registry_name(), false),
    };
    let availability = arm.registry_name_available(subscription, &name).await?;
    if !availability.name_available {
        let why = availability.message.unwrap_or_default();
        let fix = if flag_given {
            "choose another name with --registry"
        } else {
            "name an existing registry or a new name with --registry"
        };
        return Err(bad_input!(
            "the registry name {name} is taken ({why}): registry names are global across Azure; {fix}"
        ));
    }
    Ok(RegistryPlan::Create { name })
}

async fn existing_registry(arm: &Arm, spec: &ClusterSpec, name: &str) -> anyhow::Result<Registry> {
    let registries = arm.registries(&spec.cluster.subscription).await?;
    (registries.into_iter())
        .find(|r| r.name.eq_ignore_ascii_case(name))
        .with_context(|| format!("the registry {name} is gone from ARM's list"))
}

/// What the existing cluster has that differs from the flags and is not changed.
fn differences_kept(resource: &Value, spec: &ClusterSpec) -> Vec<String> {
    let mut kept = Vec::new();
    let location = resource["location"].as_str().unwrap_or_default();
    if !location.eq_ignore_ascii_case(&spec.location) {
        kept.push(format!(
            "the cluster is in {location}, not {}",
            spec.location
        ));
    }
    let pool = &resource["properties"]["agentPoolProfiles"][0];
    if let Some(count) = pool["count"]
        .as_u64()
        .filter(|c| *c != spec.node_count as u64)
    {
        kept.push(format!(
            "its first pool has {count} node(s), not {}",
            spec.node_count
        ));
    }
    if let Some(size) =
        (pool["vmSize"].as_str()).filter(|s| !s.eq_ignore_ascii_case(&spec.node_vm_size))
    {
        kept.push(format!(
            "its first pool's VM size is {size}, not {}",
            spec.node_vm_size
        ));
    }
    kept
}

/// Says that `doing` starts, then runs it with [`Output::while_running`]'s progress lines.
async fn with_progress<T>(
    out: &Output,
    doing: &str,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    out.info(doing);
    let step = doing.split(" (").next().unwrap_or(doing);
    (out.while_running(doing, work).await).map_err(|err| arm::failed_step(err, step))
}
