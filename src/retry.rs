//! The one retry policy for every remote call (registries, ARM and Key Vault, the API server):
//! jittered exponential backoff, `Retry-After` read once and capped, tries bounded by time and count.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, StatusCode};
use rand::Rng;

/// The longest single pause unless a caller sets another: what a `Retry-After` may ask for.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);

/// The default budget per blob and per registry request outside blobs: see docs/reliability.md.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(120);

/// How patiently to retry, and a count of the retries made under it (shared by clones).
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// How long one operation may keep retrying: a pause that would end past it is not taken.
    pub budget: Duration,
    /// The backoff's first ceiling; it doubles after every try.
    pub base_delay: Duration,
    /// Where the backoff's ceiling stops doubling.
    pub max_delay: Duration,
    /// The longest single pause, whatever the server's `Retry-After` asks.
    pub max_wait: Duration,
    /// Tries in all, the first included.
    pub max_tries: u32,
    /// Pauses that every clone may take together, when limited.
    pool: Option<Arc<Pool>>,
    retries: Arc<AtomicUsize>,
}

/// A limit on the pauses of several operations together, and what they have spent of it.
#[derive(Debug)]
struct Pool {
    limit: Duration,
    spent: Mutex<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::with_budget(DEFAULT_BUDGET)
    }
}

impl RetryPolicy {
    /// Backoff from `base_delay` doubling up to `max_delay` within `budget`; any single pause at
    /// most [`DEFAULT_MAX_WAIT`]; tries limited only by the budget.
    pub fn new(base_delay: Duration, max_delay: Duration, budget: Duration) -> Self {
        RetryPolicy {
            budget,
            base_delay,
            max_delay,
            max_wait: DEFAULT_MAX_WAIT.max(max_delay),
            max_tries: u32::MAX,
            pool: None,
            retries: Arc::default(),
        }
    }

    /// The registries' policy: pauses from 250 ms doubling to 8 s, within `budget`.
    pub fn with_budget(budget: Duration) -> Self {
        RetryPolicy::new(Duration::from_millis(250), Duration::from_secs(8), budget)
    }

    /// The same policy, trying at most `tries` times in all.
    pub fn max_tries(self, tries: u32) -> Self {
        RetryPolicy {
            max_tries: tries.max(1),
            ..self
        }
    }

    /// The same policy, no single pause longer than `wait` (nor shorter than the backoff's ceiling).
    pub fn max_wait(self, wait: Duration) -> Self {
        RetryPolicy {
            max_wait: wait.max(self.max_delay),
            ..self
        }
    }

    /// The same policy, its clones pausing no longer than `limit` together: past it, an operation
    /// that fails transiently fails at once.
    pub fn pooled(self, limit: Duration) -> Self {
        RetryPolicy {
            pool: Some(Arc::new(Pool {
                limit,
                spent: Mutex::new(Duration::ZERO),
            })),
            ..self
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
    /// An unbounded budget (`Duration::MAX`) leaves the tries to bound the retries.
    pub fn deadline(&self) -> Instant {
        let now = Instant::now();
        now.checked_add(self.budget)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
    }

    /// The server's `Retry-After` in `headers`, capped at [`RetryPolicy::max_wait`].
    pub fn asked(&self, headers: &HeaderMap) -> Option<Duration> {
        retry_after(headers, self.max_wait)
    }

    /// The pause after try number `tries` (from 1): a random point in the upper half of
    /// `base_delay·2^(tries-1)` (at most `max_delay`), or the server's `asked` when longer; never
    /// more than `max_wait`. `unit` (in 0..=1) is the random draw.
    pub fn wait(&self, tries: u32, asked: Option<Duration>, unit: f64) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << tries.saturating_sub(1).min(16))
            .min(self.max_delay);
        let jittered = ceiling.mul_f64(0.5 + unit.clamp(0.0, 1.0) / 2.0);
        asked
            .map_or(jittered, |a| a.max(jittered))
            .min(self.max_wait)
    }

