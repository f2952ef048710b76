//! Azure REST calls with a bearer token from the credential chain, shared by ARM and Key Vault:
//! 429/`Retry-After` and 5xx retried with bounded backoff where repeating is safe, `nextLink` pages.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
/// What one request's retries of a failing service (5xx, unreachable) may wait in all: backoff
/// 1 + 2 + 4 + 8 s, or less when `Retry-After` asks for more.
const REQUEST_RETRY_BUDGET: Duration = Duration::from_secs(15);
/// What all of one command's retries of a failing service may wait: past it, a request that
/// meets a failing service fails at once.
const COMMAND_RETRY_BUDGET: Duration = Duration::from_secs(30);
/// No retry of a failing service starts this long after a request's first attempt began.
const REQUEST_DEADLINE: Duration = Duration::from_secs(25);
/// How long opening a connection may take (an address that drops packets never refuses).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Waits already spent retrying a failing service in this command (unscaled).
    failing_waits: Mutex<Duration>,
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
                .connect_timeout(CONNECT_TIMEOUT)
                .build()?,
            credential: AzureCredential::from_env(),
            delay_scale,
            failing_waits: Mutex::new(Duration::ZERO),
        })
    }

    pub fn credential(&self) -> &AzureCredential {
        &self.credential
    }

    /// Sleeps `duration` scaled by [`DELAY_SCALE_ENV`], at least [`MIN_PAUSE`] (polls never spin).
    pub async fn pause(&self, duration: Duration) {
        tokio::time::sleep(duration.mul_f64(self.delay_scale).max(MIN_PAUSE)).await;
    }

    /// Sends `call` (retrying as its `repeat` allows); non-2xx answers become `E`. A failing
    /// service (5xx, unreachable) is retried within [`REQUEST_RETRY_BUDGET`] and what is left of
    /// [`COMMAND_RETRY_BUDGET`]; the error then says how often and how long it was tried.
    pub async fn send<E: ServiceError>(&self, call: Call<'_>) -> anyhow::Result<Reply> {
        let service = E::SERVICE;
        let what = format!("{} {}", call.method, strip(call.url));
        let started = Instant::now();
        let mut waited = Duration::ZERO;
        let tried = |attempts: u32| {
            let secs = started.elapsed().as_secs_f64().round();
            match attempts {
                1 => format!("1 attempt over {secs} s"),
                n => format!("{n} attempts over {secs} s"),
            }
        };
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
                Err(err) => {
                    let retry = (call.repeat == Repeat::Safe)
                        .then(|| self.failing_wait(attempt, &mut waited, None, started))
                        .flatten();
                    if let Some(wait) = retry {
                        tracing::debug!(%what, %err, "{service} unreachable, retrying");
                        self.pause(wait).await;
                        continue;
                    }
                    return Err(err).with_context(|| {
                        format!(
                            "could not reach {service} for {what} ({}); check the network and \
                             {RERUN_HINT}",
                            tried(attempt)
                        )
                    });
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
            // Throttling and another operation in progress are the service at work, not failing.
            let busy = matches!(status, 409 | 429);
            let wait = match error.retryable(call.repeat) {
                false => None,
                true if busy => (attempt < ATTEMPTS)
                    .then(|| retry_after(&headers).unwrap_or_else(|| backoff(attempt))),
                true => self.failing_wait(attempt, &mut waited, retry_after(&headers), started),
            };
            if let Some(wait) = wait {
                tracing::debug!(%what, %error, ?wait, "{service} asked to retry");
                self.pause(wait).await;
                continue;
            }
            if attempt == 1 || busy {
                return Err(error.into());
            }
            let said = format!(
                "{service} kept failing: HTTP {status} ({}), {error}; {RERUN_HINT}",
                tried(attempt)
            );
            return Err(anyhow::Error::new(error).context(said));
        }
    }

    /// The wait before retrying a failing service, or `None` when this request or command has
    /// waited long enough (or tried [`ATTEMPTS`] times). `asked` is the service's `Retry-After`.
    fn failing_wait(
        &self,
        attempt: u32,
        waited: &mut Duration,
        asked: Option<Duration>,
        started: Instant,
    ) -> Option<Duration> {
        if attempt >= ATTEMPTS || started.elapsed() >= REQUEST_DEADLINE {
            return None;
        }
        let mut spent = self.failing_waits.lock().unwrap();
        let left = REQUEST_RETRY_BUDGET
            .saturating_sub(*waited)
            .min(COMMAND_RETRY_BUDGET.saturating_sub(*spent));
        let wait = asked.unwrap_or_else(|| backoff(attempt)).min(left);
        if wait.is_zero() {
            return None;
        }
        *waited += wait;
        *spent += wait;
        Some(wait)
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

/// What to do after a failing service was retried as long as spin-aks waits.
const RERUN_HINT: &str = "run the command again later: a re-run continues where this one stopped";

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
    fn a_failing_service_is_retried_within_the_request_and_command_budgets() {
        let rest = Rest {
            http: reqwest::Client::new(),
            credential: AzureCredential::from_env(),
            delay_scale: 0.0,
            failing_waits: Mutex::new(Duration::ZERO),
        };
        let secs = Duration::from_secs;
        // (Retry-After, the waits one request gets before it gives up)
        let cases: [(Option<u64>, &[u64]); 3] = [
            (None, &[1, 2, 4, 8]),
            (Some(30), &[15]),
            (Some(3), &[3, 3, 3, 3]),
        ];
        for (asked, expected) in cases {
            *rest.failing_waits.lock().unwrap() = Duration::ZERO;
            let (mut waited, started) = (Duration::ZERO, Instant::now());
            let waits: Vec<u64> = (1..)
                .map_while(|attempt| {
                    rest.failing_wait(attempt, &mut waited, asked.map(secs), started)
                })
                .map(|wait| wait.as_secs())
                .collect();
            assert_eq!(waits, expected, "Retry-After {asked:?}");
            assert!(waited <= REQUEST_RETRY_BUDGET);
        }
        // The command's budget: two requests that waited 15 s each leave nothing for a third.
        *rest.failing_waits.lock().unwrap() = Duration::ZERO;
        for _ in 0..2 {
            let mut waited = Duration::ZERO;
            while rest
                .failing_wait(1, &mut waited, Some(secs(15)), Instant::now())
                .is_some()
            {}
        }
        let mut waited = Duration::ZERO;
        assert_eq!(
            rest.failing_wait(1, &mut waited, None, Instant::now()),
            None
        );
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
