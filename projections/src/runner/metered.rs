//! The metrics of one runner, keyed once by its subscriber's name.

use metrics::Key;
use tessera_core::telemetry::{increment, key, record, set, value};

use crate::Lag;

/// `tessera_runner_events_applied_total`, `tessera_runner_batch_size`,
/// `tessera_runner_lag_events` and `tessera_runner_lag_seconds`, labelled `runner`.
#[derive(Debug)]
pub(super) struct RunnerMetrics {
    applied: Key,
    batch: Key,
    lag_events: Key,
    lag_seconds: Key,
}

impl RunnerMetrics {
    pub(super) fn new(runner: &str) -> Self {
        let labels = [("runner", runner)];
        Self {
            applied: key("tessera_runner_events_applied_total", &labels),
            batch: key("tessera_runner_batch_size", &labels),
            lag_events: key("tessera_runner_lag_events", &labels),
            lag_seconds: key("tessera_runner_lag_seconds", &labels),
        }
    }

    /// A batch of `n` events applied.
    pub(super) fn applied(&self, n: usize) {
        increment(&self.applied, n as u64);
        record(&self.batch, value(n as u64));
    }

    /// The lag as just measured.
    pub(super) fn lag(&self, lag: &Lag) {
        set(&self.lag_events, value(lag.events));
        set(&self.lag_seconds, lag.age.as_secs_f64());
    }
}
