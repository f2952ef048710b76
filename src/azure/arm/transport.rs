//! ARM requests over the shared Azure REST loop (token, retries, `Retry-After`): cached GETs,
//! `nextLink` pages, and long-running operations polled to the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::{Arm, ArmError};
use crate::azure::names;
pub(super) use crate::azure::rest::Repeat;
use crate::azure::rest::{self, retry_after, strip, Call, Reply};

/// How long one long-running operation may take before spin-aks gives up on it.
pub(super) const LRO_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// The pace of polling when the service gives no `Retry-After`.
pub(super) const POLL_EVERY: Duration = Duration::from_secs(5);

impl Arm {
    /// `<endpoint><path>?api-version=<version>` (`path` starts with `/` and may hold a query);
    /// refused when a segment of the path could move it (`..`, `%2F`…): names are checked where
    /// they are pasted in, this is the last line.
    pub(super) fn url(&self, path: &str, api_version: &str) -> anyhow::Result<String> {
        let (bare, join) = match path.split_once('?') {
            Some((bare, _)) => (bare, '&'),
            None => (path, '?'),
        };
        names::resource_path(bare)?;
        Ok(format!(
            "{}{path}{join}api-version={api_version}",
            self.endpoint
        ))
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
        rest::collect_pages(
            &self.endpoint,
            url,
            |url| async move { self.get(&url).await },
        )
        .await
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
        let scope = format!("{}/.default", self.endpoint);
        let call = Call {
            method,
            url,
            scope: &scope,
            body,
            repeat,
        };
        self.rest.send::<ArmError>(call).await
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

    /// Links ARM hands back (`Location`, operation status) must stay on the ARM endpoint.
    fn same_origin(&self, url: &str) -> anyhow::Result<()> {
        rest::same_origin(&self.endpoint, url)
    }
}

/// A GET's 404 as `None`.
pub(super) fn not_found_as_none<T>(read: anyhow::Result<T>) -> anyhow::Result<Option<T>> {
    match read {
        Ok(found) => Ok(Some(found)),
        Err(err)
            if err
                .downcast_ref::<ArmError>()
                .is_some_and(|e| e.status == 404) =>
        {
            Ok(None)
        }
        Err(err) => Err(err),
    }
}
