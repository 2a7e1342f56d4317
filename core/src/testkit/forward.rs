//! Store wrappers for tests that write out only what they change.
//!
//! A test double that fails sometimes, counts calls or stages a race wraps a real
//! store and forwards every other call to it. Implementing [`Forward`] makes the
//! wrapper an [`EventReader`] and an [`EventAppender`] (and a [`SnapshotStore`] when its
//! inner store keeps snapshots) whose calls go to the inner store, except the methods
//! it overrides and the calls its [`Forward::before`] stops.

use std::future::Future;

use crate::{
    AppendOutcome, EventAppender, EventFilter, EventId, EventReader, EventStore, ExpectedVersion,
    ListStreams, NewEvent, Position, ReadAll, ReadStream, ReaderLag, RecordedEvent, Snapshot,
    SnapshotStore, StoreError, StreamId, StreamInfo, Subscription, Version,
};

/// The store method a [`Forward`] wrapper is about to run, as [`Forward::before`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Call {
    /// [`EventReader::read_stream`].
    ReadStream,
    /// [`EventReader::read_all`].
    ReadAll,
    /// [`EventReader::stream_version`].
    StreamVersion,
    /// [`EventReader::head`].
    Head,
    /// [`EventReader::find_event`].
    FindEvent,
    /// [`EventReader::count_events`].
    CountEvents,
    /// [`EventReader::reader_lag`].
    ReaderLag,
    /// [`EventReader::categories`].
    Categories,
    /// [`EventReader::streams`].
    Streams,
    /// [`EventReader::correlated`].
    Correlated,
    /// [`EventAppender::append`].
    Append,
    /// [`SnapshotStore::load_snapshot`].
    LoadSnapshot,
    /// [`SnapshotStore::save_snapshot`].
    SaveSnapshot,
}

