//! Makes a pull-only client for a repository named `host[:port]/path`, with the credential found
//! for its host, over HTTPS unless plain HTTP is allowed (for loopback it finds out itself).

use std::time::Duration;

use super::auth::{resolve_credential, AuthMode};
use super::client::{RegistryClient, TransportOptions};
use crate::oci::reference::RegistryRef;
use crate::retry::RetryPolicy;

/// How long a pull's requests keep retrying transient failures.
pub const RETRY_BUDGET: Duration = Duration::from_secs(60);

/// A client that pulls from `repository` (`host[:port]/path`); `plain_http`: an `insecure`
/// registry, reached over HTTP (else HTTPS, which a loopback registry's first manifest look-up
/// may turn into HTTP). `http` is [`super::client::http_client`]'s, built once.
pub async fn pull_client(
    repository: &str,
    plain_http: bool,
    http: &reqwest::Client,
    retry: RetryPolicy,
) -> anyhow::Result<RegistryClient> {
    let target = RegistryRef::parse(repository)?;
    let host = target.registry().to_string();
    let transport = TransportOptions {
        plain_http,
        ..Default::default()
    };
    let credential = resolve_credential(AuthMode::Auto, &host, http).await?;
    Ok(RegistryClient::new(&target, credential, &[], http.clone(), &transport, retry)?.pull_only())
}
