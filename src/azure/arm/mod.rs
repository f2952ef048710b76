//! A small typed Azure Resource Manager client over reqwest: endpoint and cloud selection, tokens
//! from the Entra chain, retries, long-running operations, pagination and cached reads.

mod error;
mod flux;
mod install;
mod provision;
mod resources;
mod transport;
pub mod types;
pub mod versions;
mod workload;

pub use error::{failed_step, role_for_action, ArmError, RERUN_CONTINUES};
pub use install::FLUX_EXTENSION;
pub use provision::{NameAvailability, Started};
pub use types::*;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::azure::credential::AzureCredential;
use crate::azure::rest::Rest;
use crate::bad_input;
use crate::tls::is_loopback;

/// The public cloud's ARM endpoint.
pub const PUBLIC_ENDPOINT: &str = "https://management.azure.com";

/// An ARM client for one command: one HTTP client, one token source, reads cached until a write.
pub struct Arm {
    rest: Rest,
    endpoint: String,
    /// GET URL → response body, for the life of this client (one command).
    cache: Mutex<HashMap<String, Arc<str>>>,
}

impl Arm {
    /// The endpoint from `SPIN_AKS_ARM_ENDPOINT`, else the cloud of `AZURE_AUTHORITY_HOST`; tokens
    /// from the environment's credential chain.
    pub fn from_env() -> anyhow::Result<Arm> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let endpoint = match var("SPIN_AKS_ARM_ENDPOINT") {
            Some(endpoint) => checked_endpoint(&endpoint)?,
            None => cloud_endpoint(var("AZURE_AUTHORITY_HOST").as_deref()).to_string(),
        };
        Ok(Arm {
            rest: Rest::from_env()?,
            endpoint,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The ARM base URL, without a trailing slash.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The credential chain this client signs in with (for tokens of other audiences).
    pub fn credential(&self) -> &AzureCredential {
        self.rest.credential()
    }

    /// Sleeps `duration`, scaled for tests (see [`crate::azure::rest::DELAY_SCALE_ENV`]).
    pub async fn pause(&self, duration: Duration) {
        self.rest.pause(duration).await;
    }
}

/// ARM for the cloud whose Entra authority is `authority_host` (public cloud when unset/unknown).
fn cloud_endpoint(authority_host: Option<&str>) -> &'static str {
    let host = authority_host.unwrap_or_default().to_ascii_lowercase();
    if host.contains("login.chinacloudapi.cn") {
        "https://management.chinacloudapi.cn"
    } else if host.contains("login.microsoftonline.us") {
        "https://management.usgovcloudapi.net"
    } else {
        PUBLIC_ENDPOINT
    }
}

/// An override endpoint: https, or http for loopback only; no trailing slash.
fn checked_endpoint(endpoint: &str) -> anyhow::Result<String> {
    let trimmed = endpoint.trim_end_matches('/');
    let plain = trimmed.strip_prefix("http://");
    let ok = match plain {
        Some(host) => is_loopback(host),
        None => trimmed.starts_with("https://") && trimmed.len() > "https://".len(),
    };
    if !ok {
        return Err(bad_input!(
            "SPIN_AKS_ARM_ENDPOINT={endpoint} must be an https:// URL (http:// only for loopback)"
        ));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_follows_the_authority_host() {
        assert_eq!(cloud_endpoint(None), PUBLIC_ENDPOINT);
        assert_eq!(
            cloud_endpoint(Some("https://login.chinacloudapi.cn/")),
            "https://management.chinacloudapi.cn"
        );
        assert_eq!(
            cloud_endpoint(Some("https://login.microsoftonline.us")),
            "https://management.usgovcloudapi.net"
        );
    }

    #[test]
    fn override_is_https_or_loopback_http() {
        assert_eq!(
            checked_endpoint("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            checked_endpoint("https://arm.example").unwrap(),
            "https://arm.example"
        );
        let err = checked_endpoint("http://arm.example").unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
    }
}
