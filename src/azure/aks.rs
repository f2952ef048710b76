//! AKS credentials without files or kubelogin: the cluster user kubeconfig fetched from ARM into
//! memory, Entra users' kubelogin exec replaced by a bearer token from our chain; ExecCredentials.

use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;
use kube::config::Kubeconfig;
use secrecy::SecretString;
use serde_json::json;

use super::arm::Arm;
use crate::azure::ClusterRef;
use crate::bad_input;
use crate::secret::Secret;

/// The AKS Entra server application every managed-AAD cluster accepts tokens for.
pub const AKS_SERVER_APP: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";

/// The exec credential API versions `cluster token` can answer.
const EXEC_API_VERSIONS: [&str; 2] = [
    "client.authentication.k8s.io/v1beta1",
    "client.authentication.k8s.io/v1",
];

/// The Entra scope of tokens for the AKS server app `server_id`.
pub fn server_scope(server_id: &str) -> String {
    format!("{server_id}/.default")
}

/// The cluster user kubeconfig, ready for a kube Client: Entra users (a kubelogin exec block) get a
/// bearer token for the AKS server app from the credential chain instead. Nothing touches disk.
pub async fn user_kubeconfig(arm: &Arm, cluster: &ClusterRef) -> anyhow::Result<Kubeconfig> {
    let text = fetch_kubeconfig_text(arm, cluster).await?;
    let mut config = Kubeconfig::from_yaml(&text).with_context(|| {
        format!(
            "the kubeconfig ARM returned for {} is not valid",
            cluster.name
        )
    })?;
    for named in &mut config.auth_infos {
        let Some(user) = named.auth_info.as_mut() else {
            continue;
        };
        let server_id = user.exec.as_ref().and_then(|exec| {
            kubelogin_server_id(
                exec.command.as_deref()?,
                exec.args.as_deref().unwrap_or(&[]),
            )
        });
        if let Some(server_id) = server_id {
            let token = arm.credential().token(&server_scope(&server_id)).await?;
            user.exec = None;
            user.token = Some(SecretString::from(token.token.expose().to_string()));
        }
    }
    Ok(config)
}

/// The cluster user kubeconfig as ARM returns it (YAML text; it may hold credentials).
pub async fn fetch_kubeconfig_text(arm: &Arm, cluster: &ClusterRef) -> anyhow::Result<String> {
    let bytes = arm.cluster_user_kubeconfig(cluster).await?;
    String::from_utf8(bytes).context("the kubeconfig ARM returned is not UTF-8")
}

/// When `command args…` is kubelogin's `get-token`, the AKS server app it asks a token for.
pub fn kubelogin_server_id(command: &str, args: &[String]) -> Option<String> {
    let name = Path::new(command).file_stem()?.to_str()?;
    if name != "kubelogin" || args.first().map(String::as_str) != Some("get-token") {
        return None;
    }
    let given = args
        .windows(2)
        .find(|pair| pair[0] == "--server-id")
        .map(|pair| pair[1].clone());
    Some(given.unwrap_or_else(|| AKS_SERVER_APP.to_string()))
}

/// The apiVersion kubectl asks for in `KUBERNETES_EXEC_INFO` (v1beta1 when it says nothing).
pub fn requested_exec_api_version(exec_info: Option<&str>) -> anyhow::Result<&'static str> {
    let Some(text) = exec_info.filter(|text| !text.trim().is_empty()) else {
        return Ok(EXEC_API_VERSIONS[0]);
    };
    let info: serde_json::Value = serde_json::from_str(text)
        .map_err(|err| bad_input!("KUBERNETES_EXEC_INFO is not JSON: {err}"))?;
    let asked = info["apiVersion"].as_str().unwrap_or_default();
    EXEC_API_VERSIONS
        .into_iter()
        .find(|version| *version == asked)
        .ok_or_else(|| {
            bad_input!(
                "KUBERNETES_EXEC_INFO asks for apiVersion {asked:?}; spin-aks answers {}",
                EXEC_API_VERSIONS.join(" or ")
            )
        })
}

/// The ExecCredential a kubeconfig exec plugin prints: the token and its expiry (RFC 3339).
pub fn exec_credential(
    api_version: &str,
    token: &Secret,
    expires_on: SystemTime,
) -> serde_json::Value {
    json!({
        "kind": "ExecCredential",
        "apiVersion": api_version,
        "spec": {},
        "status": {
            "token": token.expose(),
            "expirationTimestamp": humantime::format_rfc3339_seconds(expires_on).to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kubelogin_get_token_is_recognised_with_its_server_id() {
        let aks = args(&["get-token", "--server-id", "abc", "--login", "devicecode"]);
        assert_eq!(
            kubelogin_server_id("kubelogin", &aks).as_deref(),
            Some("abc")
        );
        assert_eq!(
            kubelogin_server_id("/usr/bin/kubelogin", &args(&["get-token"])).as_deref(),
            Some(AKS_SERVER_APP)
        );
        assert_eq!(kubelogin_server_id("aws", &aks), None);
        assert_eq!(
            kubelogin_server_id("kubelogin", &args(&["convert-kubeconfig"])),
            None
        );
    }

    #[test]
    fn exec_info_selects_v1_or_v1beta1_and_rejects_others() {
        assert_eq!(
            requested_exec_api_version(None).unwrap(),
            EXEC_API_VERSIONS[0]
        );
        let v1 = r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#;
        assert_eq!(
            requested_exec_api_version(Some(v1)).unwrap(),
            "client.authentication.k8s.io/v1"
        );
        let alpha = r#"{"apiVersion":"client.authentication.k8s.io/v1alpha1"}"#;
        let err = requested_exec_api_version(Some(alpha)).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
    }

    #[test]
    fn exec_credential_has_token_and_rfc3339_expiry() {
        let expires = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let credential = exec_credential(EXEC_API_VERSIONS[1], &Secret::new("t0k"), expires);
        assert_eq!(credential["status"]["token"], "t0k");
        assert_eq!(
            credential["status"]["expirationTimestamp"],
            "2027-01-15T08:00:00Z"
        );
        assert_eq!(credential["kind"], "ExecCredential");
    }
}
