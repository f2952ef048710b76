//! What `cluster create` asks for, validated (names as ARM accepts them), and the managed cluster
//! resource that follows from it: Azure Linux nodes labelled for the shim, OIDC issuer, workload
//! identity and the app-routing add-on.

use serde_json::{json, Value};

use crate::azure::ClusterRef;
use crate::bad_input;
use crate::install::objects::NODE_LABEL;

/// The tag that marks a cluster as created by spin-aks (`cluster delete` deletes only those).
pub const CREATED_BY: (&str, &str) = ("created-by", "spin-aks");

/// The registry the cluster's nodes pull from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryWish {
    /// A registry by name or login server: used when the subscription has it, else created.
    Named(String),
    /// The one `cluster use` remembered or the subscription's only one, else one created with a
    /// name derived from the cluster's.
    Default,
}

/// `cluster create`'s flags, validated; the subscription (and the region, when not given) are
/// settled with ARM.
#[derive(Clone, Debug)]
pub struct CreateSettings {
    pub name: String,
    pub resource_group: String,
    pub location: Option<String>,
    pub node_count: u32,
    pub node_vm_size: String,
    pub kubernetes_version: Option<String>,
    pub registry: RegistryWish,
    pub registry_sku: String,
    /// What `cluster install` then does (`None`: `--no-install`).
    pub install: Option<crate::install::InstallSettings>,
    /// Plan only; nothing written.
    pub dry_run: bool,
}

impl CreateSettings {
    /// The cluster to create in `subscription`, in `location`.
    pub fn spec(&self, subscription: String, location: String) -> ClusterSpec {
        ClusterSpec {
            cluster: ClusterRef {
                subscription,
                resource_group: self.resource_group.clone(),
                name: self.name.clone(),
            },
            location,
            node_count: self.node_count,
            node_vm_size: self.node_vm_size.clone(),
            kubernetes_version: self.kubernetes_version.clone(),
            registry: self.registry.clone(),
            registry_sku: self.registry_sku.clone(),
        }
    }
}

/// The cluster `cluster create` makes or brings up to date.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub cluster: ClusterRef,
    /// An Azure region, normalized as ARM writes it (`westeurope`).
    pub location: String,
    pub node_count: u32,
    pub node_vm_size: String,
    pub kubernetes_version: Option<String>,
    pub registry: RegistryWish,
    /// `Basic`, `Standard` or `Premium`, for a registry created.
    pub registry_sku: String,
}

/// The cluster features spin-aks needs, as (name, JSON pointer in `properties`).
pub const FEATURES: [(&str, &str); 3] = [
    ("OIDC issuer", "/oidcIssuerProfile/enabled"),
    (
        "workload identity",
        "/securityProfile/workloadIdentity/enabled",
    ),
    (
        "app routing add-on",
        "/ingressProfile/webAppRouting/enabled",
    ),
];

impl ClusterSpec {
    /// The resource a new cluster is created with.
    pub fn new_cluster(&self) -> Value {
        let (key, value) = NODE_LABEL;
        let mut properties = json!({
            "dnsPrefix": dns_prefix(&self.cluster),
            "enableRBAC": true,
            "agentPoolProfiles": [{
                "name": "nodepool1",
                "count": self.node_count,
                "vmSize": self.node_vm_size,
                "mode": "System",
                "osType": "Linux",
                "osSKU": "AzureLinux",
                "type": "VirtualMachineScaleSets",
                "nodeLabels": {key: value},
            }],
        });
        if let Some(version) = &self.kubernetes_version {
            properties["kubernetesVersion"] = json!(version);
        }
        enable_features(&mut properties);
        let (tag, by) = CREATED_BY;
        json!({
            "location": self.location,
            "tags": {tag: by},
            "identity": {"type": "SystemAssigned"},
            "sku": {"name": "Base", "tier": "Free"},
            "properties": properties,
        })
    }

    /// The registry name used when none is given: the cluster's name, alphanumerics only.
    pub fn derived_registry_name(&self) -> String {
        let mut name: String = (self.cluster.name.chars())
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        name.push_str("acr");
        name.truncate(50);
        name
    }
}

/// The features of [`FEATURES`] the cluster's `properties` lack.
pub fn missing_features(properties: &Value) -> Vec<&'static str> {
    (FEATURES.iter())
        .filter(|(_, pointer)| properties.pointer(pointer) != Some(&Value::Bool(true)))
        .map(|(name, _)| *name)
        .collect()
}

/// Turns every feature of [`FEATURES`] on in `properties`.
pub fn enable_features(properties: &mut Value) {
    for (_, pointer) in FEATURES {
        let mut at = &mut *properties;
        for key in pointer.trim_start_matches('/').split('/') {
            if !at.is_object() {
                *at = json!({});
            }
            at = at
                .as_object_mut()
                .unwrap()
                .entry(key)
                .or_insert(Value::Null);
        }
        *at = Value::Bool(true);
    }
}

