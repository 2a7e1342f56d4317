//! The event store contract: appending, reading, subscribing.

use std::future::Future;

use crate::{
    EventFilter, ExpectedVersion, ListStreams, NewEvent, Position, RecordedEvent, StoreError,
    StreamId, StreamInfo, Subscription, Version,
};

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Version of the first event written (or found, for an idempotent repeat).
    pub first_version: Version,
    /// Version of the last event: the stream's version right after this append.
    pub version: Version,
    /// Global position of the last event.
    pub position: Position,
}

/// How far the log readers can see trails what has committed.
///
/// On PostgreSQL readers only see events of transactions older than every running one
/// (that is what makes the log gap-free), so one long-open transaction holds back
/// everything that committed after it started; this is that delay. Stores whose readers
/// see every commit at once report [`ReaderLag::default`] (nothing behind).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ReaderLag {
    /// Committed events readers cannot see yet.
    pub events_behind: u64,
    /// The newest committed position, when it is not yet visible to readers.
    pub newest_committed: Option<Position>,
    /// How long the oldest open transaction (the one holding readers back) has been
    /// running, when the store can tell.
    pub oldest_open_transaction: Option<std::time::Duration>,
}

/// Reading direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Oldest first.
    #[default]
    Forward,
    /// Newest first.
    Backward,
}

/// A read of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadStream {
    /// Forward or backward.
    pub direction: Direction,
    /// First version to return (inclusive). `None`: the first (forward) or last
    /// (backward) event of the stream.
    pub from: Option<Version>,
    /// The most events to return (at least 1).
    pub limit: usize,
}

impl ReadStream {
    /// Every event, oldest first.
    pub fn forward() -> Self {
        Self {
            direction: Direction::Forward,
            from: None,
            limit: usize::MAX,
        }
    }

    /// Every event, newest first.
    pub fn backward() -> Self {
        Self {
            direction: Direction::Backward,
            from: None,
            limit: usize::MAX,
        }
    }

    /// Starts at `version` (inclusive).
    #[must_use]
    pub fn from(mut self, version: Version) -> Self {
        self.from = Some(version);
        self
    }

    /// Returns at most `limit` events.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
}

/// A read of the global log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadAll {
    /// Return events strictly after this position.
    pub after: Position,
    /// The most events to return (at least 1).
    pub limit: usize,
    /// Which events to return.
    pub filter: EventFilter,
}

impl ReadAll {
    /// Up to `limit` events of any kind after `after`.
    pub fn after(after: Position, limit: usize) -> Self {
        Self {
            after,
            limit,
            filter: EventFilter::all(),
        }
    }

    /// Keeps only the events that pass `filter`.
    #[must_use]
    pub fn filter(mut self, filter: EventFilter) -> Self {
        self.filter = filter;
        self
    }
}

/// Events read per page by the default [`EventReader::last_of_types`].
const LOOK_BACK_PAGE: usize = 64;

/// [`EventReader::last_of_types`] of one stream, reading it backwards.
async fn last_of_types_backwards<R: EventReader>(
    reader: &R,
    stream: &StreamId,
    before: Version,
    types: &[String],
) -> Result<Option<Version>, StoreError> {
    let mut below = before.0;
    while below > 0 {
        let read = ReadStream::backward()
            .from(Version(below - 1))
            .limit(LOOK_BACK_PAGE);
        let page = reader.read_stream(stream, read).await?;
        if let Some(found) = page.iter().find(|e| types.contains(&e.event_type)) {
            return Ok(Some(found.version));
        }
        match page.last() {
            Some(oldest) if oldest.version.0 < below => below = oldest.version.0,
            _ => break,
        }
    }
    Ok(None)
}