    /// The pause to take after try number `tries` failed transiently with `left` to the deadline,
    /// or `None` to give up: when the tries are spent, or the pause would end past the deadline or
    /// overdraw the pool. A pause granted is taken from the pool.
    pub fn pause(
        &self,
        tries: u32,
        left: Duration,
        asked: Option<Duration>,
        unit: f64,
    ) -> Option<Duration> {
        if tries >= self.max_tries {
            return None;
        }
        let wait = self.wait(tries, asked, unit);
        if wait > left {
            return None;
        }
        if let Some(pool) = &self.pool {
            let mut spent = pool.spent.lock().unwrap_or_else(|e| e.into_inner());
            if *spent + wait > pool.limit {
                return None;
            }
            *spent += wait;
        }
        Some(wait)
    }

    /// [`RetryPolicy::pause`] now, for an operation due to end at `deadline`, with a random draw.
    pub fn next_pause(
        &self,
        tries: u32,
        deadline: Instant,
        asked: Option<Duration>,
    ) -> Option<Duration> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.pause(tries, left, asked, rand::rng().random_range(0.0..=1.0))
    }
}

/// Statuses a later try may not see: timeouts, throttling and server-side failures.
pub fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// The `Retry-After` header of `headers` (see [`parse_retry_after`]), read now.
pub fn retry_after(headers: &HeaderMap, cap: Duration) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now(), cap)
}

