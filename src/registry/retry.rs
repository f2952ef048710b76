//! Retries with exponential backoff and full jitter for transient failures: 408, 429, 5xx
//! answers and broken connections. Auth and other client errors are final on the first try.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;

/// How often and how patiently to retry one operation.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Total tries, the first one included.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The pause before try number `attempt + 1`: a random point in the upper half of
    /// `base·2^attempt` (capped), or the server's `Retry-After` when it asked for longer.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let jittered = exponential.mul_f64(rand::rng().random_range(0.5..=1.0));
        retry_after
            .map(|r| r.min(self.max_delay).max(jittered))
            .unwrap_or(jittered)
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

/// The last failure of an operation that ran out of tries: its message, the number of tries,
/// and underneath, the last failure's causes (shown by `--verbose`, inspected by callers).
#[derive(Debug)]
pub struct GaveUp {
    tries: u32,
    last: anyhow::Error,
}

impl std::fmt::Display for GaveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (gave up after {} tries)", self.last, self.tries)
    }
}

impl std::error::Error for GaveUp {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let last: &(dyn std::error::Error + 'static) = self.last.as_ref();
        last.source()
    }
}

/// Runs `op` (given the try number, from 0) until it succeeds, fails finally, or runs out of tries.
pub async fn run<T, F, Fut>(policy: &RetryPolicy, mut op: F) -> anyhow::Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Attempt>>,
{
    let mut attempt = 0;
    loop {
        match op(attempt).await {
            Ok(value) => return Ok(value),
            Err(Attempt::Final(err)) => return Err(err),
            Err(Attempt::Transient(err, retry_after)) => {
                attempt += 1;
                if attempt >= policy.attempts {
                    return Err(GaveUp {
                        tries: attempt,
                        last: err,
                    }
                    .into());
                }
                let pause = policy.delay(attempt - 1, retry_after);
                tracing::debug!("transient failure ({err:#}); retrying in {pause:?}");
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

    #[test]
    fn delays_grow_stay_jittered_within_bounds_and_honour_retry_after() {
        let policy = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
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
            Duration::from_secs(1)
        );
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_final_ones_are_not() {
        let policy = RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        };
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
        assert_eq!((value, tries), (2, 3));

        let mut tries = 0;
        let err = run(&policy, |_| {
            tries += 1;
            async { Err::<(), _>(Attempt::Final(anyhow::anyhow!("401"))) }
        })
        .await
        .unwrap_err();
        assert_eq!((err.to_string(), tries), ("401".to_string(), 1));

        let err = run(&policy, |_| async {
            Err::<(), _>(Attempt::Transient(anyhow::anyhow!("503"), None))
        })
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "503 (gave up after 4 tries)");
    }
}
