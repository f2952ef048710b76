//! Azure REST calls with a bearer token from the credential chain, shared by ARM and Key Vault:
//! 429/`Retry-After` and 5xx retried with bounded backoff where repeating is safe, `nextLink` pages.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::azure::credential::AzureCredential;
use crate::bad_input;
use crate::retry::RetryPolicy;

/// Test-only knob: a factor applied to every wait (Retry-After, backoff, polling, replication
/// retries). `0` makes tests instant; production never sets it.
pub const DELAY_SCALE_ENV: &str = "SPIN_AKS_ARM_DELAY_SCALE";

/// The shortest wait, whatever the scale.
const MIN_PAUSE: Duration = Duration::from_millis(10);
/// Attempts per request, the first included.
const ATTEMPTS: u32 = 5;
/// The longest single wait a `Retry-After` may ask for.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// What all of one command's retries of a failing service may wait: past it, a request that
/// meets a failing service fails at once.
const COMMAND_RETRY_BUDGET: Duration = Duration::from_secs(30);
/// No retry of a failing service starts this long after a request's first attempt began (so
/// backoff waits 1 + 2 + 4 + 8 s at most, jittered).
const REQUEST_DEADLINE: Duration = Duration::from_secs(25);
/// How long a busy service (throttling, another operation in progress) is waited for in all:
/// [`ATTEMPTS`] bound it first.
const BUSY_DEADLINE: Duration = Duration::from_secs(300);
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
    /// Retries of a failing service (5xx, unreachable), their waits pooled for the command.
    failing: RetryPolicy,
    /// Retries of a busy service (409, 429).
    busy: RetryPolicy,
}

