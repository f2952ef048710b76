//! One ARM request with a bearer token from the chain: 429/`Retry-After` and 5xx retried with
//! backoff (only where repeating is safe), cached GETs, `nextLink` pages and long-running operations.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::{Arm, ArmError};

/// Attempts per request, the first included.
const ATTEMPTS: u32 = 5;
/// The longest single wait a `Retry-After` may ask for.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// How long one long-running operation may take before spin-aks gives up on it.
const LRO_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// The pace of polling when the service gives no `Retry-After`.
const POLL_EVERY: Duration = Duration::from_secs(5);

/// Whether a request may be sent again after an ambiguous failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Repeat {
    /// Reads and idempotent writes: retried on 429, 5xx and connection errors.
    Safe,
    /// Actions with effects (run command): retried only on 429, which ARM sends before doing anything.
    Once,
}

/// A successful ARM response.
pub(super) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> anyhow::Result<T> {
        let mut de = serde_json::Deserializer::from_str(&self.body);
        serde_path_to_error::deserialize(&mut de)
            .with_context(|| format!("ARM answered {what} with an unexpected body"))
    }

    fn header(&self, name: &str) -> Option<String> {
        let value = self.headers.get(name)?.to_str().ok()?;
        Some(value.to_string())
    }
}

impl Arm {
    /// `<endpoint><path>?api-version=<version>` (`path` starts with `/` and may hold a query).
    pub(super) fn url(&self, path: &str, api_version: &str) -> String {
        let join = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{join}api-version={api_version}", self.endpoint)
    }

    /// A GET, answered from this client's cache when the same URL was read before.
    pub(super) async fn get<T: DeserializeOwned>(&self, url: &str) -> anyhow::Result<T> {
        let cached = self.cache.lock().unwrap().get(url).cloned();
        let body = match cached {
            Some(body) => body,
            None => {
                let reply = self.send(Method::GET, url, None, Repeat::Safe).await?;
                let body: Arc<str> = reply.body.into();
                self.cache.lock().unwrap().insert(url.into(), body.clone());
                body
            }
        };
        let mut de = serde_json::Deserializer::from_str(&body);
        serde_path_to_error::deserialize(&mut de)
            .with_context(|| format!("ARM answered GET {} with an unexpected body", strip(url)))
    }

