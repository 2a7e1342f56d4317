//! Reactors: checkpointed readers of the log that act on each event outside it (send a
//! command to another context, call a payment gateway, copy an event to another log).
//!
//! A [`Reactor`] is a [`Subscriber`] driven by the [`Runner`](crate::Runner): it hands
//! each event of a batch to its [`Reaction`] and then moves its checkpoint in a
//! [`CheckpointStore`] with a compare-and-set. Its effects are not written with the
//! checkpoint, so a crash between the two delivers the event again: reactions must be
//! idempotent, which they are by construction when what they write carries an
//! idempotency key or an id derived from the triggering event's id (the store's
//! idempotent append then lands each write once).
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use tessera_core::{BoxError, EventAppender, EventFilter, ExpectedVersion, MemoryStore, NewEvent, RecordedEvent, StreamId};
//! use tessera_projections::{MemoryCheckpoints, Reaction, Reactor, Runner, RunnerConfig};
//!
//! struct Mailer(Arc<AtomicUsize>);
//! impl Reaction for Mailer {
//!     fn filter(&self) -> EventFilter { EventFilter::category("order") }
//!     async fn react(&self, _: &RecordedEvent) -> Result<(), BoxError> {
//!         self.0.fetch_add(1, Ordering::SeqCst); // send the mail, keyed by the event id
//!         Ok(())
//!     }
//! }
//!
//! let store = MemoryStore::new();
//! let sent = Arc::new(AtomicUsize::new(0));
//! let reactor = Reactor::new("mailer", Mailer(sent.clone()), MemoryCheckpoints::new(), 1);
//! let runner = Runner::new(store.clone(), reactor, RunnerConfig::default()).spawn();
//! let e = NewEvent::json("OrderPlaced", &serde_json::json!({})).unwrap();
//! let out = store.append(&StreamId::new("order-1").unwrap(), ExpectedVersion::NoStream, vec![e]).await.unwrap();
//! runner.wait_for(out.position, std::time::Duration::from_secs(5)).await.unwrap();
//! assert_eq!(sent.load(Ordering::SeqCst), 1);
//! # });
//! ```

use std::future::Future;
use std::sync::Arc;

use crate::checkpoint::{expect_at, CheckpointStore, Checkpoints};
use crate::{ApplyError, Subscriber};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tessera_core::{BoxError, EventFilter, Position, RecordedEvent};

/// What a reactor does with each event.
pub trait Reaction: Send + Sync + 'static {
    /// The events it wants.
    fn filter(&self) -> EventFilter;
    /// Reacts to one event. Must be idempotent: commands are keyed by the event's id.
    fn react(&self, event: &RecordedEvent) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// A reaction with a durable checkpoint in `C`.
pub struct Reactor<R, C = Checkpoints> {
    name: String,
    reaction: Arc<R>,
    checkpoints: C,
    concurrency: usize,
}

impl<R: Reaction, C: CheckpointStore> Reactor<R, C> {
    /// A reactor named `name` (its checkpoint's name: unique in `checkpoints`). Events
    /// of one batch are handled `concurrency` at a time in a sliding window (the next
    /// starts as soon as any finishes; 1: strictly in order); the checkpoint only ever
    /// moves past a prefix of the batch that succeeded. After a failure, reactions later
    /// in the batch may already have run (any that started while a slow earlier one
    /// ran); they are delivered again with the failed one, so they must be idempotent.
    pub fn new(name: impl Into<String>, reaction: R, checkpoints: C, concurrency: usize) -> Self {
        Self {
            name: name.into(),
            reaction: Arc::new(reaction),
            checkpoints,
            concurrency: concurrency.max(1),
        }
    }
}

impl<R: Reaction, C: CheckpointStore> Subscriber for Reactor<R, C> {
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
        expect_at(stored, from)?;
        // A sliding window over the batch: up to `concurrency` reactions at once, the
        // next one starting as soon as any finishes (a slow reaction holds its slot,
        // not the others'). `done` counts the prefix that succeeded; after a failure
        // nothing new starts and what is running finishes.
        let mut events = batch.iter().enumerate();
        let mut running = FuturesUnordered::new();
        let react = |(i, event)| {
            let reaction = &self.reaction;
            async move { (i, reaction.react(event).await) }
        };
        for next in events.by_ref().take(self.concurrency) {
            running.push(react(next));
        }
        let mut succeeded = vec![false; batch.len()];
        let mut failure: Option<(usize, BoxError)> = None;
        while let Some((i, result)) = running.next().await {
            match result {
                Ok(()) => succeeded[i] = true,
                Err(e) => {
                    if failure.as_ref().is_none_or(|(at, _)| i < *at) {
                        failure = Some((i, e));
                    }
                }
            }
            if failure.is_none() {
                if let Some(next) = events.next() {
                    running.push(react(next));
                }
            }
        }
        let done = succeeded.iter().take_while(|ok| **ok).count();
        let error = failure.map(|(_, e)| e);
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
