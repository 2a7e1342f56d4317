//! Reactors: checkpointed readers of one context's log that act on each event.
//!
//! The inbox relays (inventory and payment events into the ordering log, for the saga)
//! and the payment worker are reactors; the fulfilment saga itself is not: it runs on the
//! process-manager runtime of `tessera-projections` (`MemoryProcess` or `PgProcess`, see
//! [`crate::fulfilment`]). A [`Reactor`] is a [`Subscriber`] driven by the projections
//! [`Runner`](tessera_projections::Runner): it hands each event of a batch to its
//! [`Reaction`] and then moves its checkpoint with a compare-and-set. Reactions are
//! idempotent by construction: what they write carries an idempotency key or id derived
//! from the triggering event's id, so an event delivered again (after a crash between
//! the writes and the checkpoint) lands each write once.

use std::future::Future;
use std::sync::Arc;

use futures_util::stream::{FuturesOrdered, StreamExt};
use tessera_core::{BoxError, EventFilter, Position, RecordedEvent};
use tessera_projections::{ApplyError, Subscriber};

mod checkpoints;

pub use checkpoints::Checkpoints;

/// What a reactor does with each event.
pub trait Reaction: Send + Sync + 'static {
    /// The events it wants.
    fn filter(&self) -> EventFilter;
    /// Reacts to one event. Must be idempotent: commands are keyed by the event's id.
    fn react(&self, event: &RecordedEvent) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// A reaction with a durable checkpoint.
pub struct Reactor<R> {
    name: String,
    reaction: Arc<R>,
    checkpoints: Checkpoints,
    concurrency: usize,
}

impl<R: Reaction> Reactor<R> {
    /// A reactor named `name` (unique per checkpoint table). Events of one batch are
    /// handled `concurrency` at a time (1: strictly in order).
    pub fn new(
        name: impl Into<String>,
        reaction: R,
        checkpoints: Checkpoints,
        concurrency: usize,
    ) -> Self {
        Self {
            name: name.into(),
            reaction: Arc::new(reaction),
            checkpoints,
            concurrency: concurrency.max(1),
        }
    }
}

impl<R: Reaction> Subscriber for Reactor<R> {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> EventFilter {
        self.reaction.filter()
    }

    async fn checkpoint(&self) -> Result<Position, BoxError> {
        self.checkpoints.load(&self.name).await
    }

    async fn apply(&self, from: Position, batch: &[RecordedEvent]) -> Result<(), ApplyError> {
        let failed = |applied, error| ApplyError::Failed { applied, error };
        let stored = self
            .checkpoints
            .load(&self.name)
            .await
            .map_err(|e| failed(0, e))?;
        if stored != from {
            return Err(ApplyError::Fenced { expected: from });
        }
        // In order of the batch, up to `concurrency` at once; `done` counts the prefix
        // that succeeded.
        let mut events = batch.iter();
        let mut running = FuturesOrdered::new();
        for event in events.by_ref().take(self.concurrency) {
            running.push_back(self.reaction.react(event));
        }
        let mut done = 0;
        let mut error = None;
        while let Some(result) = running.next().await {
            match result {
                Ok(()) if error.is_none() => done += 1,
                Ok(()) => {}
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
            if error.is_none() {
                if let Some(event) = events.next() {
                    running.push_back(self.reaction.react(event));
                }
            }
        }
        let to = match done {
            0 => from,
            n => batch[n - 1].position,
        };
        if to != from
            && !self
                .checkpoints
                .advance(&self.name, from, to)
                .await
                .map_err(|e| failed(0, e))?
        {
            return Err(ApplyError::Fenced { expected: from });
        }
        match error {
            Some(e) => Err(failed(done, e)),
            None => Ok(()),
        }
    }
}
