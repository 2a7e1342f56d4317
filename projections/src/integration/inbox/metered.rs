//! The metrics of one inbox, keyed once by its consumer's name.

use metrics::Key;
use tessera_core::telemetry::{increment, key, set, value};

/// `tessera_inbox_{handled,duplicates,held_back,dead_lettered}_total` and
/// `tessera_inbox_lag_messages`, labelled `inbox`.
#[derive(Debug)]
pub(super) struct InboxMetrics {
    pub(super) handled: Key,
    pub(super) duplicates: Key,
    pub(super) held_back: Key,
    pub(super) dead_lettered: Key,
    lag: Key,
}

impl InboxMetrics {
    pub(super) fn new(inbox: &str) -> Self {
        let labels = [("inbox", inbox)];
        Self {
            handled: key("tessera_inbox_handled_total", &labels),
            duplicates: key("tessera_inbox_duplicates_total", &labels),
            held_back: key("tessera_inbox_held_back_total", &labels),
            dead_lettered: key("tessera_inbox_dead_lettered_total", &labels),
            lag: key("tessera_inbox_lag_messages", &labels),
        }
    }

    /// Counts one more of `counter` (one of the keys above).
    pub(super) fn count(counter: &Key) {
        increment(counter, 1);
    }

    /// The broker's count of messages waiting for the consumer.
    pub(super) fn lag(&self, lag: u64) {
        set(&self.lag, value(lag));
    }
}
