//! Runner tuning.

use std::time::Duration;

use tessera_core::Backoff;

/// How a runner batches and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerConfig {
    /// Most events handed to the subscriber at once.
    pub batch_size: usize,
    /// Attempts at one event before the subscriber is stopped as failed.
    pub max_attempts: u32,
    /// Cap of the first backoff after a failure (doubles each time; each wait is drawn
    /// from the upper half of its cap).
    pub base_backoff: Duration,
    /// Cap of the backoff.
    pub max_backoff: Duration,
    /// At most how often the head is read for status and lag while events flow (two
    /// small reads; kept off every batch of the hot path).
    pub head_refresh: Duration,
    /// How often an idle runner re-reads the head to keep its status true.
    pub idle_refresh: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            max_attempts: 5,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            head_refresh: Duration::from_millis(250),
            idle_refresh: Duration::from_secs(1),
        }
    }
}

impl RunnerConfig {
    /// Jittered backoff after failure number `attempt` (1-based): in the upper half of
    /// `min(base_backoff · 2^(attempt-1), max_backoff)` ([`Backoff::capped`]).
    pub fn backoff(&self, attempt: u32) -> Duration {
        Backoff::capped(self.base_backoff, self.max_backoff, self.max_attempts).delay(attempt)
    }
}
