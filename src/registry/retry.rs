//! Retries with exponential backoff, full jitter and `Retry-After` for transient failures (408,
//! 429, 5xx, broken connections), each within a time budget; auth and client errors are final.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::StatusCode;

/// How patiently to retry, and a count of the retries made under it (shared by clones).
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// How long one operation (one blob, the manifest) may keep retrying before it gives up.
    pub budget: Duration,
    pub base_delay: Duration,
    pub max_delay: Duration,
    retries: Arc<AtomicUsize>,
}

/// The default budget per blob and per request outside blobs: see docs/reliability.md.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(120);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::with_budget(DEFAULT_BUDGET)
    }
}

impl RetryPolicy {
    pub fn with_budget(budget: Duration) -> Self {
        RetryPolicy {
            budget,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            retries: Arc::default(),
        }
    }

    /// The same policy with a budget of at most `max`.
    pub fn capped(&self, max: Duration) -> Self {
        RetryPolicy {
            budget: self.budget.min(max),
            ..self.clone()
        }
    }

    /// The same pauses, with no retries at all (for probes).
    pub fn once(&self) -> Self {
        RetryPolicy {
            budget: Duration::ZERO,
            ..self.clone()
        }
    }

    /// Retries made so far under this policy and its clones.
    pub fn retries(&self) -> usize {
        self.retries.load(Ordering::Relaxed)
    }

    /// When an operation starting now must be done retrying.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.budget
    }

    /// The pause before try number `attempt + 1`: a random point in the upper half of
    /// `base·2^attempt` (capped), or the server's `Retry-After` when it asked for longer.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let jittered = exponential.mul_f64(rand::rng().random_range(0.5..=1.0));
        retry_after.map_or(jittered, |r| r.max(jittered))
    }
}

/// Why one try failed, and whether another may succeed.
#[derive(Debug)]
pub enum Attempt {
    /// Worth another try, after at least the given pause if the server named one.
    Transient(anyhow::Error, Option<Duration>),
    Final(anyhow::Error),
}

impl From<anyhow::Error> for Attempt {
    fn from(err: anyhow::Error) -> Self {
        Attempt::Final(err)
    }
}

/// Statuses a later try may not see: timeouts, throttling and server-side failures.
pub fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// The pause a `Retry-After: <seconds>` header asks for (the HTTP-date form is not honoured).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Duration::from_secs)
}

/// Transport errors a later try may not see: refused or reset connections, timeouts, bodies cut
/// short. Certificate failures are final: retrying cannot make an untrusted server trusted.
pub fn is_transient_error(err: &reqwest::Error) -> bool {
    if err.is_builder() || err.is_redirect() || is_certificate_error(err) {
        return false;
    }
    err.is_connect() || err.is_timeout() || err.is_request() || err.is_body()
}

/// True when the error chain is a TLS certificate rejection (rustls reports these in its message).
pub fn is_certificate_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(e) = cause {
        let text = e.to_string();
        if text.contains("certificate") || text.contains("UnknownIssuer") {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The last failure of an operation that ran out of time: its message, the tries and time spent,
/// and underneath, the last failure's causes (shown by `--verbose`, inspected by callers).
#[derive(Debug)]
pub struct GaveUp {
    tries: u32,
    spent: Duration,
    last: anyhow::Error,
}

impl std::fmt::Display for GaveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let spent = Duration::from_secs(self.spent.as_secs());
        write!(
            f,
            "{} (gave up after {} tries in {})",
            self.last,
            self.tries,
            humantime::format_duration(spent)
        )
    }
}

impl std::error::Error for GaveUp {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let last: &(dyn std::error::Error + 'static) = self.last.as_ref();
        last.source()
    }
}

/// Runs `op` (given the try number, from 0) until it succeeds, fails finally, or the policy's
/// budget (from now) is spent.
pub async fn run<T, F, Fut>(policy: &RetryPolicy, op: F) -> anyhow::Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Attempt>>,
{
    run_until(policy, policy.deadline(), op).await
}

/// [`run`], with a deadline shared by several operations (every request for one blob). A pause
/// that would end past the deadline is not taken: the last error is returned instead.
pub async fn run_until<T, F, Fut>(
    policy: &RetryPolicy,
    deadline: Instant,
    mut op: F,
) -> anyhow::Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Attempt>>,
{
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        match op(attempt).await {
            Ok(value) => return Ok(value),
            Err(Attempt::Final(err)) => return Err(err),
            Err(Attempt::Transient(err, retry_after)) => {
                attempt += 1;
                let pause = policy.delay(attempt - 1, retry_after);
                if Instant::now() + pause > deadline {
                    return Err(GaveUp {
                        tries: attempt,
                        spent: started.elapsed(),
                        last: err,
                    }
                    .into());
                }
                policy.retries.fetch_add(1, Ordering::Relaxed);
                tracing::info!("transient failure ({err:#}); retrying in {pause:.1?}");
                tokio::time::sleep(pause).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_timeouts_and_server_errors_are_transient_client_errors_are_not() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(
                is_transient_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 405, 409, 413, 501, 505] {
            assert!(
                !is_transient_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }

    fn quick(budget: Duration) -> RetryPolicy {
        RetryPolicy {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            ..RetryPolicy::with_budget(budget)
        }
    }

    #[test]
    fn delays_grow_stay_jittered_within_bounds_and_honour_retry_after() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        for attempt in 0..8 {
            let full = (Duration::from_millis(100) * (1 << attempt)).min(Duration::from_secs(1));
            let delay = policy.delay(attempt, None);
            assert!(delay >= full / 2 && delay <= full, "{attempt}: {delay:?}");
        }
        assert_eq!(
            policy.delay(0, Some(Duration::from_millis(900))),
            Duration::from_millis(900)
        );
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(60))),
            Duration::from_secs(60)
        );
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_counted_final_ones_are_not() {
        let policy = quick(Duration::from_secs(60));
        let mut tries = 0;
        let value = run(&policy, |attempt| {
            tries += 1;
            async move {
                if attempt < 2 {
                    Err(Attempt::Transient(anyhow::anyhow!("503"), None))
                } else {
                    Ok(attempt)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!((value, tries, policy.retries()), (2, 3, 2));

        let mut tries = 0;
        let err = run(&policy, |_| {
            tries += 1;
            async { Err::<(), _>(Attempt::Final(anyhow::anyhow!("401"))) }
        })
        .await
        .unwrap_err();
        assert_eq!((err.to_string(), tries), ("401".to_string(), 1));
    }

    #[tokio::test]
    async fn a_spent_budget_or_a_retry_after_beyond_it_gives_up_with_the_last_error() {
        let err = run(&quick(Duration::from_millis(50)), |attempt| async move {
            Err::<(), _>(Attempt::Transient(anyhow::anyhow!("503 #{attempt}"), None))
        })
        .await
        .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("503 #"), "{message}");
        assert!(message.contains("tries in 0s)"), "{message}");
        assert_ne!(message, "503 #0 (gave up after 1 tries in 0s)");

        let policy = quick(Duration::from_secs(5));
        let err = run(&policy, |_| async {
            let retry_after = Some(Duration::from_secs(3600));
            Err::<(), _>(Attempt::Transient(anyhow::anyhow!("429"), retry_after))
        })
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "429 (gave up after 1 tries in 0s)");
        assert_eq!(policy.retries(), 0);
    }
}