/// The pause a `Retry-After` value asks for at `now` (RFC 9110 §10.2.3): delay-seconds, or an
/// HTTP-date (a past one asks for none); more than `cap` waits `cap`; anything else is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime, cap: Duration) -> Option<Duration> {
    let value = value.trim();
    let asked = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits past u64 still ask for longer than any cap.
        value.parse().map_or(Duration::MAX, Duration::from_secs)
    } else {
        let date = httpdate::parse_http_date(value).ok()?;
        date.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(asked.min(cap))
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
    let mut tries = 0;
    loop {
        match op(tries).await {
            Ok(value) => return Ok(value),
            Err(Attempt::Final(err)) => return Err(err),
            Err(Attempt::Transient(err, asked)) => {
                tries += 1;
                let Some(pause) = policy.next_pause(tries, deadline, asked) else {
                    return Err(GaveUp {
                        tries,
                        spent: started.elapsed(),
                        last: err,
                    }
                    .into());
                };
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

    const fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

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
    fn retry_after_is_delay_seconds_or_an_http_date_and_never_past_the_cap() {
        // RFC 9110 §10.2.3: `Retry-After = HTTP-date / delay-seconds`; §5.6.7 dates in all
        // three forms a recipient must accept.
        let now = SystemTime::UNIX_EPOCH + secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let cap = secs(60);
        let cases: &[(&str, Option<Duration>)] = &[
            ("0", Some(Duration::ZERO)),
            ("7", Some(secs(7))),
            (" 7 ", Some(secs(7))),
            ("60", Some(cap)),
            ("3600", Some(cap)),
            ("99999999999999999999999999", Some(cap)),
            ("Sun, 06 Nov 1994 08:50:07 GMT", Some(secs(30))),
            ("Sunday, 06-Nov-94 08:50:07 GMT", Some(secs(30))),
            ("Sun Nov  6 08:50:07 1994", Some(secs(30))),
            ("Sun, 06 Nov 1994 10:49:37 GMT", Some(cap)),
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(Duration::ZERO)),
            ("Sat, 05 Nov 1994 08:49:37 GMT", Some(Duration::ZERO)),
            ("", None),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
            ("Sun, 32 Nov 1994 08:49:37 GMT", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_retry_after(value, now, cap), *expected, "{value:?}");
        }
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, cap), None);
        headers.insert(http::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers, cap), Some(secs(3)));
        let policy = RetryPolicy::default().max_wait(secs(10));
        headers.insert(http::header::RETRY_AFTER, "3600".parse().unwrap());
        assert_eq!(policy.asked(&headers), Some(secs(10)));
    }

    #[test]
    fn waits_double_stay_jittered_within_bounds_and_never_pass_the_cap() {
        let policy = RetryPolicy::new(Duration::from_millis(100), secs(1), secs(600));
        // (tries, the backoff's ceiling)
        let ceilings = [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ];
        for (tries, ceiling) in ceilings {
            let ceiling = Duration::from_millis(ceiling);
            for unit in [0.0, 0.25, 0.5, 1.0, -3.0, 7.0] {
                let wait = policy.wait(tries, None, unit);
                assert!(
                    wait >= ceiling / 2 && wait <= ceiling,
                    "try {tries}, draw {unit}: {wait:?}"
                );
            }
            assert_eq!(policy.wait(tries, None, 0.0), ceiling / 2);
            assert_eq!(policy.wait(tries, None, 1.0), ceiling);
        }
        // `Retry-After` asks for longer: honoured up to the cap, which bounds every wait.
        let capped = policy.clone().max_wait(secs(5));
        // (asked, try, the wait)
        let cases = [
            (
                Some(Duration::from_millis(900)),
                1,
                Duration::from_millis(900),
            ),
            (
                Some(Duration::from_millis(10)),
                1,
                Duration::from_millis(100),
            ),
            (Some(secs(3)), 3, secs(3)),
            (Some(secs(60)), 1, secs(5)),
            (Some(Duration::MAX), 9, secs(5)),
        ];
        for (asked, tries, expected) in cases {
            assert_eq!(capped.wait(tries, asked, 1.0), expected, "{asked:?}");
        }
        for tries in 1..64 {
            for asked in [None, Some(secs(1)), Some(Duration::MAX)] {
                assert!(capped.wait(tries, asked, 1.0) <= capped.max_wait);
            }
        }
        // A cap below the backoff's ceiling would make the ceiling a lie: it is raised to it.
        assert_eq!(policy.max_wait(Duration::from_millis(1)).max_wait, secs(1));
    }

    #[test]
    fn pauses_stop_at_the_deadline_the_tries_and_the_pool() {
        let policy = RetryPolicy::new(secs(1), secs(8), secs(25)).max_tries(5);
        let pauses = |policy: &RetryPolicy, asked: Option<Duration>| {
            let mut left = policy.budget;
            let mut taken = Vec::new();
            for tries in 1.. {
                let Some(pause) = policy.pause(tries, left, asked, 1.0) else {
                    break;
                };
                left -= pause;
                taken.push(pause.as_secs());
            }
            taken
        };
        // (Retry-After, the pauses one operation takes before it gives up)
        let cases: [(Option<u64>, &[u64]); 5] = [
            (None, &[1, 2, 4, 8]),
            (Some(3), &[3, 3, 4, 8]),
            (Some(10), &[10, 10]),
            (Some(30), &[]),
            (Some(3600), &[]),
        ];
        for (asked, expected) in cases {
            assert_eq!(pauses(&policy, asked.map(secs)), expected, "{asked:?}");
        }
        // The deadline counts the time the tries took too.
        assert_eq!(policy.pause(1, Duration::from_millis(999), None, 1.0), None);
        assert_eq!(policy.pause(1, secs(1), None, 1.0), Some(secs(1)));
        // A pool shared by clones: two operations that paused 15 s each leave nothing for a third.
        let pooled = policy.clone().pooled(secs(30));
        for _ in 0..2 {
            assert_eq!(pauses(&pooled.clone(), None), [1, 2, 4, 8]);
        }
        assert_eq!(pauses(&pooled, None), [] as [u64; 0]);
        assert_eq!(pauses(&policy, None), [1, 2, 4, 8], "no pool, no limit");
    }

    fn quick(budget: Duration) -> RetryPolicy {
        RetryPolicy::new(Duration::from_millis(1), Duration::from_millis(2), budget)
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_counted_final_ones_are_not() {
        let policy = quick(secs(60));
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

        let mut tries = 0;
        let err = run(&quick(secs(60)).max_tries(3), |_| {
            tries += 1;
            async { Err::<(), _>(Attempt::Transient(anyhow::anyhow!("503"), None)) }
        })
        .await
        .unwrap_err();
        assert_eq!(tries, 3);
        assert_eq!(err.to_string(), "503 (gave up after 3 tries in 0s)");
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

        let policy = quick(secs(5));
        let err = run(&policy, |_| async {
            let asked = Some(secs(3600));
            Err::<(), _>(Attempt::Transient(anyhow::anyhow!("429"), asked))
        })
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "429 (gave up after 1 tries in 0s)");
        assert_eq!(policy.retries(), 0);
    }
}
