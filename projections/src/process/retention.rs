//! Retention: what a prune round removed. What may be pruned and why exactly-once holds
//! without it is told once, in the [module docs](crate::process#retention).

/// What one prune round deleted ([`ProcessStore::prune`](super::ProcessStore::prune)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Handled (instance, trigger) records.
    pub handled: usize,
    /// Settled outbox entries: dispatched, failed or discarded commands.
    pub outbox: usize,
    /// Fired or cancelled deadlines.
    pub deadlines: usize,
}

impl Pruned {
    /// Rows deleted in all.
    pub fn total(&self) -> usize {
        self.handled + self.outbox + self.deadlines
    }

    /// Whether some table gave a full `limit` of rows: more may be waiting.
    pub fn reached(&self, limit: usize) -> bool {
        self.handled.max(self.outbox).max(self.deadlines) >= limit.max(1)
    }
}
