//! Choosing the AKS cluster and the registry: flags first, then the state file, then what ARM lists
//! (a select list on a terminal, Enter repeating the last choice; without one the remembered or only
//! candidate, else exit 2 listing them).

use crate::azure::arm::{Arm, ManagedCluster, Registry};
use crate::azure::ClusterRef;
use crate::bad_input;
use crate::prompt;
use crate::state::State;

/// What the user pinned with flags (`--subscription` also reads `AZURE_SUBSCRIPTION_ID`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterSelector {
    pub subscription: Option<String>,
    pub resource_group: Option<String>,
    pub cluster: Option<String>,
}

/// Whether choices may be asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Select lists on the terminal, defaulting to the remembered choice.
    Prompt,
    /// Never ask: the remembered or only candidate, else a bad-input error listing them.
    Defaults,
}

impl Mode {
    /// Prompt only without `-y` and with a terminal on stdin and stderr.
    pub fn detect(yes: bool) -> Mode {
        if prompt::can_ask(yes) {
            Mode::Prompt
        } else {
            Mode::Defaults
        }
    }
}

/// The cluster the flags, the state file and ARM's lists point to. Without prompting, a selection
/// completed by flags or the state file makes no ARM call at all.
pub async fn resolve_cluster(
    arm: &Arm,
    selector: &ClusterSelector,
    state: &State,
    mode: Mode,
) -> anyhow::Result<ClusterRef> {
    let subscription = resolve_subscription(arm, selector, state, mode).await?;
    let remembered = state
        .last_cluster
        .as_ref()
        .filter(|last| last.subscription == subscription);
    if let (Some(name), Some(group)) = (&selector.cluster, &selector.resource_group) {
        return Ok(ClusterRef {
            subscription,
            resource_group: group.clone(),
            name: name.clone(),
        });
    }
    if let (None, None, Mode::Defaults, Some(last)) = (
        &selector.cluster,
        &selector.resource_group,
        mode,
        remembered,
    ) {
        return Ok(last.clone());
    }
    let clusters: Vec<ManagedCluster> = arm
        .clusters(&subscription)
        .await?
        .into_iter()
        .filter(|c| selector.cluster.as_ref().is_none_or(|name| &c.name == name))
        .filter(|c| {
            let group = selector.resource_group.as_ref();
            group.is_none_or(|g| {
                c.cluster_ref()
                    .is_ok_and(|r| r.resource_group.eq_ignore_ascii_case(g))
            })
        })
        .collect();
    let refs = clusters
        .iter()
        .map(ManagedCluster::cluster_ref)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let labels: Vec<String> = clusters.iter().map(cluster_label).collect();
    let default = refs.iter().position(|r| Some(r) == remembered);
    if let (Some(name), true) = (&selector.cluster, clusters.is_empty()) {
        return Err(bad_input!(
            "--cluster {name}: no such AKS cluster in subscription {subscription}{}",
            selector
                .resource_group
                .as_ref()
                .map(|g| format!(" and resource group {g}"))
                .unwrap_or_default()
        ));
    }
    let none = format!("no AKS cluster in subscription {subscription}");
    let index = pick(
        "AKS cluster",
        &labels,
        default,
        mode,
        "--cluster and --resource-group",
        &none,
    )?;
    Ok(refs[index].clone())
}

pub async fn resolve_subscription(
    arm: &Arm,
    selector: &ClusterSelector,
    state: &State,
    mode: Mode,
) -> anyhow::Result<String> {
    if let Some(subscription) = &selector.subscription {
        return Ok(subscription.clone());
    }
    let remembered = state.last_cluster.as_ref().map(|c| c.subscription.as_str());
    if let (Mode::Defaults, Some(last)) = (mode, remembered) {
        return Ok(last.to_string());
    }
    let subscriptions = arm.subscriptions().await?;
    let labels: Vec<String> = subscriptions
        .iter()
        .map(|s| format!("{} ({})", s.display_name, s.subscription_id))
        .collect();
    let default = subscriptions
        .iter()
        .position(|s| Some(s.subscription_id.as_str()) == remembered);
    let none = "the signed-in identity sees no Azure subscription";
    let index = pick(
        "subscription",
        &labels,
        default,
        mode,
        "--subscription",
        none,
    )?;
    Ok(subscriptions[index].subscription_id.clone())
}

/// The registry `wanted` names (name or login server), else one chosen from the subscription's
/// registries, defaulting to the remembered login server; `flag` is how to choose one instead.
pub async fn resolve_registry(
    arm: &Arm,
    subscription: &str,
    wanted: Option<&str>,
    state: &State,
    mode: Mode,
    flag: &str,
) -> anyhow::Result<Registry> {
    let registries = arm.registries(subscription).await?;
    if let Some(wanted) = wanted {
        return find_registry(registries, subscription, wanted);
    }
    let (labels, default) = registry_choices(&registries, state);
    let none = format!("no container registry in subscription {subscription}");
    let index = pick("container registry", &labels, default, mode, flag, &none)?;
    Ok(registries[index].clone())
}