/// Reading half of the contract: what projections and other readers need.
///
/// Every reader sees the global log **gap-free**: once it has seen position `p` it
/// never later receives an event with a lower position, and it never misses one.
pub trait EventReader: Clone + Send + Sync + 'static {
    /// Events of one stream, in the requested direction, at most `read.limit`. A stream
    /// that does not exist reads as empty.
    fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Events of the global log after `read.after` that pass its filter, in position
    /// order, at most `read.limit`. Only events every reader can already see are
    /// returned, so a later call never returns a lower position.
    fn read_all(
        &self,
        read: ReadAll,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// The stream's current version (`None` when it holds no event).
    fn stream_version(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Option<Version>, StoreError>> + Send;

    /// The position of the newest event readers can see (`None` for an empty log).
    fn head(&self) -> impl Future<Output = Result<Option<Position>, StoreError>> + Send;

    /// The event with id `id` in `stream`, if stored.
    fn find_event(
        &self,
        stream: &StreamId,
        id: crate::EventId,
    ) -> impl Future<Output = Result<Option<RecordedEvent>, StoreError>> + Send;

    /// Catch-up subscription: every event after `after` that passes `filter`, then new
    /// ones as they are appended, each exactly once and in position order.
    fn subscribe(&self, after: Position, filter: EventFilter) -> Subscription;

    /// For each `(stream, before)` of `queries`: the version of the stream's last event
    /// below version `before` whose type is one of `types` (`None`: there is none, or no
    /// stream). An outbox relay asks it for the previous public event of the streams of
    /// a batch. The default reads each stream backwards, a page at a time; a store with
    /// a round trip per read answers them all in one.
    fn last_of_types(
        &self,
        queries: &[(StreamId, Version)],
        types: &[String],
    ) -> impl Future<Output = Result<Vec<Option<Version>>, StoreError>> + Send {
        async move {
            let mut found = Vec::with_capacity(queries.len());
            for (stream, before) in queries {
                found.push(last_of_types_backwards(self, stream, *before, types).await?);
            }
            Ok(found)
        }
    }

    /// How many events after `after` and at or before `up_to` pass `filter`, counted
    /// without reading them: as many as pages of [`read_all`](Self::read_all) from
    /// `after` return up to `up_to`, for an `up_to` readers can see (at or before
    /// [`head`](Self::head)). Meant for progress figures (a rebuild's total), so a store
    /// answers only when it can count cheaply; `None`, the default, says it cannot, and
    /// the caller estimates from positions.
    fn count_events(
        &self,
        after: Position,
        up_to: Position,
        filter: &EventFilter,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send {
        let _ = (after, up_to, filter);
        std::future::ready(Ok(None))
    }

    /// How far what readers can see trails what has committed (see [`ReaderLag`]). The
    /// default, for stores whose readers see every commit at once, is nothing behind.
    fn reader_lag(&self) -> impl Future<Output = Result<ReaderLag, StoreError>> + Send {
        std::future::ready(Ok(ReaderLag::default()))
    }

    /// The categories holding at least one event (a category is the part of a stream id
    /// before the first `-`, see [`StreamId::category`]), in byte order, strictly after
    /// `after` (`None`: from the first), at most `limit`: an operator's browsing, one
    /// page at a time, without reading the log.
    ///
    /// A category whose events readers cannot see yet (on PostgreSQL, committed behind
    /// an older open transaction) may already be listed. `Ok(None)`, the default: this
    /// store cannot list categories. A `limit` of 0 is [`StoreError::InvalidInput`].
    fn categories(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Option<Vec<String>>, StoreError>> + Send {
        let _ = (after, limit);
        std::future::ready(Ok(None))
    }

    /// The streams holding at least one event, every one or one category's, in byte
    /// order of their ids, strictly after `list.after`, at most `list.limit`, each with
    /// its current version (see [`ListStreams`]).
    ///
    /// A stream is listed with the version of its newest committed event, which readers
    /// of the global log may not see yet (on PostgreSQL, committed behind an older open
    /// transaction); [`read_stream`](Self::read_stream) returns it. `Ok(None)`, the
    /// default: this store cannot list streams. A limit of 0 is
    /// [`StoreError::InvalidInput`].
    fn streams(
        &self,
        list: ListStreams,
    ) -> impl Future<Output = Result<Option<Vec<StreamInfo>>, StoreError>> + Send {
        let _ = list;
        std::future::ready(Ok(None))
    }

    /// The events whose [metadata](crate::Metadata) correlation id is `correlation_id`,
    /// in position order, strictly after `after`, at most `limit`: everything one
    /// request caused, followed page by page (pass the last position returned).
    ///
    /// As with [`read_all`](Self::read_all), only events every reader can already see
    /// are returned. Meant for an operator's occasional lookup: a store may find them by
    /// scanning the log after `after`. `Ok(None)`, the default: this store cannot
    /// search by correlation. A `limit` of 0 is [`StoreError::InvalidInput`].
    fn correlated(
        &self,
        correlation_id: uuid::Uuid,
        after: Position,
        limit: usize,
    ) -> impl Future<Output = Result<Option<Vec<RecordedEvent>>, StoreError>> + Send {
        let _ = (correlation_id, after, limit);
        std::future::ready(Ok(None))
    }
}

/// Writing half of the contract.
pub trait EventAppender: Clone + Send + Sync + 'static {
    /// Appends `events` to `stream` atomically: all are written or none.
    ///
    /// Idempotency is keyed by event id within the stream:
    /// - expectation met and no id already stored: the events are appended;
    /// - every id of the batch already stored, consecutively and in order, where the
    ///   expectation says they go (or anywhere, for `Any`/`StreamExists`): success,
    ///   nothing written, the original versions and position returned;
    /// - otherwise [`StoreError::WrongExpectedVersion`] (expectation not met) or
    ///   [`StoreError::DuplicateEventId`] (expectation met but an id is taken).
    ///
    /// An append that failed with [`StoreError::Unavailable`] has an unknown outcome;
    /// retrying it with the same event ids lands it exactly once.
    fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendOutcome, StoreError>> + Send;

    /// [`append`](Self::append), also saying whether the events were written or found
    /// already stored (an idempotent repeat). The default cannot tell
    /// ([`Landing::Unknown`]).
    fn append_landing(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<(AppendOutcome, Landing), StoreError>> + Send {
        async move {
            let outcome = self.append(stream, expected, events).await?;
            Ok((outcome, Landing::Unknown))
        }
    }

    /// Whether this store answers [`StoreError::DuplicateEventId`] for an id already
    /// stored anywhere in the stream whatever the expected version, as the rules above
    /// say, and tells a repeat from a write in [`append_landing`](Self::append_landing)
    /// (never [`Landing::Unknown`]: a store returning `true` must implement both).
    /// A command handler then skips looking for an earlier run of a keyed command
    /// before appending (the append finds it, or lands as a repeat). `false` (the
    /// default) for a store that checks ids only where the expectation puts them.
    fn rejects_taken_ids(&self) -> bool {
        false
    }
}

/// How a successful append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landing {
    /// Its events were written.
    Written,
    /// Its events were already stored where the expectation puts them: nothing was
    /// written, the original outcome was returned.
    Repeat,
    /// The store does not say.
    Unknown,
}

/// Rejects what is wrong with a batch whatever the stream holds: no event
/// ([`StoreError::EmptyAppend`]) or an event id twice ([`StoreError::DuplicateIdInBatch`]).
/// Every store calls it before touching its backend.
///
/// ```
/// use tessera_core::{check_batch, NewEvent, StoreError, StreamId};
/// let stream = StreamId::new("order-1").unwrap();
/// assert!(matches!(check_batch(&stream, &[]), Err(StoreError::EmptyAppend { .. })));
/// let e = NewEvent::json("A", &serde_json::json!({})).unwrap();
/// assert!(matches!(check_batch(&stream, &[e.clone(), e]), Err(StoreError::DuplicateIdInBatch { .. })));
/// ```
pub fn check_batch(stream: &StreamId, events: &[NewEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Err(StoreError::EmptyAppend {
            stream: stream.clone(),
        });
    }
    if events.len() > 1 {
        let mut seen = std::collections::HashSet::with_capacity(events.len());
        if let Some(e) = events.iter().find(|e| !seen.insert(e.id)) {
            return Err(StoreError::DuplicateIdInBatch {
                stream: stream.clone(),
                event_id: e.id,
            });
        }
    }
    Ok(())
}

/// A full event store: reader and appender.
pub trait EventStore: EventReader + EventAppender {}

impl<T: EventReader + EventAppender> EventStore for T {}
