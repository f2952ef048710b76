//! Azure REST calls with a bearer token from the credential chain, shared by ARM and Key Vault:
//! 429/`Retry-After` and 5xx retried with bounded backoff where repeating is safe, `nextLink` pages.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::azure::credential::AzureCredential;
use crate::bad_input;

/// Test-only knob: a factor applied to every wait (Retry-After, backoff, polling, replication
/// retries). `0` makes tests instant; production never sets it.
pub const DELAY_SCALE_ENV: &str = "SPIN_AKS_ARM_DELAY_SCALE";

/// The shortest wait, whatever the scale.
const MIN_PAUSE: Duration = Duration::from_millis(10);
/// Attempts per request, the first included.
const ATTEMPTS: u32 = 5;
/// The longest single wait a `Retry-After` may ask for.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Whether a request may be sent again after an ambiguous failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    /// Reads and idempotent writes: retried on 429, 5xx and connection errors.
    Safe,
    /// Actions with effects (run command): retried only on 429, which Azure sends before doing anything.
    Once,
}

/// A service's error body turned into a typed error, and which of them are worth a retry.
pub trait ServiceError: std::error::Error + Send + Sync + Sized + 'static {
    /// The service's name in messages (`ARM`, `Key Vault`).
    const SERVICE: &'static str;
    /// The error of a non-2xx answer; `request` is `METHOD url` without the query.
    fn from_reply(status: u16, headers: &HeaderMap, body: &str, request: String) -> Self;
    fn retryable(&self, repeat: Repeat) -> bool;
}

/// One request: `body` is sent as JSON.
pub struct Call<'a> {
    pub method: Method,
    pub url: &'a str,
    pub scope: &'a str,
    pub body: Option<&'a serde_json::Value>,
    pub repeat: Repeat,
}

/// A successful answer.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
    service: &'static str,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> anyhow::Result<T> {
        let mut de = serde_json::Deserializer::from_str(&self.body);
        serde_path_to_error::deserialize(&mut de)
            .with_context(|| format!("{} answered {what} with an unexpected body", self.service))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let value = self.headers.get(name)?.to_str().ok()?;
        Some(value.to_string())
    }
}

/// One HTTP client (no redirects: the bearer token must not follow them) and one token source.
pub struct Rest {
    http: reqwest::Client,
    credential: AzureCredential,
    delay_scale: f64,
}

impl Rest {
    /// Tokens from the environment's credential chain; waits scaled by [`DELAY_SCALE_ENV`].
    pub fn from_env() -> anyhow::Result<Rest> {
        let delay_scale = match std::env::var(DELAY_SCALE_ENV)
            .ok()
            .filter(|v| !v.is_empty())
        {
            Some(text) => text
                .parse::<f64>()
                .ok()
                .filter(|scale| *scale >= 0.0)
                .ok_or_else(|| {
                    bad_input!("{DELAY_SCALE_ENV}={text} is not a non-negative number")
                })?,
            None => 1.0,
        };
        Ok(Rest {
            http: crate::tls::client_builder(Vec::new())
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            credential: AzureCredential::from_env(),
            delay_scale,
        })
    }

    pub fn credential(&self) -> &AzureCredential {
        &self.credential
    }

    /// Sleeps `duration` scaled by [`DELAY_SCALE_ENV`], at least [`MIN_PAUSE`] (polls never spin).
    pub async fn pause(&self, duration: Duration) {
        tokio::time::sleep(duration.mul_f64(self.delay_scale).max(MIN_PAUSE)).await;
    }

    /// Sends `call` (retrying as its `repeat` allows); non-2xx answers become `E`.
    pub async fn send<E: ServiceError>(&self, call: Call<'_>) -> anyhow::Result<Reply> {
        let service = E::SERVICE;
        let what = format!("{} {}", call.method, strip(call.url));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.credential.token(call.scope).await?;
            let mut request = self
                .http
                .request(call.method.clone(), call.url)
                .bearer_auth(token.token.expose());
            if let Some(body) = call.body {
                request = request.json(body);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) if call.repeat == Repeat::Safe && attempt < ATTEMPTS => {
                    tracing::debug!(%what, %err, "{service} unreachable, retrying");
                    self.pause(backoff(attempt)).await;
                    continue;
                }
                Err(err) => {
                    return Err(err)
                        .with_context(|| format!("could not reach {service} for {what}"))
                }
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.text().await.unwrap_or_default();
            if (200..300).contains(&status) {
                return Ok(Reply {
                    status,
                    headers,
                    body,
                    service,
                });
            }
            let error = E::from_reply(status, &headers, &body, what.clone());
            if attempt < ATTEMPTS && error.retryable(call.repeat) {
                let wait = retry_after(&headers).unwrap_or_else(|| backoff(attempt));
                tracing::debug!(%what, %error, ?wait, "{service} asked to retry");
                self.pause(wait).await;
                continue;
            }
            return Err(error.into());
        }
    }
}

