//! In-memory read models: the read model and its checkpoint under one lock.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tessera_core::{BoxError, EventFilter, EventReader, Position, ReadAll, RecordedEvent};

use crate::checkpoint::expect_at;
use crate::rebuild::{Progress, ProgressMeter};
use crate::{ApplyError, Subscriber};

/// The logic of an in-memory projection: how each event changes the model.
///
/// `handle` should check an event before it changes the model: the runner commits the
/// model and checkpoint event by event, and an error stops at that event.
pub trait MemoryHandler: Send + Sync + 'static {
    /// The read model.
    type Model: Default + Send + Sync + 'static;
    /// Stable name.
    fn name(&self) -> &str;
    /// Events it wants.
    fn filter(&self) -> EventFilter;
    /// Applies one event.
    fn handle(&self, model: &mut Self::Model, event: &RecordedEvent) -> Result<(), BoxError>;
}

struct Inner<M> {
    model: M,
    checkpoint: Position,
}

/// A projection into a model held in memory. Clones share the model.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use tessera_core::{BoxError, EventAppender, EventFilter, ExpectedVersion, MemoryStore, NewEvent, RecordedEvent, StreamId};
/// use tessera_projections::{MemoryHandler, MemoryProjection, Runner, RunnerConfig};
///
/// struct CountOrders;
/// impl MemoryHandler for CountOrders {
///     type Model = u64;
///     fn name(&self) -> &str { "order_count" }
///     fn filter(&self) -> EventFilter { EventFilter::category("order") }
///     fn handle(&self, count: &mut u64, _: &RecordedEvent) -> Result<(), BoxError> { *count += 1; Ok(()) }
/// }
///
/// let store = MemoryStore::new();
/// let projection = MemoryProjection::new(CountOrders);
/// let runner = Runner::new(store.clone(), projection.clone(), RunnerConfig::default()).spawn();
/// let e = NewEvent::json("OrderPlaced", &serde_json::json!({})).unwrap();
/// let out = store.append(&StreamId::new("order-1").unwrap(), ExpectedVersion::NoStream, vec![e]).await.unwrap();
/// runner.wait_for(out.position, std::time::Duration::from_secs(5)).await.unwrap();
/// assert_eq!(projection.read(|count| *count), 1);
/// # });
/// ```
pub struct MemoryProjection<H: MemoryHandler> {
    handler: Arc<H>,
    state: Arc<RwLock<Inner<H::Model>>>,
}

impl<H: MemoryHandler> Clone for MemoryProjection<H> {
    fn clone(&self) -> Self {
        Self {
            handler: Arc::clone(&self.handler),
            state: Arc::clone(&self.state),
        }
    }
}

impl<H: MemoryHandler> MemoryProjection<H> {
    /// An empty model at [`Position::START`].
    pub fn new(handler: H) -> Self {
        Self {
            handler: Arc::new(handler),
            state: Arc::new(RwLock::new(Inner {
                model: H::Model::default(),
                checkpoint: Position::START,
            })),
        }
    }

    /// Reads the model.
    pub fn read<R>(&self, f: impl FnOnce(&H::Model) -> R) -> R {
        f(&self.read_lock().model)
    }

    /// The position of the last event applied.
    pub fn position(&self) -> Position {
        self.read_lock().checkpoint
    }

    fn read_lock(&self) -> RwLockReadGuard<'_, Inner<H::Model>> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, Inner<H::Model>> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Rebuilds the model from the start of the log without downtime: a fresh model is
    /// built beside the live one (which keeps answering reads), then takes over under the
    /// lock once it has caught up. A runner on this projection is fenced by the switch
    /// and continues from the rebuilt checkpoint.
    pub async fn rebuild<S: EventReader>(
        &self,
        store: &S,
        batch_size: usize,
        mut progress: impl FnMut(&Progress) + Send,
    ) -> Result<u64, BoxError> {
        let filter = self.handler.filter();
        let mut fresh = H::Model::default();
        let mut cp = Position::START;
        let mut meter = ProgressMeter::start(store, cp, &filter)
            .await?
            .named(self.handler.name());
        loop {
            let batch = store
                .read_all(ReadAll::after(cp, batch_size).filter(filter.clone()))
                .await?;
            let Some(last) = batch.last() else { break };
            let last = last.position;
            for e in &batch {
                self.handler.handle(&mut fresh, e)?;
            }
            cp = last;
            progress(meter.advance(batch.len() as u64, cp));
        }
        // Take over once caught up, under the write lock (nothing awaits while it is
        // held). If the live model has meanwhile moved past the rebuilt checkpoint, read
        // on first, so readers never see the model go back in time.
        loop {
            let read = ReadAll::after(cp, batch_size).filter(filter.clone());
            let batch = store.read_all(read).await?;
            if let Some(last) = batch.last().map(|e| e.position) {
                for e in &batch {
                    self.handler.handle(&mut fresh, e)?;
                }
                cp = last;
                progress(meter.advance(batch.len() as u64, cp));
                continue;
            }
            let mut live = self.write_lock();
            if live.checkpoint <= cp {
                live.model = fresh;
                live.checkpoint = cp;
                break;
            }
        }
        let done = meter.finish();
        progress(&done);
        Ok(done.done)
    }
}

impl<H: MemoryHandler> Subscriber for MemoryProjection<H> {
    fn name(&self) -> &str {
        self.handler.name()
    }

    fn filter(&self) -> EventFilter {
        self.handler.filter()
    }

    async fn checkpoint(&self) -> Result<Position, BoxError> {
        Ok(self.position())
    }

    async fn apply(&self, from: Position, batch: &[RecordedEvent]) -> Result<(), ApplyError> {
        let mut inner = self.write_lock();
        expect_at(inner.checkpoint, from)?;
        for (i, e) in batch.iter().enumerate() {
            if let Err(error) = self.handler.handle(&mut inner.model, e) {
                return Err(ApplyError::Failed { applied: i, error });
            }
            inner.checkpoint = e.position;
        }
        Ok(())
    }
}
