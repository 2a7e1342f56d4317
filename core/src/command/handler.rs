//! The command handler: load, decide, append, retry on conflict.

use std::sync::Arc;

use tracing::Instrument;

use super::cache::{Cached, StateCache};
use super::coalesce::{Item, Queues};
use super::lanes::WriterLanes;
use super::load::load;
use super::metered::CommandMetrics;
use super::replay::{KeyScan, KeyedRuns};
use super::run::Run;
use super::snapshots::Snapshotting;
use crate::{
    Aggregate, CommandError, CommandOptions, CommandOutcome, EventStore, Loaded, RetryPolicy,
    SnapshotPolicy, SnapshotStore, StoreError, StreamId, Upcasters,
};

/// Handles commands for aggregate `A` on store `S`.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # use serde::{Deserialize, Serialize};
/// # use tessera_core::{Aggregate, DomainEvent};
/// # #[derive(Default, Serialize, Deserialize)] struct Counter { value: u64 }
/// # #[derive(Debug, PartialEq, Serialize, Deserialize)] enum Ev { Incremented { by: u64 } }
/// # impl DomainEvent for Ev {}
/// # #[derive(Debug, thiserror::Error)] #[error("overflow")] struct Overflow;
/// # impl Aggregate for Counter {
/// #     const CATEGORY: &'static str = "counter";
/// #     type Command = u64; type Event = Ev; type Error = Overflow; type Services = ();
/// #     fn apply(&mut self, e: &Ev) { let Ev::Incremented { by } = e; self.value += by; }
/// #     fn decide(&self, by: &u64, _: &()) -> Result<Vec<Ev>, Overflow> { Ok(vec![Ev::Incremented { by: *by }]) }
/// # }
/// use tessera_core::{CommandHandler, CommandOptions, MemoryStore};
/// let handler = CommandHandler::<Counter, _>::new(MemoryStore::new(), ());
/// handler.handle("c1", &5).await.unwrap();
/// let once = CommandOptions::idempotent("req-1");
/// let first = handler.handle_with("c1", &2, once.clone()).await.unwrap();
/// let again = handler.handle_with("c1", &2, once).await.unwrap();
/// assert_eq!((first.version, again.replayed), (again.version, true));
/// assert_eq!(handler.load("c1").await.unwrap().state.value, 7);
/// # });
/// ```
pub struct CommandHandler<A: Aggregate, S> {
    pub(super) store: S,
    pub(super) services: Arc<A::Services>,
    upcasters: Arc<Upcasters>,
    pub(super) retry: RetryPolicy,
    pub(super) snapshots: Option<Snapshotting>,
    pub(super) cache: Option<Arc<StateCache<A>>>,
    pub(super) lanes: Option<Arc<WriterLanes>>,
    pub(super) metrics: Arc<CommandMetrics>,
    /// Commands queued per aggregate ([`Self::with_coalescing`]).
    queues: Option<Arc<Queues<A>>>,
}

impl<A: Aggregate, S: Clone> Clone for CommandHandler<A, S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            services: Arc::clone(&self.services),
            upcasters: Arc::clone(&self.upcasters),
            retry: self.retry,
            snapshots: self.snapshots.clone(),
            cache: self.cache.clone(),
            lanes: self.lanes.clone(),
            metrics: Arc::clone(&self.metrics),
            queues: self.queues.clone(),
        }
    }
}

impl<A: Aggregate, S: EventStore> CommandHandler<A, S> {
    /// A handler over `store`, passing `services` to every decision.
    pub fn new(store: S, services: A::Services) -> Self {
        Self {
            store,
            services: Arc::new(services),
            upcasters: Arc::new(Upcasters::new()),
            retry: RetryPolicy::default(),
            snapshots: None,
            cache: None,
            lanes: Some(Arc::new(WriterLanes::new(WriterLanes::DEFAULT))),
            metrics: Arc::new(CommandMetrics::new(A::CATEGORY)),
            queues: None,
        }
    }

