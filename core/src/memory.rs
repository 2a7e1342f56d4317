//! The embedded in-memory store: the default, with the same semantics as every other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use tokio::sync::watch;

use crate::telemetry::AppendMetrics;
use crate::{
    AppendOutcome, EventAppender, EventFilter, EventId, EventReader, ExpectedVersion, ListStreams,
    NewEvent, Position, ReadAll, ReadStream, RecordedEvent, Snapshot, SnapshotStore, StoreError,
    StreamId, StreamInfo, Subscription, SubscriptionConfig, Version,
};

mod append;
mod catalog;
mod read;

/// An event store in process memory. Cheap to clone: clones share the same log.
///
/// Positions are `(n, n)` for the `n`-th event of the log (1-based). Appends are
/// serialized by one lock, so the log is gap-free and readers never see a partial batch.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use tessera_core::{EventAppender, EventReader, ExpectedVersion, MemoryStore, NewEvent, ReadStream, StreamId};
/// let store = MemoryStore::new();
/// let stream = StreamId::new("order-1").unwrap();
/// let placed = NewEvent::json("OrderPlaced", &serde_json::json!({"total": 3})).unwrap();
/// let out = store.append(&stream, ExpectedVersion::NoStream, vec![placed]).await.unwrap();
/// assert_eq!(out.version.0, 0);
/// assert_eq!(store.read_stream(&stream, ReadStream::forward()).await.unwrap().len(), 1);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct MemoryStore {
    shared: Arc<Shared>,
    config: SubscriptionConfig,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    appended: watch::Sender<u64>,
    snapshots: Mutex<HashMap<StreamId, Snapshot>>,
    metrics: AppendMetrics,
}

#[derive(Debug, Default)]
struct State {
    log: Vec<RecordedEvent>,
    streams: HashMap<StreamId, StreamState, foldhash::fast::RandomState>,
}

#[derive(Debug, Default)]
struct StreamState {
    /// Index in the log of each version.
    entries: Vec<usize>,
    /// Event id of each version.
    ids: Vec<EventId>,
    /// Version of each event id, built once the stream is long enough that a scan of
    /// `ids` costs more than hashing.
    by_id: Option<HashMap<EventId, Version, foldhash::fast::RandomState>>,
}

/// Streams shorter than this are searched by scanning their ids.
const SCAN_LIMIT: usize = 16;

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::with_config(SubscriptionConfig::default())
    }

    /// An empty store whose subscriptions use `config`.
    pub fn with_config(config: SubscriptionConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                appended: watch::channel(0).0,
                snapshots: Mutex::new(HashMap::new()),
                metrics: AppendMetrics::new("memory"),
            }),
            config,
        }
    }

    /// Number of events in the log.
    pub fn len(&self) -> usize {
        self.lock().log.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-written batch (appends
        // validate before mutating), so a poisoned lock is still consistent.
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn position_of(index: usize) -> Position {
    let n = index as u64 + 1;
    Position::new(n, n)
}

impl EventAppender for MemoryStore {
    fn rejects_taken_ids(&self) -> bool {
        true
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        Ok(self.append_landing(stream, expected, events).await?.0)
    }

    async fn append_landing(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<(AppendOutcome, crate::Landing), StoreError> {
        crate::check_batch(stream, &events)?;
        let (started, n) = (Instant::now(), events.len());
        let landed = {
            let mut state = self.lock();
            append::append_locked(&mut state, stream, expected, events, SystemTime::now())
        };
        self.shared.metrics.observe(started, n, &landed);
        let landed = landed?;
        self.shared.appended.send_modify(|n| *n = n.wrapping_add(1));
        Ok(landed)
    }
}

impl EventReader for MemoryStore {
    async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read::check_limit(read.limit)?;
        Ok(read::stream(&self.lock(), stream, read))
    }

    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        read::check_limit(read.limit)?;
        Ok(read::all(&self.lock(), &read))
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        Ok(self
            .lock()
            .streams
            .get(stream)
            .and_then(StreamState::current))
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        Ok(self.lock().log.last().map(|e| e.position))
    }

    async fn find_event(
        &self,
        stream: &StreamId,
        id: EventId,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        let state = self.lock();
        let Some(s) = state.streams.get(stream) else {
            return Ok(None);
        };
        Ok(s.version_of(id)
            .and_then(|v| s.index_of(v))
            .map(|i| state.log[i].clone()))
    }

    async fn count_events(
        &self,
        after: Position,
        up_to: Position,
        filter: &EventFilter,
    ) -> Result<Option<u64>, StoreError> {
        Ok(Some(read::count(&self.lock(), after, up_to, filter)))
    }

    /// Visits every stream and sorts the categories: O(streams) per page.
    async fn categories(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Option<Vec<String>>, StoreError> {
        read::check_limit(limit)?;
        Ok(Some(catalog::categories(&self.lock(), after, limit)))
    }

    /// Visits every stream and sorts the page: O(streams) per page.
    async fn streams(&self, list: ListStreams) -> Result<Option<Vec<StreamInfo>>, StoreError> {
        read::check_limit(list.limit)?;
        Ok(Some(catalog::streams(&self.lock(), &list)))
    }

    /// Scans the log from `after` until `limit` events match.
    async fn correlated(
        &self,
        correlation_id: uuid::Uuid,
        after: Position,
        limit: usize,
    ) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        read::check_limit(limit)?;
        let events = catalog::correlated(&self.lock(), correlation_id, after, limit);
        Ok(Some(events))
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> Subscription {
        let wakeup = self.shared.appended.subscribe();
        Subscription::polling(self.clone(), after, filter, Some(wakeup), self.config)
    }
}

impl SnapshotStore for MemoryStore {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let snapshots = self
            .shared
            .snapshots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(snapshots.get(stream).cloned())
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let mut snapshots = self
            .shared
            .snapshots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let newer_stored = snapshots
            .get(&snapshot.stream_id)
            .is_some_and(|s| s.version > snapshot.version);
        if !newer_stored {
            snapshots.insert(snapshot.stream_id.clone(), snapshot);
        }
        Ok(())
    }
}

impl StreamState {
    fn current(&self) -> Option<Version> {
        (self.entries.len() as u64).checked_sub(1).map(Version)
    }

    fn version_of(&self, id: EventId) -> Option<Version> {
        match &self.by_id {
            Some(map) => map.get(&id).copied(),
            None => self
                .ids
                .iter()
                .position(|x| *x == id)
                .map(|i| Version(i as u64)),
        }
    }

    fn push(&mut self, index: usize, id: EventId) {
        let version = Version(self.entries.len() as u64);
        self.entries.push(index);
        self.ids.push(id);
        if let Some(map) = &mut self.by_id {
            map.insert(id, version);
        } else if self.ids.len() > SCAN_LIMIT {
            let map = self
                .ids
                .iter()
                .enumerate()
                .map(|(v, id)| (*id, Version(v as u64)))
                .collect();
            self.by_id = Some(map);
        }
    }

    fn index_of(&self, version: Version) -> Option<usize> {
        usize::try_from(version.0)
            .ok()
            .and_then(|v| self.entries.get(v).copied())
    }
}