/// What [`registry_if_asked`] settled on.
pub enum RegistryChoice {
    Chosen(Registry),
    /// The subscription has no registry.
    NoneThere,
    /// Several and none remembered, and nobody to ask: left to the first push.
    Undecided(Vec<String>),
}

/// The registry for `cluster use`: the one `wanted` names; else, on a terminal, one chosen from
/// the subscription's registries; without prompting the remembered or only one, and when there
/// are several and none is remembered none at all — under `-y` only what was asked is chosen.
pub async fn registry_if_asked(
    arm: &Arm,
    subscription: &str,
    wanted: Option<&str>,
    state: &State,
    mode: Mode,
) -> anyhow::Result<RegistryChoice> {
    let registries = arm.registries(subscription).await?;
    if let Some(wanted) = wanted {
        return find_registry(registries, subscription, wanted).map(RegistryChoice::Chosen);
    }
    let (labels, default) = registry_choices(&registries, state);
    match (registries.len(), mode, default) {
        (0, _, _) => Ok(RegistryChoice::NoneThere),
        (2.., Mode::Defaults, None) => Ok(RegistryChoice::Undecided(
            registries.into_iter().map(|r| r.name).collect(),
        )),
        _ => {
            let index = pick(
                "container registry",
                &labels,
                default,
                mode,
                "--registry",
                "",
            )?;
            Ok(RegistryChoice::Chosen(registries[index].clone()))
        }
    }
}

fn find_registry(
    registries: Vec<Registry>,
    subscription: &str,
    wanted: &str,
) -> anyhow::Result<Registry> {
    let names = list_or_none(registries.iter().map(|r| r.name.as_str()));
    registries
        .into_iter()
        .find(|r| {
            r.name.eq_ignore_ascii_case(wanted)
                || r.properties.login_server.eq_ignore_ascii_case(wanted)
        })
        .ok_or_else(|| {
            bad_input!(
                "--registry {wanted}: no such container registry in subscription {subscription} \
                 (it has: {names})"
            )
        })
}

/// The select list's labels and the remembered registry's place in it.
fn registry_choices(registries: &[Registry], state: &State) -> (Vec<String>, Option<usize>) {
    let labels = registries
        .iter()
        .map(|r| format!("{} ({})", r.name, r.properties.login_server))
        .collect();
    let default = registries.iter().position(|r| {
        state
            .last_registry
            .as_deref()
            .is_some_and(|last| last.eq_ignore_ascii_case(&r.properties.login_server))
    });
    (labels, default)
}

fn cluster_label(cluster: &ManagedCluster) -> String {
    let group = cluster
        .cluster_ref()
        .map(|r| r.resource_group)
        .unwrap_or_default();
    let mut label = format!("{} (resource group {group}", cluster.name);
    if let Some(version) = &cluster.properties.kubernetes_version {
        label.push_str(&format!(", Kubernetes {version}"));
    }
    if cluster.is_private() {
        label.push_str(", private");
    }
    label.push(')');
    label
}

/// One of `labels`: a select list in [`Mode::Prompt`] (when there is a choice), else the remembered
/// or the only one; several without a remembered one is bad input naming `flag`.
fn pick(
    what: &str,
    labels: &[String],
    remembered: Option<usize>,
    mode: Mode,
    flag: &str,
    none: &str,
) -> anyhow::Result<usize> {
    match (labels.len(), mode, remembered) {
        (0, _, _) => anyhow::bail!("{none}"),
        (1, _, _) => Ok(0),
        (_, Mode::Prompt, _) => {
            let chosen = prompt::select(
                &format!("Choose the {what}"),
                labels,
                remembered.unwrap_or(0),
            )?;
            chosen.ok_or_else(|| bad_input!("no {what} chosen"))
        }
        (_, Mode::Defaults, Some(index)) => Ok(index),
        (_, Mode::Defaults, None) => Err(bad_input!(
            "several {} and none remembered: {}. Choose one with {flag}, or run \
             `spin-aks cluster use` on a terminal",
            plural(what),
            labels.join("; ")
        )),
    }
}

fn plural(what: &str) -> String {
    match what.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{what}s"),
    }
}

fn list_or_none<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn without_prompting_takes_the_only_or_remembered_else_lists_them() {
        assert_eq!(
            pick("x", &labels(1), None, Mode::Defaults, "--x", "none").unwrap(),
            0
        );
        assert_eq!(
            pick("x", &labels(3), Some(2), Mode::Defaults, "--x", "none").unwrap(),
            2
        );
        let err = pick(
            "AKS cluster",
            &labels(2),
            None,
            Mode::Defaults,
            "--cluster",
            "none",
        )
        .unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(err.to_string().contains("c0; c1"), "{err}");
        let empty = pick("x", &[], None, Mode::Defaults, "--x", "nothing here").unwrap_err();
        assert_eq!(empty.to_string(), "nothing here");
    }
}
