//! A circuit breaker: closed → open after N failures in a row → half-open after a
//! cool-down → closed after M successes (or open again on a failure).

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

mod state;

pub use state::{BreakerConfig, BreakerSnapshot, BreakerState};

#[derive(Debug)]
struct Inner {
    snapshot: BreakerSnapshot,
    open_until: Option<Instant>,
    trials_in_flight: u32,
}

/// A circuit breaker. Clones share it. Time is tokio's, so tests can pause it.
///
/// Ask [`CircuitBreaker::try_acquire`] before a call, then report the call's outcome to
/// the permit; [`Resilience`](super::Resilience) does this for you.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    inner: Arc<Mutex<Inner>>,
    /// `tessera_breaker_state{route}`, when named.
    state_gauge: Option<Arc<metrics::Key>>,
}

/// The breaker refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit open")]
pub struct Open;

/// Leave to make one call. Report its outcome with [`Permit::success`] or
/// [`Permit::failure`]; dropping it unreported frees its trial slot and counts nothing.
#[derive(Debug)]
pub struct Permit {
    breaker: CircuitBreaker,
    trial: bool,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        let snapshot = BreakerSnapshot {
            state: BreakerState::Closed,
            consecutive_failures: 0,
            half_open_successes: 0,
            calls: 0,
            failures: 0,
            rejected: 0,
            opened: 0,
        };
        let inner = Inner {
            snapshot,
            open_until: None,
            trials_in_flight: 0,
        };
        Self {
            config,
            inner: Arc::new(Mutex::new(inner)),
            state_gauge: None,
        }
    }

    /// Names it after the route it guards: its state is then the gauge
    /// `tessera_breaker_state{route}` (0 closed, 1 half-open, 2 open), set whenever it
    /// is asked for a call or told an outcome. An unnamed breaker records no metrics.
    #[must_use]
    pub fn with_name(mut self, route: &str) -> Self {
        let key = tessera_core::telemetry::key("tessera_breaker_state", &[("route", route)]);
        self.state_gauge = Some(Arc::new(key));
        self.publish(self.lock().snapshot.state);
        self
    }

    fn publish(&self, state: BreakerState) {
        if let Some(key) = &self.state_gauge {
            let value = match state {
                BreakerState::Closed => 0.0,
                BreakerState::HalfOpen => 1.0,
                BreakerState::Open => 2.0,
            };
            tessera_core::telemetry::set(key, value);
        }
    }

    /// Its state and counters now.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let mut inner = self.lock();
        Self::tick(&mut inner);
        inner.snapshot
    }

    /// Its state now.
    pub fn state(&self) -> BreakerState {
        self.snapshot().state
    }

    /// Leave to call, or [`Open`].
    pub fn try_acquire(&self) -> Result<Permit, Open> {
        let mut inner = self.lock();
        Self::tick(&mut inner);
        let trial = match inner.snapshot.state {
            BreakerState::Closed => false,
            BreakerState::HalfOpen
                if inner.trials_in_flight < self.config.success_threshold.max(1) =>
            {
                inner.trials_in_flight += 1;
                true
            }
            BreakerState::Open | BreakerState::HalfOpen => {
                inner.snapshot.rejected += 1;
                self.publish(inner.snapshot.state);
                return Err(Open);
            }
        };
        inner.snapshot.calls += 1;
        self.publish(inner.snapshot.state);
        Ok(Permit {
            breaker: self.clone(),
            trial,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Open → half-open once the cool-down has passed.
    fn tick(inner: &mut Inner) {
        if inner.snapshot.state == BreakerState::Open
            && inner.open_until.is_some_and(|t| Instant::now() >= t)
        {
            inner.snapshot.state = BreakerState::HalfOpen;
            inner.snapshot.half_open_successes = 0;
            inner.open_until = None;
        }
    }

    fn open(&self, inner: &mut Inner) {
        inner.snapshot.state = BreakerState::Open;
        inner.snapshot.opened += 1;
        inner.snapshot.consecutive_failures = 0;
        inner.snapshot.half_open_successes = 0;
        inner.open_until = Some(Instant::now() + self.config.cool_down);
    }

    fn report(&self, trial: bool, ok: bool) {
        let mut inner = self.lock();
        if trial {
            inner.trials_in_flight = inner.trials_in_flight.saturating_sub(1);
        }
        if !ok {
            inner.snapshot.failures += 1;
        }
        match (inner.snapshot.state, ok) {
            (BreakerState::Closed, true) => inner.snapshot.consecutive_failures = 0,
            (BreakerState::Closed, false) => {
                inner.snapshot.consecutive_failures += 1;
                if inner.snapshot.consecutive_failures >= self.config.failure_threshold.max(1) {
                    self.open(&mut inner);
                }
            }
            (BreakerState::HalfOpen, true) if trial => {
                inner.snapshot.half_open_successes += 1;
                if inner.snapshot.half_open_successes >= self.config.success_threshold.max(1) {
                    inner.snapshot.state = BreakerState::Closed;
                    inner.snapshot.half_open_successes = 0;
                }
            }
            (BreakerState::HalfOpen, false) => self.open(&mut inner),
            // Outcomes of calls let through before the breaker opened.
            _ => {}
        }
        self.publish(inner.snapshot.state);
    }
}

impl Permit {
    /// The call succeeded.
    pub fn success(mut self) {
        self.breaker.report(std::mem::take(&mut self.trial), true);
    }

    /// The call failed.
    pub fn failure(mut self) {
        self.breaker.report(std::mem::take(&mut self.trial), false);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.trial {
            let mut inner = self.breaker.lock();
            inner.trials_in_flight = inner.trials_in_flight.saturating_sub(1);
        }
    }
}
