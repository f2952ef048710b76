//! Key Vault delivery and workload identity for the pods (docs/cluster.md): by default the Secrets
//! Store CSI driver syncs each mapped vault secret into a Secret the variables read; Spin's provider on request.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{CSIVolumeSource, ServiceAccount, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::app::App;
use crate::azure::vault::{self, Vault};

const CSI_DRIVER: &str = "secrets-store.csi.k8s.io";
const VOLUME: &str = "key-vault";
const MOUNT_PATH: &str = "/mnt/key-vault";
pub const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";

/// How the pod gets the vault's secrets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyVaultMode {
    /// The Secrets Store CSI driver syncs mapped secrets into a Kubernetes Secret.
    #[default]
    Csi,
    /// Spin's `azure_key_vault` variables provider: every variable looked up under its own name.
    Provider,
}

/// The vault and how the pods read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyVaultOptions {
    pub vault: Vault,
    pub mode: KeyVaultMode,
}

/// The workload identity the pods run as (it reads the vault, and Cosmos DB stores without keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityOptions {
    pub client_id: String,
    pub tenant_id: String,
    /// The ServiceAccount federated with the identity.
    pub service_account: String,
}

/// The Secrets Store CSI driver's `SecretProviderClass` (`secrets-store.csi.x-k8s.io/v1`).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretProviderClass {
    api_version: &'static str,
    kind: &'static str,
    pub metadata: ObjectMeta,
    spec: ProviderClassSpec,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProviderClassSpec {
    provider: &'static str,
    parameters: BTreeMap<&'static str, String>,
    secret_objects: Vec<SecretObject>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretObject {
    secret_name: String,
    #[serde(rename = "type")]
    type_: &'static str,
    data: Vec<SecretObjectData>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretObjectData {
    object_name: String,
    key: String,
}

/// The Secret the CSI driver syncs (and the SecretProviderClass) for workload `name`.
pub fn synced_secret(name: &str) -> String {
    format!("{name}-key-vault")
}

/// A SecretProviderClass mapping each variable's vault secret (`_` → `-`) to a key of the synced
/// Secret named after the variable.
pub fn provider_class(
    options: &KeyVaultOptions,
    identity: &IdentityOptions,
    metadata: ObjectMeta,
    variables: &[String],
) -> SecretProviderClass {
    let secret_name = metadata.name.clone().unwrap_or_default();
    let mut objects = String::from("array:\n");
    for variable in variables {
        objects.push_str(&format!(
            "  - |\n    objectName: {}\n    objectType: secret\n    objectAlias: {variable}\n",
            vault::secret_name(variable)
        ));
    }
    SecretProviderClass {
        api_version: "secrets-store.csi.x-k8s.io/v1",
        kind: "SecretProviderClass",
        metadata,
        spec: ProviderClassSpec {
            provider: "azure",
            parameters: BTreeMap::from([
                ("usePodIdentity", "false".to_string()),
                ("clientID", identity.client_id.clone()),
                ("keyvaultName", options.vault.name.clone()),
                ("tenantId", identity.tenant_id.clone()),
                ("objects", objects),
            ]),
            secret_objects: vec![SecretObject {
                secret_name,
                type_: "Opaque",
                data: variables
                    .iter()
                    .map(|v| SecretObjectData {
                        object_name: v.clone(),
                        key: v.clone(),
                    })
                    .collect(),
            }],
        },
    }
}

/// The CSI volume (and its mount) that makes the driver fetch and sync the secrets.
pub fn csi_volume(name: &str) -> (Volume, VolumeMount) {
    let volume = Volume {
        name: VOLUME.to_string(),
        csi: Some(CSIVolumeSource {
            driver: CSI_DRIVER.to_string(),
            read_only: Some(true),
            volume_attributes: Some(BTreeMap::from([(
                "secretProviderClass".to_string(),
                synced_secret(name),
            )])),
            ..CSIVolumeSource::default()
        }),
        ..Volume::default()
    };
    let mount = VolumeMount {
        name: VOLUME.to_string(),
        mount_path: MOUNT_PATH.to_string(),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    (volume, mount)
}

/// The ServiceAccount the pods run as, annotated with the identity's client id.
pub fn service_account(identity: &IdentityOptions, mut metadata: ObjectMeta) -> ServiceAccount {
    metadata.annotations = Some(BTreeMap::from([(
        CLIENT_ID_ANNOTATION.to_string(),
        identity.client_id.clone(),
    )]));
    ServiceAccount {
        metadata,
        ..ServiceAccount::default()
    }
}

/// The app's variables Spin's provider can never find (their names contain `_`), for
/// `--key-vault-mode provider`, which looks every variable up under its own name.
pub fn unresolvable_by_provider(app: &App) -> Vec<&str> {
    app.variables
        .keys()
        .filter(|name| !vault::provider_can_resolve(name))
        .map(String::as_str)
        .collect()
}