/// Every item of a `{"value":[…],"nextLink":…}` list from `first` on, following `nextLink`
/// verbatim as long as it stays under `base` (the bearer token goes with it).
pub async fn collect_pages<T, F, Fut>(
    base: &str,
    first: &str,
    mut fetch: F,
) -> anyhow::Result<Vec<T>>
where
    T: DeserializeOwned,
    F: FnMut(String) -> Fut,
    Fut: Future<Output = anyhow::Result<Page<T>>>,
{
    let mut items = Vec::new();
    let mut next = Some(first.to_string());
    while let Some(url) = next.take() {
        same_origin(base, &url)?;
        let page = fetch(url).await?;
        items.extend(page.value);
        next = page.next_link.filter(|link| !link.is_empty());
    }
    Ok(items)
}

/// One page of an Azure list.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    next_link: Option<String>,
}

/// Links a service hands back (`nextLink`, `Location`…) must stay under `base`: same scheme, host
/// and port (Key Vault's links name the default `:443`), and below its path.
pub fn same_origin(base: &str, url: &str) -> anyhow::Result<()> {
    let origin = |u: &reqwest::Url| {
        (
            u.scheme().to_string(),
            u.host_str().map(str::to_ascii_lowercase),
            u.port_or_known_default(),
        )
    };
    let inside = match (reqwest::Url::parse(base), reqwest::Url::parse(url)) {
        (Ok(base), Ok(url)) => {
            origin(&base) == origin(&url)
                && url.path().starts_with(base.path().trim_end_matches('/'))
        }
        _ => false,
    };
    if inside {
        Ok(())
    } else {
        anyhow::bail!(
            "a link to {} leads outside {base}; not following it",
            strip(url)
        )
    }
}

/// 1, 2, 4, 8… seconds.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1 << (attempt - 1).min(5))
}

/// `Retry-After` in seconds (Azure's form), capped at [`MAX_WAIT`].
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
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
pub fn strip(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// The `{"error":{"code","message","innererror":{"code"}}}` envelope ARM and Key Vault answer
/// with; a body without it keeps the status as `HTTP<status>` and its first line as the message.
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    pub inner_code: Option<String>,
}

impl ErrorBody {
    pub fn parse(status: u16, body: &str) -> ErrorBody {
        #[derive(Deserialize)]
        struct Envelope {
            error: Detail,
        }
        #[derive(Deserialize)]
        struct Detail {
            code: Option<String>,
            message: Option<String>,
            innererror: Option<Inner>,
        }
        #[derive(Deserialize)]
        struct Inner {
            code: Option<String>,
        }
        let detail = serde_json::from_str::<Envelope>(body).ok().map(|e| e.error);
        let (code, message, inner) = match detail {
            Some(d) => (d.code, d.message, d.innererror.and_then(|i| i.code)),
            None => (None, None, None),
        };
        ErrorBody {
            code: code.unwrap_or_else(|| format!("HTTP{status}")),
            message: message.unwrap_or_else(|| first_line(body)),
            inner_code: inner,
        }
    }
}

fn first_line(body: &str) -> String {
    let line = body.lines().next().unwrap_or_default().trim();
    if line.is_empty() {
        "(no error body)".into()
    } else {
        line.chars().take(200).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn links_must_stay_under_the_base() {
        assert!(same_origin(
            "https://v.vault.azure.net/",
            "https://v.vault.azure.net/secrets?x"
        )
        .is_ok());
        assert!(same_origin("http://127.0.0.1:9", "http://127.0.0.1:9/subscriptions").is_ok());
        assert!(same_origin(
            "https://v.vault.azure.net/",
            "https://v.vault.azure.net:443/secrets?x"
        )
        .is_ok());
        assert!(same_origin(
            "https://v.vault.azure.net/",
            "http://v.vault.azure.net/secrets"
        )
        .is_err());
        assert!(same_origin(
            "https://v.vault.azure.net/",
            "https://v.vault.azure.net.evil/x"
        )
        .is_err());
        assert!(same_origin(
            "https://v.vault.azure.net/",
            "https://other.vault.azure.net/"
        )
        .is_err());
    }
}
