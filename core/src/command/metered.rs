//! The metrics of a command handler, keyed once by its aggregate's category.

use metrics::Key;

use crate::telemetry::{increment, key};
use crate::CommandError;

/// `tessera_commands_total` by outcome, retries, state-cache and snapshot hits and
/// misses, all labelled `category`.
#[derive(Debug)]
pub(super) struct CommandMetrics {
    ok: Key,
    rejected: Key,
    conflict: Key,
    error: Key,
    retries: Key,
    cache_hits: Key,
    cache_misses: Key,
    snapshot_hits: Key,
    snapshot_misses: Key,
}

impl CommandMetrics {
    pub(super) fn new(category: &'static str) -> Self {
        let labels = [("category", category)];
        let outcome = |outcome| {
            key(
                "tessera_commands_total",
                &[("category", category), ("outcome", outcome)],
            )
        };
        Self {
            ok: outcome("ok"),
            rejected: outcome("rejected"),
            conflict: outcome("conflict"),
            error: outcome("error"),
            retries: key("tessera_command_retries_total", &labels),
            cache_hits: key("tessera_state_cache_hits_total", &labels),
            cache_misses: key("tessera_state_cache_misses_total", &labels),
            snapshot_hits: key("tessera_snapshot_hits_total", &labels),
            snapshot_misses: key("tessera_snapshot_misses_total", &labels),
        }
    }

    /// Counts a command that ended with `result`.
    pub(super) fn handled<T, E: std::error::Error + Send + Sync + 'static>(
        &self,
        result: &Result<T, CommandError<E>>,
    ) {
        let key = match outcome(result) {
            "ok" => &self.ok,
            "rejected" => &self.rejected,
            "conflict" => &self.conflict,
            _ => &self.error,
        };
        increment(key, 1);
    }

    /// Counts a reload and new decision after a failed append.
    pub(super) fn retried(&self) {
        increment(&self.retries, 1);
    }

    /// Counts a look-up in the state cache.
    pub(super) fn cache(&self, hit: bool) {
        increment(
            if hit {
                &self.cache_hits
            } else {
                &self.cache_misses
            },
            1,
        );
    }

    /// Counts a load that found a usable snapshot (`hit`) or read from the start.
    pub(super) fn snapshot(&self, hit: bool) {
        let key = if hit {
            &self.snapshot_hits
        } else {
            &self.snapshot_misses
        };
        increment(key, 1);
    }
}

/// How a command ended, as the `outcome` label and span field: `ok`, `rejected`,
/// `conflict` or `error`.
pub(super) fn outcome<T, E: std::error::Error + Send + Sync + 'static>(
    result: &Result<T, CommandError<E>>,
) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(CommandError::Rejected(_) | CommandError::KeyReused { .. }) => "rejected",
        Err(CommandError::Conflict { .. }) => "conflict",
        Err(_) => "error",
    }
}
