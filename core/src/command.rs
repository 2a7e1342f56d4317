//! Command handling: load, decide, append, retry on conflict.

use std::sync::Arc;
use std::time::SystemTime;

use tracing::Instrument;

use crate::snapshot::DynSnapshots;
use crate::{
    decode_recorded, idempotency, Aggregate, AppendOutcome, DomainEvent, EventData, EventId,
    EventStore, ExpectedVersion, Metadata, NewEvent, Position, ReadStream, Snapshot,
    SnapshotPolicy, SnapshotStore, StoreError, StreamId, Upcasters, Version,
};

mod cache;
mod error;
mod retry;

use cache::{Cached, StateCache};

pub use error::CommandError;
pub use retry::RetryPolicy;

/// Options of one command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOptions {
    /// When set, the command's events get ids derived from it, so a retry of the same
    /// command (same key, same aggregate) lands once and returns the first outcome.
    pub idempotency_key: Option<String>,
    /// Metadata put on every event the command records.
    pub metadata: Metadata,
}

impl CommandOptions {
    /// Options with an idempotency key.
    pub fn idempotent(key: impl Into<String>) -> Self {
        Self {
            idempotency_key: Some(key.into()),
            metadata: Metadata::default(),
        }
    }

    /// Sets the metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// What a handled command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    /// The aggregate's stream.
    pub stream_id: StreamId,
    /// The stream's version after the command (`None`: the stream still has no event).
    pub version: Option<Version>,
    /// Global position of the last event written; wait for read models to reach it for
    /// read-your-writes. `None` when the command recorded nothing.
    pub position: Option<Position>,
    /// How many events the command recorded.
    pub events: usize,
    /// `true` when an earlier run of the same idempotent command had already landed and
    /// this is its outcome.
    pub replayed: bool,
}