/// Pauses from 1 s doubling, `Retry-After` honoured up to [`MAX_WAIT`], [`ATTEMPTS`] tries.
fn policy(deadline: Duration) -> RetryPolicy {
    RetryPolicy::new(Duration::from_secs(1), Duration::from_secs(32), deadline)
        .max_tries(ATTEMPTS)
        .max_wait(MAX_WAIT)
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
            failing: policy(REQUEST_DEADLINE).pooled(COMMAND_RETRY_BUDGET),
            busy: policy(BUSY_DEADLINE),
        })
    }

    pub fn credential(&self) -> &AzureCredential {
        &self.credential
    }

    /// Sleeps `duration` scaled by [`DELAY_SCALE_ENV`], at least [`MIN_PAUSE`] (polls never spin).
    pub async fn pause(&self, duration: Duration) {
        tokio::time::sleep(self.scaled(duration)).await;
    }

    fn scaled(&self, duration: Duration) -> Duration {
        duration.mul_f64(self.delay_scale).max(MIN_PAUSE)
    }

    /// Pauses `wait` before a retry. A scaled pause brings `deadlines` closer by what it skipped,
    /// so the policy sees the time it granted as spent.
    async fn retry_pause(&self, wait: Duration, deadlines: &mut [Instant; 2]) {
        let slept = self.scaled(wait);
        tokio::time::sleep(slept).await;
        let skipped = wait.saturating_sub(slept);
        for deadline in deadlines {
            *deadline = deadline.checked_sub(skipped).unwrap_or(*deadline);
        }
    }

    /// Sends `call` (retrying as its `repeat` allows); non-2xx answers become `E`. A failing
    /// service (5xx, unreachable) is retried within [`REQUEST_DEADLINE`] and what is left of
    /// [`COMMAND_RETRY_BUDGET`]; the error then says how often and how long it was tried.
    pub async fn send<E: ServiceError>(&self, call: Call<'_>) -> anyhow::Result<Reply> {
        let service = E::SERVICE;
        let what = format!("{} {}", call.method, strip(call.url));
        let started = Instant::now();
        let mut deadlines = [self.failing.deadline(), self.busy.deadline()];
        let tried = |attempts: u32| {
            let secs = started.elapsed().as_secs_f64().round();
            match attempts {
                1 => format!("1 attempt over {secs} s"),
                n => format!("{n} attempts over {secs} s"),
            }
        };
        let mut attempt = 0;
        let mut token_renewed = false;
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
                        .then(|| self.failing.next_pause(attempt, deadlines[0], None))
                        .flatten();
                    if let Some(wait) = retry {
                        tracing::debug!(%what, %err, "{service} unreachable, retrying");
                        self.retry_pause(wait, &mut deadlines).await;
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
            if status == 401 && !token_renewed && token_expired(&headers, &body) {
                // The token expired in flight (or the service ended it early): a new one, once.
                tracing::debug!(%what, "{service} said the token expired, getting a new one");
                self.credential.forget(call.scope);
                token_renewed = true;
                attempt -= 1;
                continue;
            }
            let error = E::from_reply(status, &headers, &body, what.clone());
            // Throttling and another operation in progress are the service at work, not failing.
            let busy = matches!(status, 409 | 429);
            let asked = self.busy.asked(&headers);
            let wait = match error.retryable(call.repeat) {
                false => None,
                true if busy => self.busy.next_pause(attempt, deadlines[1], asked),
                true => self.failing.next_pause(attempt, deadlines[0], asked),
            };
            if let Some(wait) = wait {
                tracing::debug!(%what, %error, ?wait, "{service} asked to retry");
                self.retry_pause(wait, &mut deadlines).await;
                continue;
            }
            if attempt == 1 || (busy && !error.retryable(call.repeat)) {
                return Err(error.into());
            }
            let kept = if busy { "stayed busy" } else { "kept failing" };
            let said = format!(
                "{service} {kept}: HTTP {status} ({}), {error}; {RERUN_HINT}",
                tried(attempt)
            );
            return Err(anyhow::Error::new(error).context(said));
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

/// Whether a 401 says the token expired: ARM's `ExpiredAuthenticationToken`, or a
/// `WWW-Authenticate` challenge with `error="invalid_token"` (RFC 6750).
fn token_expired(headers: &HeaderMap, body: &str) -> bool {
    let challenge = (headers.get_all(reqwest::header::WWW_AUTHENTICATE).iter())
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("error=\"invalid_token\""));
    challenge || ErrorBody::parse(401, body).code == "ExpiredAuthenticationToken"
}

/// What to do after a failing service was retried as long as spin-aks waits.
const RERUN_HINT: &str = "run the command again later: a re-run continues where this one stopped";

/// The pause a `Retry-After` asks for between polls of an operation, capped at [`MAX_WAIT`].
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    crate::retry::retry_after(headers, MAX_WAIT)
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
    fn a_failing_service_is_retried_within_the_request_deadline_and_the_command_pool() {
        let rest = Rest {
            http: reqwest::Client::new(),
            credential: AzureCredential::from_env(),
            delay_scale: 0.0,
            failing: policy(REQUEST_DEADLINE).pooled(COMMAND_RETRY_BUDGET),
            busy: policy(BUSY_DEADLINE),
        };
        // The longest pauses (a draw of 1) one request gets before it gives up.
        let pauses = |policy: &RetryPolicy, asked: Option<u64>| {
            let mut left = policy.budget;
            let waits: Vec<u64> = (1..)
                .map_while(|attempt| {
                    let pause = policy.pause(attempt, left, asked.map(Duration::from_secs), 1.0)?;
                    left -= pause;
                    Some(pause.as_secs())
                })
                .collect();
            waits
        };
        assert_eq!(pauses(&rest.busy, None), [1, 2, 4, 8]);
        assert_eq!(pauses(&rest.busy, Some(3600)), [60, 60, 60, 60]);
        // One request (a policy of its own, no pool): the deadline bounds what Retry-After asks.
        let request = policy(REQUEST_DEADLINE);
        assert_eq!(pauses(&request, None), [1, 2, 4, 8]);
        assert_eq!(pauses(&request, Some(10)), [10, 10]);
        assert_eq!(pauses(&request, Some(30)), [] as [u64; 0]);
        // The command's pool: two requests that paused 15 s each leave nothing for a third.
        for _ in 0..2 {
            assert_eq!(pauses(&rest.failing, None), [1, 2, 4, 8]);
        }
        assert_eq!(pauses(&rest.failing, None), [] as [u64; 0]);
        assert_eq!(
            pauses(&rest.busy, None),
            [1, 2, 4, 8],
            "throttling is not failing"
        );
    }

    #[test]
    fn only_a_401_saying_the_token_expired_asks_for_a_new_token() {
        let challenge = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(reqwest::header::WWW_AUTHENTICATE, value.parse().unwrap());
            headers
        };
        let expired = r#"{"error":{"code":"ExpiredAuthenticationToken","message":"The access token expiry UTC time '12/6/2026 8:00:00 PM' is earlier than current UTC time '12/6/2026 8:05:00 PM'."}}"#;
        let invalid = r#"{"error":{"code":"InvalidAuthenticationToken","message":"The access token is invalid."}}"#;
        let bearer_error = r#"Bearer authorization_uri="https://login.windows.net/", error="invalid_token", error_description="The access token has expired.""#;
        let vault_challenge = r#"Bearer authorization="https://login.microsoftonline.com/t", resource="https://vault.azure.net""#;
        // (headers, body, whether a new token is asked for)
        let cases = [
            (HeaderMap::new(), expired, true),
            (challenge(bearer_error), "", true),
            (HeaderMap::new(), invalid, false),
            (challenge(vault_challenge), "", false),
        ];
        for (headers, body, renew) in cases {
            assert_eq!(token_expired(&headers, body), renew, "{headers:?} {body}");
        }
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