    /// Every item of a list, following `nextLink` verbatim.
    pub(super) async fn list<T: DeserializeOwned>(&self, url: &str) -> anyhow::Result<Vec<T>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page<T> {
            #[serde(default = "Vec::new")]
            value: Vec<T>,
            next_link: Option<String>,
        }
        let mut items = Vec::new();
        let mut next = Some(url.to_string());
        while let Some(url) = next.take() {
            self.same_origin(&url)?;
            let page: Page<T> = self.get(&url).await?;
            items.extend(page.value);
            next = page.next_link.filter(|link| !link.is_empty());
        }
        Ok(items)
    }

    /// Sends one request (retrying as `repeat` allows); non-2xx answers become [`ArmError`].
    /// Any write empties the read cache.
    pub(super) async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
        repeat: Repeat,
    ) -> anyhow::Result<Reply> {
        if method != Method::GET {
            self.cache.lock().unwrap().clear();
        }
        let what = format!("{method} {}", strip(url));
        let scope = format!("{}/.default", self.endpoint);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.credential.token(&scope).await?;
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(token.token.expose());
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) if repeat == Repeat::Safe && attempt < ATTEMPTS => {
                    tracing::debug!(%what, %err, "ARM unreachable, retrying");
                    self.pause(backoff(attempt)).await;
                    continue;
                }
                Err(err) => {
                    return Err(err).with_context(|| format!("could not reach ARM for {what}"))
                }
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let text = response.text().await.unwrap_or_default();
            if (200..300).contains(&status) {
                return Ok(Reply {
                    status,
                    headers,
                    body: text,
                });
            }
            let error = ArmError::from_body(status, &text, what.clone());
            if attempt < ATTEMPTS && retryable(&error, repeat) {
                let wait = retry_after(&headers).unwrap_or_else(|| backoff(attempt));
                tracing::debug!(%what, %error, ?wait, "ARM asked to retry");
                self.pause(wait).await;
                continue;
            }
            return Err(error.into());
        }
    }

    /// Waits for a long-running operation started by `started`: `Azure-AsyncOperation` first
    /// (`InProgress|Succeeded|Failed|Canceled`), then `Location` (202 running, 200/204 done).
    pub(super) async fn finish(&self, started: Reply) -> anyhow::Result<Reply> {
        if !matches!(started.status, 201 | 202) {
            return Ok(started);
        }
        if let Some(operation) = started.header("azure-asyncoperation") {
            self.await_operation(&operation).await?;
        }
        match started.header("location") {
            Some(location) => self.poll_location(&location).await,
            None => Ok(started),
        }
    }

    async fn await_operation(&self, url: &str) -> anyhow::Result<()> {
        #[derive(Deserialize)]
        struct Operation {
            status: String,
            error: Option<serde_json::Value>,
        }
        self.same_origin(url)?;
        let deadline = Instant::now() + LRO_DEADLINE;
        while Instant::now() < deadline {
            let reply = self.send(Method::GET, url, None, Repeat::Safe).await?;
            let operation: Operation = reply.json("an operation status")?;
            match operation.status.to_ascii_lowercase().as_str() {
                "succeeded" => return Ok(()),
                "failed" | "canceled" | "cancelled" => {
                    let body = serde_json::json!({ "error": operation.error });
                    let mut error =
                        ArmError::from_body(200, &body.to_string(), format!("GET {}", strip(url)));
                    if error.code == "HTTP200" {
                        error.code = operation.status;
                    }
                    return Err(error.into());
                }
                _ => {
                    self.pause(retry_after(&reply.headers).unwrap_or(POLL_EVERY))
                        .await
                }
            }
        }
        anyhow::bail!("the operation {} did not finish in time", strip(url))
    }

    async fn poll_location(&self, url: &str) -> anyhow::Result<Reply> {
        self.same_origin(url)?;
        let deadline = Instant::now() + LRO_DEADLINE;
        while Instant::now() < deadline {
            let reply = self.send(Method::GET, url, None, Repeat::Safe).await?;
            if reply.status != 202 {
                return Ok(reply);
            }
            self.pause(retry_after(&reply.headers).unwrap_or(POLL_EVERY))
                .await;
        }
        anyhow::bail!("the operation {} did not finish in time", strip(url))
    }

    /// Links the service hands back (`nextLink`, `Location`…) must stay on the ARM endpoint: the
    /// bearer token goes with them.
    fn same_origin(&self, url: &str) -> anyhow::Result<()> {
        let rest = url.strip_prefix(&self.endpoint);
        if rest.is_some_and(|rest| rest.is_empty() || rest.starts_with('/')) {
            Ok(())
        } else {
            anyhow::bail!(
                "ARM pointed to {} outside {}; not following it",
                strip(url),
                self.endpoint
            )
        }
    }
}

fn retryable(error: &ArmError, repeat: Repeat) -> bool {
    match error.status {
        429 => true,
        500..=599 => repeat == Repeat::Safe,
        // Another operation on the same resource (for federated credentials: another write on
        // the same identity, which Entra serializes) is still running: try again later.
        409 => {
            repeat == Repeat::Safe
                && matches!(
                    error.code.as_str(),
                    "RetryableErrorDueToAnotherOperation"
                        | "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"
                )
        }
        _ => false,
    }
}

/// 1, 2, 4, 8… seconds.
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1 << (attempt - 1).min(5))
}

/// `Retry-After` in seconds (ARM's form), capped at [`MAX_WAIT`].
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_WAIT))
}

/// The URL without its query, for messages.
fn strip(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(status: u16, code: &str) -> ArmError {
        ArmError {
            status,
            code: code.into(),
            message: String::new(),
            request: String::new(),
        }
    }

    #[test]
    fn only_throttling_repeats_an_action_with_effects() {
        assert!(retryable(&error(429, "TooManyRequests"), Repeat::Once));
        assert!(!retryable(&error(503, "ServiceUnavailable"), Repeat::Once));
        assert!(retryable(&error(503, "ServiceUnavailable"), Repeat::Safe));
        assert!(retryable(
            &error(409, "RetryableErrorDueToAnotherOperation"),
            Repeat::Safe
        ));
        assert!(retryable(
            &error(
                409,
                "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"
            ),
            Repeat::Safe
        ));
        assert!(!retryable(
            &error(409, "RoleAssignmentExists"),
            Repeat::Safe
        ));
        assert!(!retryable(&error(403, "AuthorizationFailed"), Repeat::Safe));
    }

    #[test]
    fn retry_after_is_seconds_and_capped() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(RETRY_AFTER, "3600".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(MAX_WAIT));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
    }
}