    /// Commands for one aggregate take turns in this process (by default, in 1,024
    /// lanes by hash of the stream id, shared by clones of this handler): instead of
    /// racing to append and retrying on version conflicts, each decides on the state the
    /// previous one left, from the state cache when there is one. `0` turns the lanes
    /// off (every command runs at once and conflicts are retried), for a handler whose
    /// aggregates are never written concurrently.
    ///
    /// Writers in other processes are unaffected: the append still expects the version
    /// decided on, and a conflict with them is retried as always.
    #[must_use]
    pub fn with_writer_lanes(mut self, lanes: usize) -> Self {
        self.lanes = (lanes > 0).then(|| Arc::new(WriterLanes::new(lanes)));
        self
    }

    /// Uses these upcasters when loading.
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = Arc::new(upcasters);
        self
    }

    /// Uses this conflict-retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Loads from and saves snapshots to `snapshots` according to `policy`.
    #[must_use]
    pub fn with_snapshots(mut self, snapshots: impl SnapshotStore, policy: SnapshotPolicy) -> Self {
        self.snapshots = Some(Snapshotting::new(Arc::new(snapshots), policy));
        self
    }

    /// Keeps the state of up to `capacity` recently used aggregates in memory between
    /// commands (shared by clones of this handler), so a command on a cached aggregate
    /// skips the read and goes straight to decide and append.
    ///
    /// Safe with other writers: the append still expects the cached version, so a state
    /// made stale by another process fails with a version conflict and the command is
    /// retried at once from the store. A refusal or a decision of no events, which has
    /// no append to catch it, is answered only after the stream's version matches the
    /// cached one (else it is decided again on the stored state). Worth it when one process handles most commands
    /// of an aggregate (the usual case when commands are routed by aggregate id);
    /// memory is `capacity` states at most, least recently used evicted first.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use serde::{Deserialize, Serialize};
    /// # use tessera_core::{Aggregate, DomainEvent};
    /// # #[derive(Default, Serialize, Deserialize)] struct Counter { value: u64 }
    /// # #[derive(Debug, PartialEq, Serialize, Deserialize)] enum Ev { Incremented { by: u64 } }
    /// # impl DomainEvent for Ev {}
    /// # #[derive(Debug, thiserror::Error)] #[error("overflow")] struct Overflow;
    /// # impl Aggregate for Counter {
    /// #     const CATEGORY: &'static str = "counter";
    /// #     type Command = u64; type Event = Ev; type Error = Overflow; type Services = ();
    /// #     fn apply(&mut self, e: &Ev) { let Ev::Incremented { by } = e; self.value += by; }
    /// #     fn decide(&self, by: &u64, _: &()) -> Result<Vec<Ev>, Overflow> { Ok(vec![Ev::Incremented { by: *by }]) }
    /// # }
    /// use tessera_core::{CommandHandler, MemoryStore};
    /// let handler = CommandHandler::<Counter, _>::new(MemoryStore::new(), ()).with_state_cache(10_000);
    /// handler.handle("c1", &5).await.unwrap(); // loads from the store, caches
    /// let outcome = handler.handle("c1", &2).await.unwrap(); // decides on the cached state
    /// assert_eq!(outcome.version.map(|v| v.0), Some(1));
    /// assert_eq!(handler.peek("c1", |c| c.value).await.unwrap(), 7); // no read either
    /// # });
    /// ```
    #[must_use]
    pub fn with_state_cache(mut self, capacity: usize) -> Self {
        self.cache = Some(Arc::new(StateCache::new(capacity)));
        self
    }

    /// The store this handler appends to.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The stream id of aggregate `id`.
    pub fn stream_id(id: &str) -> Result<StreamId, StoreError> {
        Ok(StreamId::from_parts(A::CATEGORY, id)?)
    }

    /// Loads aggregate `id`: snapshot (if any and readable) plus the events after it.
    pub async fn load(&self, id: &str) -> Result<Loaded<A>, CommandError<A::Error>> {
        let stream = Self::stream_id(id)?;
        let (loaded, _) = self.load_stream(&stream, None).await?;
        Ok(loaded)
    }

    /// Reads aggregate `id`'s state with `read`: from the state cache when it holds the
    /// aggregate (no read at all), else loaded from the store and, with a cache, kept
    /// there for later commands and reads.
    ///
    /// A cached state is as new as the last command this process handled on the
    /// aggregate: what other processes wrote since is not in it (their commands fail
    /// on it and reload; a read does not). Use [`load`](Self::load) to see every write.
    pub async fn peek<R>(
        &self,
        id: &str,
        read: impl Fn(&A) -> R,
    ) -> Result<R, CommandError<A::Error>> {
        let stream = Self::stream_id(id)?;
        if let Some(seen) = self.cache.as_ref().and_then(|c| c.read(&stream, &read)) {
            return Ok(seen);
        }
        let (loaded, _) = self.load_stream(&stream, None).await?;
        let seen = read(&loaded.state);
        if let Some(cache) = &self.cache {
            cache.offer(stream, loaded);
        }
        Ok(seen)
    }

    /// Handles `command` on aggregate `id` with default options.
    pub async fn handle(
        &self,
        id: &str,
        command: &A::Command,
    ) -> Result<CommandOutcome, CommandError<A::Error>> {
        self.handle_with(id, command, CommandOptions::default())
            .await
    }

    /// Handles `command` on aggregate `id`: load, decide, append with the loaded
    /// version; on a version conflict reload and decide again, up to the retry policy's
    /// attempts with jittered backoff. A keyed command that already ran answers its
    /// first outcome (see [`CommandOptions`]). Commands for one aggregate wait their
    /// turn in its writer lane ([`with_writer_lanes`](Self::with_writer_lanes)).
    pub async fn handle_with(
        &self,
        id: &str,
        command: &A::Command,
        options: CommandOptions,
    ) -> Result<CommandOutcome, CommandError<A::Error>> {
        let stream = Self::stream_id(id)?;
        let span = command_span::<A>(&stream, &options);
        let run = async {
            let _turn = match &self.lanes {
                Some(lanes) => Some(lanes.enter(&stream).await),
                None => None,
            };
            // The events it appends continue this span's trace.
            let mut options = options;
            crate::trace::inject(&mut options.metadata);
            let outcome = Run::new(self, stream.clone(), options)
                .handle(command)
                .await;
            self.metrics.handled(&outcome);
            tracing::Span::current()
                .record("tessera.command.outcome", super::metered::outcome(&outcome));
            outcome
        };
        run.instrument(span).await
    }

    /// Loads `stream`, showing every event read to `scan`; `true`: no snapshot was used.
    /// Lets [`handle_queued`](Self::handle_queued) decide the commands queued for one
    /// aggregate together and append their events at once: one append (one commit) per
    /// batch instead of one per command, for a hot aggregate many callers write at once.
    /// Each command still gets its own outcome: its own stream version, the position of
    /// the batch's last event (at or after its own last one, so a read model waited for
    /// with it holds its events), `KeyReused` or the first outcome for a repeated key.
    /// Batches are used on stores that [refuse taken ids](crate::EventAppender::rejects_taken_ids);
    /// elsewhere, and whenever a batch's append is refused, each command takes the
    /// one-command path.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # use serde::{Deserialize, Serialize};
    /// # use tessera_core::{Aggregate, CommandHandler, CommandOptions, DomainEvent, MemoryStore};
    /// # #[derive(Default, Serialize, Deserialize)] struct Stock { left: u32 }
    /// # #[derive(Debug, Serialize, Deserialize)] enum StockEvent { #[serde(rename = "Reserved")] Reserved }
    /// # impl DomainEvent for StockEvent {}
    /// # #[derive(Debug, thiserror::Error)] #[error("sold out")] struct SoldOut;
    /// # impl Aggregate for Stock {
    /// #     const CATEGORY: &'static str = "stock";
    /// #     type Command = ();
    /// #     type Event = StockEvent;
    /// #     type Error = SoldOut;
    /// #     type Services = ();
    /// #     fn apply(&mut self, _: &StockEvent) { self.left += 1 }
    /// #     fn decide(&self, _: &(), _: &()) -> Result<Vec<StockEvent>, SoldOut> { Ok(vec![StockEvent::Reserved]) }
    /// # }
    /// let stock = CommandHandler::<Stock, _>::new(MemoryStore::new(), ())
    ///     .with_state_cache(1000)
    ///     .with_coalescing();
    /// let orders: Vec<_> = (0..10)
    ///     .map(|n| {
    ///         let stock = stock.clone();
    ///         let key = CommandOptions::idempotent(format!("order-{n}"));
    ///         tokio::spawn(async move { stock.handle_queued("sku-1", (), key).await })
    ///     })
    ///     .collect();
    /// for order in orders {
    ///     assert!(order.await.unwrap().is_ok());
    /// }
    /// # });
    /// ```
    #[must_use]
    pub fn with_coalescing(mut self) -> Self {
        self.queues = Some(Arc::default());
        self
    }

    /// [`handle_with`](Self::handle_with) for a command the handler may hold until its
    /// aggregate's next batch ([`with_coalescing`](Self::with_coalescing)); without
    /// coalescing, the same as `handle_with`.
    pub async fn handle_queued(
        &self,
        id: &str,
        command: A::Command,
        options: CommandOptions,
    ) -> Result<CommandOutcome, CommandError<A::Error>>
    where
        A::Command: 'static,
        S: 'static,
    {
        let Some(queues) = &self.queues else {
            return self.handle_with(id, &command, options).await;
        };
        let stream = Self::stream_id(id)?;
        let (reply, outcome) = tokio::sync::oneshot::channel();
        let item = Item {
            span: command_span::<A>(&stream, &options),
            command,
            options,
            reply,
        };
        if queues.push(&stream, item) {
            // A task of its own: a caller that stops waiting does not strand the others.
            tokio::spawn(self.clone().lead(stream, Arc::clone(queues)));
        }
        outcome.await.unwrap_or_else(|_| {
            Err(CommandError::Store(StoreError::Unavailable {
                message: "the aggregate's command queue ended without an answer".into(),
                source: None,
            }))
        })
    }

    pub(super) async fn load_stream(
        &self,
        stream: &StreamId,
        scan: Option<&mut KeyScan<'_>>,
    ) -> Result<(Loaded<A>, bool), CommandError<A::Error>> {
        let snapshots = self.snapshots.as_ref();
        let loaded = load(&self.store, &self.upcasters, snapshots, stream, scan).await?;
        if snapshots.is_some() {
            self.metrics.snapshot(!loaded.1);
        }
        Ok(loaded)
    }

    /// Puts a state that is current as of its version back into the cache, if any, with
    /// the last keyed runs that landed on it.
    pub(super) fn keep(&self, stream: &StreamId, loaded: Loaded<A>, runs: KeyedRuns) {
        if let Some(cache) = &self.cache {
            cache.put(stream.clone(), Cached { loaded, runs });
        }
    }
}

/// The span of one command on `stream` (its trace continues in the events it appends).
pub(super) fn command_span<A: Aggregate>(
    stream: &StreamId,
    options: &CommandOptions,
) -> tracing::Span {
    let span = tracing::info_span!(
        "command",
        otel.name = %format_args!("command {}", A::CATEGORY),
        tessera.aggregate.category = A::CATEGORY,
        stream = %stream,
        correlation_id = tracing::field::Empty,
        causation_id = tracing::field::Empty,
        tessera.command.outcome = tracing::field::Empty,
    );
    if let Some(id) = options.metadata.correlation_id {
        span.record("correlation_id", tracing::field::display(id));
    }
    if let Some(id) = options.metadata.causation_id {
        span.record("causation_id", tracing::field::display(id));
    }
    span
}
