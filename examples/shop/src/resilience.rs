//! Calls to services outside the log: timeout, retries with backoff and jitter, a
//! circuit breaker and a bulkhead.
//!
//! The shop's stand-in for the resilience primitives of issue 5 (not landed when the
//! shop was written); the API is small so the swap is local to the payment worker.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// Tuning of the resilience layer.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Time allowed for one attempt.
    pub timeout: Duration,
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// First backoff cap (doubles per attempt, full jitter).
    pub backoff: Duration,
    /// Consecutive failures that open the breaker.
    pub breaker_threshold: u32,
    /// How long the breaker stays open before letting a trial call through.
    pub breaker_open_for: Duration,
    /// Calls in flight at once; more wait up to `timeout` for a slot.
    pub bulkhead: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
            attempts: 4,
            backoff: Duration::from_millis(20),
            breaker_threshold: 20,
            breaker_open_for: Duration::from_secs(2),
            bulkhead: 32,
        }
    }
}

/// Why a protected call gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    /// Every attempt failed; the last error.
    #[error("gave up after {attempts} attempts: {last}")]
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: E,
    },
    /// Every attempt timed out or the last one did.
    #[error("timed out")]
    Timeout,
    /// The breaker is open: the service is failing, calls are not made.
    #[error("circuit breaker open")]
    Open,
    /// No bulkhead slot freed up in time.
    #[error("bulkhead full")]
    Full,
}

#[derive(Debug)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

/// A protected route to one service. Clones share the breaker and the bulkhead.
#[derive(Clone)]
pub struct Resilient {
    policy: Policy,
    breaker: Arc<Mutex<Breaker>>,
    bulkhead: Arc<Semaphore>,
}

impl Resilient {
    /// A route with `policy`.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            breaker: Arc::new(Mutex::new(Breaker {
                failures: 0,
                open_until: None,
            })),
            bulkhead: Arc::new(Semaphore::new(policy.bulkhead.max(1))),
        }
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `"closed"`, `"open"` or `"half_open"`.
    pub fn breaker_state(&self) -> &'static str {
        match self.breaker().open_until {
            None => "closed",
            Some(t) if Instant::now() < t => "open",
            Some(_) => "half_open",
        }
    }

    fn record(&self, ok: bool) {
        let mut b = self.breaker();
        if ok {
            b.failures = 0;
            b.open_until = None;
        } else {
            b.failures += 1;
            if b.failures >= self.policy.breaker_threshold || b.open_until.is_some() {
                b.open_until = Some(Instant::now() + self.policy.breaker_open_for);
            }
        }
    }

    /// Whether a call may go through now (closed, or a half-open trial).
    fn admit(&self) -> bool {
        let mut b = self.breaker();
        match b.open_until {
            Some(t) if Instant::now() < t => false,
            Some(_) => {
                // Half open: one trial; keep others out until it answers.
                b.open_until = Some(Instant::now() + self.policy.timeout);
                true
            }
            None => true,
        }
    }

    /// Calls `f` under the policy. `retryable` says which errors are worth another try.
    pub async fn call<T, E, Fut>(
        &self,
        mut f: impl FnMut() -> Fut,
        retryable: impl Fn(&E) -> bool,
    ) -> Result<T, CallError<E>>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let Ok(Ok(_permit)) =
            tokio::time::timeout(self.policy.timeout, self.bulkhead.acquire()).await
        else {
            return Err(CallError::Full);
        };
        let attempts = self.policy.attempts.max(1);
        let mut attempt = 1;
        loop {
            if !self.admit() {
                return Err(CallError::Open);
            }
            let outcome = tokio::time::timeout(self.policy.timeout, f()).await;
            self.record(matches!(outcome, Ok(Ok(_))));
            let error = match outcome {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) if !retryable(&e) || attempt >= attempts => {
                    return Err(CallError::Exhausted {
                        attempts: attempt,
                        last: e,
                    })
                }
                Err(_) if attempt >= attempts => return Err(CallError::Timeout),
                _ => attempt,
            };
            let cap = self.policy.backoff.saturating_mul(1 << error.min(16));
            let micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
            tokio::time::sleep(Duration::from_micros(fastrand::u64(0..=micros))).await;
            attempt += 1;
        }
    }
}