/// A store that forwards every call to [`inner`](Forward::inner) but what it changes.
///
/// Each store method is here with a body that runs [`before`](Forward::before) and
/// then the inner store's method. Override [`before`](Forward::before) for what goes
/// ahead of several calls (a switch that fails them, a counter), and a method for
/// anything else; an overriding method replaces the whole call, `before` included.
///
/// The wrapper's store methods are reached through [`EventReader`], [`EventAppender`]
/// and [`SnapshotStore`] as for any store, and through this trait the same way; where
/// both traits are imported, a call on the wrapper names one (`EventReader::head(&w)`).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
///
/// use tessera_core::testkit::{Call, Forward};
/// use tessera_core::{
///     EventAppender, EventReader, ExpectedVersion, MemoryStore, NewEvent, Position, StoreError,
///     StreamId,
/// };
///
/// /// Counts appends and hides the log's head; the rest is the memory store's.
/// #[derive(Clone, Default)]
/// struct Counting {
///     inner: MemoryStore,
///     appends: Arc<AtomicU32>,
/// }
///
/// impl Forward for Counting {
///     type Inner = MemoryStore;
///     fn inner(&self) -> &MemoryStore {
///         &self.inner
///     }
///     fn before(&self, call: Call) -> Result<(), StoreError> {
///         if call == Call::Append {
///             self.appends.fetch_add(1, Ordering::SeqCst);
///         }
///         Ok(())
///     }
///     async fn head(&self) -> Result<Option<Position>, StoreError> {
///         Ok(None)
///     }
/// }
///
/// let store = Counting::default();
/// let stream = StreamId::new("order-1").unwrap();
/// let event = NewEvent::json("Placed", &serde_json::json!({})).unwrap();
/// EventAppender::append(&store, &stream, ExpectedVersion::NoStream, vec![event])
///     .await
///     .unwrap();
/// assert_eq!(store.appends.load(Ordering::SeqCst), 1);
/// assert_eq!(EventReader::head(&store).await.unwrap(), None);
/// assert!(store.inner.head().await.unwrap().is_some());
/// # });
/// ```
pub trait Forward: Clone + Send + Sync + 'static {
    /// The wrapped store's type.
    type Inner: EventStore;

    /// The wrapped store, where calls go.
    fn inner(&self) -> &Self::Inner;

    /// Runs first in every forwarded call but [`subscribe`](Forward::subscribe), which
    /// has no error to return; an error is returned in place of the call. Does nothing
    /// unless overridden.
    fn before(&self, call: Call) -> Result<(), StoreError> {
        let _ = call;
        Ok(())
    }

    /// [`EventReader::read_stream`].
    fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send {
        async move {
            self.before(Call::ReadStream)?;
            self.inner().read_stream(stream, read).await
        }
    }

    /// [`EventReader::read_all`].
    fn read_all(
        &self,
        read: ReadAll,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send {
        async move {
            self.before(Call::ReadAll)?;
            self.inner().read_all(read).await
        }
    }

    /// [`EventReader::stream_version`].
    fn stream_version(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Option<Version>, StoreError>> + Send {
        async move {
            self.before(Call::StreamVersion)?;
            self.inner().stream_version(stream).await
        }
    }

    /// [`EventReader::head`].
    fn head(&self) -> impl Future<Output = Result<Option<Position>, StoreError>> + Send {
        async move {
            self.before(Call::Head)?;
            self.inner().head().await
        }
    }

    /// [`EventReader::find_event`].
    fn find_event(
        &self,
        stream: &StreamId,
        id: EventId,
    ) -> impl Future<Output = Result<Option<RecordedEvent>, StoreError>> + Send {
        async move {
            self.before(Call::FindEvent)?;
            self.inner().find_event(stream, id).await
        }
    }

    /// [`EventReader::subscribe`].
    fn subscribe(&self, after: Position, filter: EventFilter) -> Subscription {
        self.inner().subscribe(after, filter)
    }

    /// [`EventReader::count_events`].
    fn count_events(
        &self,
        after: Position,
        up_to: Position,
        filter: &EventFilter,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send {
        async move {
            self.before(Call::CountEvents)?;
            self.inner().count_events(after, up_to, filter).await
        }
    }

    /// [`EventReader::reader_lag`].
    fn reader_lag(&self) -> impl Future<Output = Result<ReaderLag, StoreError>> + Send {
        async move {
            self.before(Call::ReaderLag)?;
            self.inner().reader_lag().await
        }
    }

    /// [`EventReader::categories`].
    fn categories(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Option<Vec<String>>, StoreError>> + Send {
        async move {
            self.before(Call::Categories)?;
            self.inner().categories(after, limit).await
        }
    }

    /// [`EventReader::streams`].
    fn streams(
        &self,
        list: ListStreams,
    ) -> impl Future<Output = Result<Option<Vec<StreamInfo>>, StoreError>> + Send {
        async move {
            self.before(Call::Streams)?;
            self.inner().streams(list).await
        }
    }

    /// [`EventReader::correlated`].
    fn correlated(
        &self,
        correlation_id: uuid::Uuid,
        after: Position,
        limit: usize,
    ) -> impl Future<Output = Result<Option<Vec<RecordedEvent>>, StoreError>> + Send {
        async move {
            self.before(Call::Correlated)?;
            self.inner().correlated(correlation_id, after, limit).await
        }
    }

    /// [`EventAppender::append`].
    fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendOutcome, StoreError>> + Send {
        async move {
            self.before(Call::Append)?;
            self.inner().append(stream, expected, events).await
        }
    }

    /// [`SnapshotStore::load_snapshot`], when the inner store keeps snapshots.
    fn load_snapshot(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send
    where
        Self::Inner: SnapshotStore,
    {
        async move {
            self.before(Call::LoadSnapshot)?;
            self.inner().load_snapshot(stream).await
        }
    }

    /// [`SnapshotStore::save_snapshot`], when the inner store keeps snapshots.
    fn save_snapshot(
        &self,
        snapshot: Snapshot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send
    where
        Self::Inner: SnapshotStore,
    {
        async move {
            self.before(Call::SaveSnapshot)?;
            self.inner().save_snapshot(snapshot).await
        }
    }
}

impl<W: Forward> EventReader for W {
    async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Forward::read_stream(self, stream, read).await
    }

    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        Forward::read_all(self, read).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        Forward::stream_version(self, stream).await
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        Forward::head(self).await
    }

    async fn find_event(
        &self,
        stream: &StreamId,
        id: EventId,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        Forward::find_event(self, stream, id).await
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> Subscription {
        Forward::subscribe(self, after, filter)
    }

    async fn count_events(
        &self,
        after: Position,
        up_to: Position,
        filter: &EventFilter,
    ) -> Result<Option<u64>, StoreError> {
        Forward::count_events(self, after, up_to, filter).await
    }

    async fn reader_lag(&self) -> Result<ReaderLag, StoreError> {
        Forward::reader_lag(self).await
    }

    async fn categories(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Option<Vec<String>>, StoreError> {
        Forward::categories(self, after, limit).await
    }

    async fn streams(&self, list: ListStreams) -> Result<Option<Vec<StreamInfo>>, StoreError> {
        Forward::streams(self, list).await
    }

    async fn correlated(
        &self,
        correlation_id: uuid::Uuid,
        after: Position,
        limit: usize,
    ) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        Forward::correlated(self, correlation_id, after, limit).await
    }
}

// `rejects_taken_ids` stays `false` (the default): a wrapper's `append` may do anything
// before or instead of the inner store's, so it cannot say how an append landed, and
// command handlers look for an earlier run of a key before appending, as they always
// did.
impl<W: Forward> EventAppender for W {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        Forward::append(self, stream, expected, events).await
    }
}

impl<W: Forward> SnapshotStore for W
where
    W::Inner: SnapshotStore,
{
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        Forward::load_snapshot(self, stream).await
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        Forward::save_snapshot(self, snapshot).await
    }
}
