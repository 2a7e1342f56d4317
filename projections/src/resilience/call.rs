//! One guarded call: retry around bulkhead, breaker and timeout.

use std::future::Future;
use std::time::Duration;

use backon::Retryable;

use super::{BreakerConfig, Bulkhead, CircuitBreaker, RetryConfig};

/// How calls to one external service are guarded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResilienceConfig {
    /// Longest one attempt may take.
    pub timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryConfig,
    /// When the breaker opens and closes.
    pub breaker: BreakerConfig,
    /// Most calls in flight at once.
    pub max_concurrent: usize,
    /// Longest a call waits for a slot before it is refused.
    pub max_wait: Duration,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            retry: RetryConfig::default(),
            breaker: BreakerConfig::default(),
            max_concurrent: 16,
            max_wait: Duration::from_millis(100),
        }
    }
}

/// Why a guarded call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    /// An attempt took longer than the timeout (and retries ran out).
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The circuit breaker is open: the call was not made.
    #[error("circuit open")]
    Open,
    /// The bulkhead is full: the call was not made.
    #[error("bulkhead full")]
    Full,
    /// A transient error (and retries ran out).
    #[error("transient failure: {0}")]
    Transient(#[source] E),
    /// An error that retrying cannot fix (the service answered no).
    #[error("{0}")]
    Permanent(#[source] E),
}

impl<E> CallError<E> {
    /// Whether the caller may try again later (everything but a permanent error).
    pub fn is_transient(&self) -> bool {
        !matches!(self, CallError::Permanent(_))
    }

    fn is_retried(&self) -> bool {
        matches!(self, CallError::Timeout(_) | CallError::Transient(_))
    }
}

/// Guards calls to one external service (a payment gateway): each attempt takes a
/// bulkhead slot, asks the circuit breaker, and runs under a timeout; timeouts and
/// transient errors count as breaker failures and are retried with exponential backoff
/// and jitter; permanent errors are neither retried nor counted (the service answered).
/// Clones share the breaker and the bulkhead.
#[derive(Debug, Clone)]
pub struct Resilience {
    config: ResilienceConfig,
    breaker: CircuitBreaker,
    bulkhead: Bulkhead,
}

impl Resilience {
    /// Guards built from `config`.
    pub fn new(config: ResilienceConfig) -> Self {
        Self {
            breaker: CircuitBreaker::new(config.breaker),
            bulkhead: Bulkhead::new(config.max_concurrent, config.max_wait),
            config,
        }
    }

    /// The breaker, to observe (readiness, metrics).
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Names the guard after the route it protects, for metrics: its breaker's state
    /// and its bulkhead's calls in flight and refusals are recorded labelled
    /// `route` ([`CircuitBreaker::with_name`], [`Bulkhead::with_name`]).
    #[must_use]
    pub fn with_name(mut self, route: &str) -> Self {
        self.breaker = self.breaker.with_name(route);
        self.bulkhead = self.bulkhead.with_name(route);
        self
    }

    /// The bulkhead, to observe.
    pub fn bulkhead(&self) -> &Bulkhead {
        &self.bulkhead
    }

    /// Calls `op` under the guards; `is_transient` tells which of its errors may pass.
    pub async fn call<T, E, F, Fut>(
        &self,
        is_transient: impl Fn(&E) -> bool,
        op: F,
    ) -> Result<T, CallError<E>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        (|| self.attempt(&is_transient, &op))
            .retry(self.config.retry)
            .sleep(tokio::time::sleep)
            .when(CallError::is_retried)
            .await
    }

    async fn attempt<T, E, Fut>(
        &self,
        is_transient: &impl Fn(&E) -> bool,
        op: &impl Fn() -> Fut,
    ) -> Result<T, CallError<E>>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        // Frees the slot when the attempt ends, and updates the in-flight gauge.
        let _slot = self.bulkhead.slot().await.map_err(|_| CallError::Full)?;
        let permit = self.breaker.try_acquire().map_err(|_| CallError::Open)?;
        match tokio::time::timeout(self.config.timeout, op()).await {
            Err(_) => {
                permit.failure();
                Err(CallError::Timeout(self.config.timeout))
            }
            Ok(Err(e)) if is_transient(&e) => {
                permit.failure();
                Err(CallError::Transient(e))
            }
            Ok(Err(e)) => {
                permit.success();
                Err(CallError::Permanent(e))
            }
            Ok(Ok(value)) => {
                permit.success();
                Ok(value)
            }
        }
    }
}
