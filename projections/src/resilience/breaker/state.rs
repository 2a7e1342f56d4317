//! A breaker's configuration, state and counters.

use std::time::Duration;

/// When a breaker opens and closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open a closed breaker.
    pub failure_threshold: u32,
    /// How long it stays open before letting trial calls through.
    pub cool_down: Duration,
    /// Successful trial calls that close a half-open breaker. At most this many trial
    /// calls are in flight at once.
    pub success_threshold: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cool_down: Duration::from_secs(30),
            success_threshold: 2,
        }
    }
}

/// The state of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls are refused until the cool-down has passed.
    Open,
    /// A few trial calls go through to probe the service.
    HalfOpen,
}

impl BreakerState {
    /// Lower-case name (`"closed"`, `"open"`, `"half_open"`), for metrics and readiness.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// A breaker's state and counters, for readiness checks and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSnapshot {
    /// The current state (an open breaker whose cool-down has passed reads half-open).
    pub state: BreakerState,
    /// Failures in a row while closed.
    pub consecutive_failures: u32,
    /// Successful trial calls while half-open.
    pub half_open_successes: u32,
    /// Calls let through since creation.
    pub calls: u64,
    /// Of those, how many failed.
    pub failures: u64,
    /// Calls refused because the breaker was open (or its trial slots were taken).
    pub rejected: u64,
    /// How many times it opened.
    pub opened: u64,
}