/// State loaded from a stream: snapshot plus tail.
#[derive(Debug)]
pub struct Loaded<A> {
    /// The folded state.
    pub state: A,
    /// The stream's version (`None`: no event).
    pub version: Option<Version>,
    /// Events folded on top of the snapshot (all of them, without one).
    pub events_since_snapshot: u64,
}

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
    store: S,
    services: Arc<A::Services>,
    upcasters: Arc<Upcasters>,
    retry: RetryPolicy,
    snapshots: Option<(Arc<dyn DynSnapshots>, SnapshotPolicy)>,
    cache: Option<Arc<StateCache<A>>>,
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
        }
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
        self.snapshots = Some((Arc::new(snapshots), policy));
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
        self.load_stream(&stream).await
    }

    async fn load_stream(&self, stream: &StreamId) -> Result<Loaded<A>, CommandError<A::Error>> {
        let (mut state, mut version) = self.load_snapshot(stream).await;
        let mut folded = 0u64;
        const PAGE: usize = 4096;
        loop {
            let from = version.map_or(Version::FIRST, Version::next);
            let page = self
                .store
                .read_stream(stream, ReadStream::forward().from(from).limit(PAGE))
                .await?;
            for recorded in &page {
                let event: A::Event = decode_recorded(recorded, &self.upcasters)?;
                state.apply(&event);
                version = Some(recorded.version);
                folded += 1;
            }
            if page.len() < PAGE {
                break;
            }
        }
        Ok(Loaded {
            state,
            version,
            events_since_snapshot: folded,
        })
    }

    /// A usable snapshot, or the default state. Never an error: any trouble with the
    /// snapshot falls back to the full stream.
    async fn load_snapshot(&self, stream: &StreamId) -> (A, Option<Version>) {
        let Some((snapshots, _)) = &self.snapshots else {
            return (A::default(), None);
        };
        match snapshots.load(stream).await {
            Ok(Some(s)) if s.schema_version == A::SNAPSHOT_VERSION => match s.data.decode::<A>() {
                Ok(state) => return (state, Some(s.version)),
                Err(e) => tracing::warn!(%stream, error = %e, "unreadable snapshot ignored"),
            },
            Ok(Some(s)) => tracing::debug!(
                %stream, stored = s.schema_version, "snapshot of another state version ignored"
            ),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%stream, error = %e, "snapshot load failed; reading the full stream")
            }
        }
        (A::default(), None)
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
    /// attempts with jittered backoff.
    pub async fn handle_with(
        &self,
        id: &str,
        command: &A::Command,
        options: CommandOptions,
    ) -> Result<CommandOutcome, CommandError<A::Error>> {
        let stream = Self::stream_id(id)?;
        let span = tracing::debug_span!(
            "command",
            stream = %stream,
            correlation_id = tracing::field::debug(options.metadata.correlation_id),
            causation_id = tracing::field::debug(options.metadata.causation_id),
        );
        self.run(stream, command, options).instrument(span).await
    }

    async fn run(
        &self,
        stream: StreamId,
        command: &A::Command,
        options: CommandOptions,
    ) -> Result<CommandOutcome, CommandError<A::Error>> {
        let key = options.idempotency_key.as_deref();
        let mut attempt = 1;
        let mut replays = 0;
        loop {
            let (mut loaded, from_cache) = match self.cache.as_ref().and_then(|c| c.take(&stream)) {
                Some(cached) => (cached, true),
                None => (self.load_cached(&stream).await?, false),
            };
            // After the load, not before: a run of the same command landing between the
            // two is then either found here or makes the append's expected version
            // stale, where the store's idempotency rules answer it. Checked before the
            // load, it could land unseen and this run append the same ids again after it
            // (a store that checks ids only against a stale expected version takes them).
            if let Some(key) = key {
                if let Some(outcome) = self.replay(&stream, key).await? {
                    return Ok(outcome);
                }
            }
            let decision = loaded.state.decide(command, &self.services);
            // A refusal or a no-op writes nothing, so no expected version would catch a
            // cached state another writer made stale: check the stream's version before
            // answering from it (one cheap read, only on these paths).
            let answers_without_append = decision.as_ref().map_or(true, Vec::is_empty);
            if from_cache
                && answers_without_append
                && self.store.stream_version(&stream).await? != loaded.version
            {
                tracing::debug!("cached state was stale; reloading before answering");
                continue;
            }
            let events = match decision {
                Ok(events) => events,
                Err(rejected) => {
                    self.keep(&stream, loaded);
                    return Err(CommandError::Rejected(rejected));
                }
            };
            if events.is_empty() {
                let version = loaded.version;
                self.keep(&stream, loaded);
                return Ok(CommandOutcome {
                    stream_id: stream,
                    version,
                    position: None,
                    events: 0,
                    replayed: false,
                });
            }
            let new_events = encode_all(&stream, &events, key, &options.metadata)?;
            let expected = ExpectedVersion::from_current(loaded.version);
            match self
                .append_retrying_unknown(&stream, expected, new_events)
                .await
            {
                Ok(written) => {
                    for event in &events {
                        loaded.state.apply(event);
                    }
                    loaded.since_snapshot += events.len() as u64;
                    loaded.version = Some(written.version);
                    if self
                        .maybe_snapshot(
                            &stream,
                            &loaded.state,
                            written.version,
                            loaded.since_snapshot,
                        )
                        .await
                    {
                        loaded.since_snapshot = 0;
                    }
                    self.keep(&stream, loaded);
                    return Ok(CommandOutcome {
                        stream_id: stream,
                        version: Some(written.version),
                        position: Some(written.position),
                        events: events.len(),
                        replayed: false,
                    });
                }
                // Another run of the same idempotent command landed first: replay it
                // (bounded: ids that collide without a replayable first event would
                // otherwise loop).
                Err(StoreError::DuplicateEventId { .. }) if key.is_some() && replays < 3 => {
                    replays += 1;
                }
                // The cached state was stale (another process appended): reload at once;
                // this is not contention, so it neither waits nor counts as an attempt.
                Err(e) if e.is_conflict() && from_cache => {
                    tracing::debug!(error = %e, "cached state was stale; reloading");
                    continue;
                }
                Err(e) if e.is_conflict() && attempt < self.retry.max_attempts => {
                    tracing::debug!(attempt, error = %e, "version conflict; reloading");
                    tokio::time::sleep(self.retry.delay(attempt)).await;
                }
                Err(e) if e.is_conflict() => {
                    return Err(CommandError::Conflict {
                        stream,
                        attempts: attempt,
                        source: e,
                    })
                }
                Err(e) => return Err(e.into()),
            }
            attempt += 1;
        }
    }

    /// Appends; when the outcome is unknown (connection lost) retries the very same
    /// batch, which the store's idempotency rules land exactly once.
    async fn append_retrying_unknown(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let mut tries = 1;
        loop {
            match self.store.append(stream, expected, events.clone()).await {
                Err(e) if e.is_transient() && tries < self.retry.max_attempts => {
                    tracing::warn!(error = %e, tries, "append outcome unknown; retrying the same events");
                    tokio::time::sleep(self.retry.delay(tries)).await;
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    /// The first outcome of the idempotent command `key`, if it already landed.
    async fn replay(
        &self,
        stream: &StreamId,
        key: &str,
    ) -> Result<Option<CommandOutcome>, CommandError<A::Error>> {
        let first_id = idempotency::command_event_id(stream, key, 0);
        let Some(first) = self.store.find_event(stream, first_id).await? else {
            return Ok(None);
        };
        let mut last = first.clone();
        let mut count = 1usize;
        'pages: loop {
            let page = self
                .store
                .read_stream(
                    stream,
                    ReadStream::forward().from(last.version.next()).limit(256),
                )
                .await?;
            let full = page.len() == 256;
            for e in page {
                if e.id != idempotency::command_event_id(stream, key, count) {
                    break 'pages;
                }
                count += 1;
                last = e;
            }
            if !full {
                break;
            }
        }
        Ok(Some(CommandOutcome {
            stream_id: stream.clone(),
            version: Some(last.version),
            position: Some(last.position),
            events: count,
            replayed: true,
        }))
    }

    /// Saves a snapshot if the policy says one is due; `true` if one was saved.
    async fn maybe_snapshot(
        &self,
        stream: &StreamId,
        state: &A,
        version: Version,
        since: u64,
    ) -> bool {
        let Some((snapshots, policy)) = &self.snapshots else {
            return false;
        };
        if !policy.is_due(since) {
            return false;
        }
        let data = match EventData::to_json(state) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(%stream, error = %e, "state not serializable; no snapshot");
                return false;
            }
        };
        let snapshot = Snapshot {
            stream_id: stream.clone(),
            version,
            schema_version: A::SNAPSHOT_VERSION,
            data,
            taken_at: SystemTime::now(),
        };
        match snapshots.save(snapshot).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(%stream, error = %e, "snapshot save failed; commands still work");
                false
            }
        }
    }

    /// Loads `stream` from the store into the shape the cache keeps.
    async fn load_cached(&self, stream: &StreamId) -> Result<Cached<A>, CommandError<A::Error>> {
        let loaded = self.load_stream(stream).await?;
        Ok(Cached {
            state: loaded.state,
            version: loaded.version,
            since_snapshot: loaded.events_since_snapshot,
        })
    }

    /// Puts a state that is current as of its version back into the cache, if any.
    fn keep(&self, stream: &StreamId, loaded: Cached<A>) {
        if let Some(cache) = &self.cache {
            cache.put(stream.clone(), loaded);
        }
    }
}

fn encode_all<E: DomainEvent, X: std::error::Error + Send + Sync + 'static>(
    stream: &StreamId,
    events: &[E],
    key: Option<&str>,
    metadata: &Metadata,
) -> Result<Vec<NewEvent>, CommandError<X>> {
    events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let (event_type, data) = event.encode()?;
            let id = key.map_or_else(EventId::random, |k| {
                idempotency::command_event_id(stream, k, i)
            });
            Ok(NewEvent {
                id,
                event_type: event_type.to_owned(),
                schema_version: E::schema_version(event_type),
                data,
                metadata: metadata.clone(),
            })
        })
        .collect()
}
