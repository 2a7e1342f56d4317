//! Metrics, emitted through the [`metrics`] facade.
//!
//! Tessera's crates record what they do (appends, commands, runners, inboxes, breakers)
//! through the `metrics` crate's facade. With no recorder installed every call is a
//! no-op; install any recorder (for instance `metrics-exporter-prometheus`) to collect
//! them. Every name starts with `tessera_`, and every label comes from a bounded set:
//! store kinds, aggregate categories, the names runners and guards are configured with,
//! and outcome words. Stream ids, event ids and error texts never become labels. The
//! repository README lists every metric.
//!
//! The helpers here take a [`Key`] built once (per store, handler or runner), so the
//! paths that emit allocate nothing for their labels.

use std::time::Instant;

use metrics::{Key, Label, Level, Metadata};

use crate::StoreError;

static METADATA: Metadata<'static> = Metadata::new("tessera", Level::INFO, Some(module_path!()));

/// A key named `name` with `labels`, built once and kept by whoever emits it.
pub fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new(*k, (*v).to_owned()))
        .collect();
    Key::from_parts(name, labels)
}

/// Adds `n` to the counter `key`.
pub fn increment(key: &Key, n: u64) {
    metrics::with_recorder(|r| r.register_counter(key, &METADATA).increment(n));
}

/// Records `value` in the histogram `key`.
pub fn record(key: &Key, value: f64) {
    metrics::with_recorder(|r| r.register_histogram(key, &METADATA).record(value));
}

/// Sets the gauge `key` to `value`.
pub fn set(key: &Key, value: f64) {
    metrics::with_recorder(|r| r.register_gauge(key, &METADATA).set(value));
}

/// Adds `delta` (negative to take away) to the gauge `key`.
pub fn add(key: &Key, delta: f64) {
    metrics::with_recorder(|r| r.register_gauge(key, &METADATA).increment(delta));
}

/// Converts a count to a metric value (exact below 2^53, which counts stay under).
#[allow(clippy::cast_precision_loss)]
pub fn value(n: u64) -> f64 {
    n as f64
}

/// The metrics of a store's appends, labelled `store` with the store's kind:
/// `tessera_append_duration_seconds` (histogram, with `outcome` = `ok`, `conflict` or
/// `error`), `tessera_append_events` (histogram of events per successful append) and
/// `tessera_append_conflicts_total` (counter of expected-version conflicts).
#[derive(Debug, Clone)]
pub struct AppendMetrics {
    ok: Key,
    conflict: Key,
    error: Key,
    events: Key,
    conflicts: Key,
}

impl AppendMetrics {
    /// The append metrics of a store of kind `store` (`memory`, `postgres`, ...).
    pub fn new(store: &'static str) -> Self {
        let duration = |outcome| {
            key(
                "tessera_append_duration_seconds",
                &[("store", store), ("outcome", outcome)],
            )
        };
        Self {
            ok: duration("ok"),
            conflict: duration("conflict"),
            error: duration("error"),
            events: key("tessera_append_events", &[("store", store)]),
            conflicts: key("tessera_append_conflicts_total", &[("store", store)]),
        }
    }

    /// Records an append of `events` events that started at `started` and ended with
    /// `result` (an [`AppendOutcome`](crate::AppendOutcome), or one with how it landed).
    pub fn observe<T>(&self, started: Instant, events: usize, result: &Result<T, StoreError>) {
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(_) => {
                record(&self.ok, seconds);
                record(&self.events, value(events as u64));
            }
            Err(e) if e.is_conflict() => {
                record(&self.conflict, seconds);
                increment(&self.conflicts, 1);
            }
            Err(_) => record(&self.error, seconds),
        }
    }
}