/// A cluster resource as read, without the fields ARM reports but refuses in a write.
pub fn writable_cluster(resource: &Value) -> Value {
    let mut resource = resource.clone();
    if let Some(map) = resource.as_object_mut() {
        map.remove("systemData");
    }
    let properties = &mut resource["properties"];
    if let Some(map) = properties.as_object_mut() {
        for read_only in [
            "provisioningState",
            "powerState",
            "fqdn",
            "azurePortalFQDN",
            "privateFQDN",
            "currentKubernetesVersion",
            "maxAgentPools",
        ] {
            map.remove(read_only);
        }
    }
    if let Some(issuer) = properties["oidcIssuerProfile"].as_object_mut() {
        issuer.remove("issuerURL");
    }
    if let Some(pools) = properties["agentPoolProfiles"].as_array_mut() {
        for pool in pools.iter_mut().filter_map(Value::as_object_mut) {
            for read_only in [
                "provisioningState",
                "powerState",
                "nodeImageVersion",
                "currentOrchestratorVersion",
            ] {
                pool.remove(read_only);
            }
        }
    }
    resource
}

/// As az derives it: the cluster's name, the group's and the subscription's first characters.
fn dns_prefix(cluster: &ClusterRef) -> String {
    let clean = |s: &str, n: usize| -> String {
        (s.chars().take(n))
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect()
    };
    let mut prefix = format!(
        "{}-{}-{}",
        clean(&cluster.name, 10),
        clean(&cluster.resource_group, 16),
        clean(&cluster.subscription, 6)
    );
    if !prefix.starts_with(|c: char| c.is_ascii_alphabetic()) {
        prefix.insert(0, 'a');
    }
    prefix
}

/// An Azure region, as az takes it (`West Europe` → `westeurope`).
pub fn location(value: &str) -> anyhow::Result<String> {
    let normalized: String = (value.chars())
        .filter(|c| *c != ' ')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if normalized.is_empty() || !normalized.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad_input!(
            "--location {value:?}: an Azure region is a name such as westeurope or eastus2"
        ));
    }
    Ok(normalized)
}

/// A new registry's name (`--registry`): Azure's rule, lower-cased as ARM keeps it.
pub fn registry_name(value: &str) -> anyhow::Result<String> {
    let name = crate::azure::names::REGISTRY.check("--registry", value)?;
    Ok(name.to_ascii_lowercase())
}

/// A VM size such as `Standard_D2s_v5`.
pub fn vm_size(value: &str) -> anyhow::Result<String> {
    let ok = !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(bad_input!(
            "--node-vm-size {value:?}: a VM size is a name such as Standard_D2s_v5"
        ));
    }
    Ok(value.to_string())
}

/// A Kubernetes version AKS offers: `1.33` or `1.33.2`.
pub fn kubernetes_version(value: &str) -> anyhow::Result<String> {
    let parts: Vec<&str> = value.split('.').collect();
    let ok = (2..=3).contains(&parts.len())
        && (parts.iter()).all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if !ok {
        return Err(bad_input!(
            "--kubernetes-version {value:?}: a Kubernetes version is MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. 1.33"
        ));
    }
    Ok(value.to_string())
}

/// A registry SKU.
pub fn registry_sku(value: &str) -> anyhow::Result<String> {
    match value.to_ascii_lowercase().as_str() {
        "basic" => Ok("Basic".into()),
        "standard" => Ok("Standard".into()),
        "premium" => Ok("Premium".into()),
        _ => Err(bad_input!(
            "--registry-sku {value:?}: one of Basic, Standard, Premium"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_arm_checks_them() {
        type Check = dyn Fn(&str) -> anyhow::Result<String>;
        let cases: [(&Check, &str, bool); 7] = [
            (&location, "West Europe", true),
            (&location, "west-europe", false),
            (&registry_name, "acr1", false),
            (&registry_name, "MyAcr01", true),
            (&registry_name, "my-acr", false),
            (&kubernetes_version, "1.33", true),
            (&kubernetes_version, "v1.33", false),
        ];
        for (check, value, ok) in cases {
            let result = check(value);
            assert_eq!(result.is_ok(), ok, "{value:?}: {result:?}");
            if let Err(err) = result {
                assert_eq!(crate::error::exit_code(&err), 2);
                assert!(err.to_string().contains(&format!("{value:?}")), "{err}");
            }
        }
        assert_eq!(location("West Europe").unwrap(), "westeurope");
    }

    #[test]
    fn features_are_found_missing_and_turned_on() {
        let mut properties = json!({"oidcIssuerProfile": {"enabled": true, "issuerURL": "x"}, "ingressProfile": null});
        assert_eq!(
            missing_features(&properties),
            ["workload identity", "app routing add-on"]
        );
        enable_features(&mut properties);
        assert!(missing_features(&properties).is_empty());
        assert_eq!(properties["oidcIssuerProfile"]["issuerURL"], "x");
    }

    #[test]
    fn a_write_leaves_out_what_arm_reports_only() {
        let read = json!({"id": "x", "systemData": {}, "properties": {
            "provisioningState": "Succeeded", "fqdn": "f", "dnsPrefix": "d",
            "oidcIssuerProfile": {"enabled": true, "issuerURL": "u"},
            "agentPoolProfiles": [{"name": "p", "powerState": {}, "count": 2}],
        }});
        assert_eq!(
            writable_cluster(&read),
            json!({"id": "x", "properties": {
                "dnsPrefix": "d",
                "oidcIssuerProfile": {"enabled": true},
                "agentPoolProfiles": [{"name": "p", "count": 2}],
            }})
        );
    }

    #[test]
    fn the_dns_prefix_starts_with_a_letter() {
        let cluster = ClusterRef {
            subscription: "1234567-89".into(),
            resource_group: "my_rg".into(),
            name: "9lives".into(),
        };
        assert_eq!(dns_prefix(&cluster), "a9lives-my-rg-123456");
    }
}
