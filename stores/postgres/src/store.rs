//! The store handle and its event-store contract.

use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Instant;

use deadpool_postgres::Pool;
use tessera_core::telemetry::AppendMetrics;
use tessera_core::{
    AppendOutcome, EventAppender, EventFilter, EventId, EventReader, ExpectedVersion, Landing,
    ListStreams, NewEvent, Position, ReadAll, ReadStream, ReaderLag, RecordedEvent, StoreError,
    StreamId, StreamInfo, Subscription, SubscriptionConfig, Version,
};
use tokio::sync::{oneshot, watch};
use tracing::Instrument;

use crate::append::{Append, Committer, Job};
use crate::builder::{Builder, Source};
use crate::sql::Sql;
use crate::{listen, SchemaName};

/// A PostgreSQL event store. Cheap to clone: clones share the pool, the group-commit
/// writer and the LISTEN connection. Build one with [`PostgresStore::builder`] or
/// [`PostgresStore::from_pool`].
#[derive(Clone, Debug)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    pub(crate) sql: Arc<Sql>,
    pub(crate) schema: SchemaName,
    /// Where the database is, for error messages.
    pub(crate) endpoint: Arc<str>,
    pub(crate) committer: Arc<Committer>,
    pub(crate) appended: watch::Sender<u64>,
    /// The LISTEN connection, its own or shared (none: subscriptions only poll).
    pub(crate) listen: Option<Arc<listen::Listener>>,
    /// This store object's `NOTIFY` payload: its listener ignores its own hints (its
    /// writers wake its subscribers directly).
    pub(crate) token: String,
    /// This store's place on it, from its first subscription on.
    pub(crate) listener: OnceLock<listen::Registration>,
    pub(crate) subscription: SubscriptionConfig,
    /// The re-check of events hidden behind an open transaction, shared by every
    /// subscription of this store.
    pub(crate) recheck: Arc<crate::subscribe::Recheck>,
    /// The log's reader shared by this store's subscriptions.
    pub(crate) tail: Arc<crate::tail::Tail>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.tail.abort();
    }
}

impl PostgresStore {
    pub(crate) fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Settings for a store at `url` (`postgres://user@host:port/db`, or key=value form;
    /// `sslmode` and `sslrootcert` as in [`tls`](crate::tls)).
    pub fn builder(url: impl Into<String>) -> Builder {
        Builder::new(Source::Url(url.into()))
    }

    /// Settings for a store on an existing pool. Subscriptions only poll unless
    /// [`Builder::listen_config`] says how to open the LISTEN connection.
    pub fn from_pool(pool: Pool) -> Builder {
        Builder::new(Source::Pool { pool, listen: None })
    }

    /// Connects to `url` with the default settings (schema `tessera`) and migrates.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).build().await
    }

    /// The schema holding this store's tables.
    pub fn schema(&self) -> &SchemaName {
        &self.inner.schema
    }

    /// The connection pool (for read models that share the database).
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// How many times this store's subscriptions have been woken so far (by its own
    /// commits, other stores' notifications, re-checks and reconnects): for tests that
    /// count wake-ups.
    #[doc(hidden)]
    pub fn wakeups(&self) -> u64 {
        *self.inner.appended.borrow()
    }

    /// How many of [`wakeups`](Self::wakeups) were re-checks of events hidden behind a
    /// transaction not yet committed: for tests that count wake-ups by cause.
    #[doc(hidden)]
    pub fn recheck_wakeups(&self) -> u64 {
        self.inner.recheck.sent()
    }

    fn wakeup(&self) -> watch::Receiver<u64> {
        let inner = &self.inner;
        if let Some(listener) = &inner.listen {
            inner.listener.get_or_init(|| {
                listener.register(
                    (inner.schema.channel(), inner.token.clone()),
                    inner.appended.clone(),
                )
            });
        }
        inner.appended.subscribe()
    }

    /// Measures the [`ReaderLag`] now (the store's [`EventReader::reader_lag`] runs
    /// this, so a projection runner reports the delay in its status): one round trip,
    /// in a read-only transaction of its own with JIT off (its count's estimate would
    /// otherwise JIT-compile the plan on a log of a few million events).
    ///
    /// ```no_run
    /// # async fn f(store: tessera_postgres::PostgresStore) -> Result<(), tessera_core::StoreError> {
    /// let lag = store.reader_lag().await?;
    /// if lag.events_behind > 0 {
    ///     println!("{} events wait behind a transaction open for {:?}", lag.events_behind, lag.oldest_open_transaction);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn reader_lag(&self) -> Result<ReaderLag, StoreError> {
        crate::lag::measure(&self.inner).await
    }
}

/// The append metrics of every PostgreSQL store (`store` = `postgres`).
static APPEND_METRICS: LazyLock<AppendMetrics> = LazyLock::new(|| AppendMetrics::new("postgres"));

impl EventAppender for PostgresStore {
    /// `true`: the events table's unique (stream, event id) refuses a taken id.
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
    ) -> Result<(AppendOutcome, Landing), StoreError> {
        let span = tracing::info_span!(
            "append",
            otel.name = "append",
            otel.kind = "client",
            db.system.name = "postgresql",
            db.operation.name = "append",
            db.namespace = %self.inner.schema,
            stream = %stream,
            expected = %expected,
            events = events.len(),
            tessera.append.group_size = tracing::field::Empty,
        );
        async {
            tessera_core::check_batch(stream, &events)?;
            let (started, n) = (Instant::now(), events.len());
            let append = Append::new(stream.clone(), expected, events)?;
            let (reply, outcome) = oneshot::channel();
            let outcome = self
                .inner
                .committer
                .append(Job::new(append, reply), outcome)
                .await;
            APPEND_METRICS.observe(started, n, &outcome);
            outcome
        }
        .instrument(span)
        .await
    }
}

impl EventReader for PostgresStore {
    async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let span = tracing::debug_span!("read_stream", stream = %stream, direction = ?read.direction, limit = read.limit);
        self.inner.read_stream(stream, read).instrument(span).await
    }

    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        let span = tracing::debug_span!("read_all", after = %read.after, limit = read.limit, filter = ?read.filter);
        self.inner.read_all(&read).instrument(span).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        self.inner.stream_version(stream).await
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.inner.head().await
    }

    async fn find_event(
        &self,
        stream: &StreamId,
        id: EventId,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        self.inner.find_event(stream, id).await
    }

    /// One statement for every stream (`sql/last_of_types.sql`).
    async fn last_of_types(
        &self,
        queries: &[(StreamId, Version)],
        types: &[String],
    ) -> Result<Vec<Option<Version>>, StoreError> {
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let streams: Vec<&str> = queries.iter().map(|(s, _)| s.as_str()).collect();
        let below: Vec<i64> = queries
            .iter()
            .map(|(_, v)| i64::try_from(v.0).unwrap_or(i64::MAX))
            .collect();
        let rows = self
            .inner
            .query(
                "looking back in streams",
                &self.inner.sql.last_of_types,
                &[&streams, &below, &types],
            )
            .await?;
        let corrupt = |reason: String| StoreError::Corrupt {
            stream: String::new(),
            version: 0,
            reason: format!("looking back in streams: {reason}"),
        };
        let mut found = vec![None; queries.len()];
        for row in &rows {
            let n: i64 = crate::codec::get(row, "n").map_err(corrupt)?;
            let version: Option<i64> = crate::codec::get(row, "version").map_err(corrupt)?;
            if let (Some(slot), Some(v)) = (
                usize::try_from(n - 1).ok().and_then(|i| found.get_mut(i)),
                version,
            ) {
                *slot = Some(Version(u64::try_from(v).unwrap_or_default()));
            }
        }
        Ok(found)
    }

    /// Counts in the database, on a range of the log index, or of the category index per
    /// category for a filter with categories: no event is sent or decoded.
    async fn count_events(
        &self,
        after: Position,
        up_to: Position,
        filter: &EventFilter,
    ) -> Result<Option<u64>, StoreError> {
        let span =
            tracing::debug_span!("count_events", after = %after, up_to = %up_to, filter = ?filter);
        let counted = self.inner.count_events(after, up_to, filter);
        counted.instrument(span).await.map(Some)
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> Subscription {
        let span = tracing::info_span!("subscribe", schema = %self.inner.schema, after = %after, filter = ?filter);
        let reader = crate::subscribe::Traced::new(self.clone(), span);
        let config = self.inner.subscription;
        let wakeup = if self.inner.tail.enabled() {
            let appended = self.wakeup();
            let store = Arc::downgrade(&self.inner);
            self.inner.tail.subscribe(store, appended, config)
        } else {
            self.wakeup()
        };
        Subscription::polling(reader, after, filter, Some(wakeup), config)
    }

    async fn reader_lag(&self) -> Result<ReaderLag, StoreError> {
        PostgresStore::reader_lag(self).await
    }

    /// A loose index scan of the category index that visits every category once, then
    /// sorts them in byte order: one index probe per category of the store, whatever
    /// the limit, and no event read (`sql/catalog_categories.sql` says why the walk
    /// cannot stop at the limit: the index is in the database's collation).
    async fn categories(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Option<Vec<String>>, StoreError> {
        // The statement's name only: `after` is the caller's data.
        let span = tracing::debug_span!("categories", limit);
        self.inner
            .categories(after, limit)
            .instrument(span)
            .await
            .map(Some)
    }

    /// Reads the `streams` table, one row per stream: a scan of it keeping the
    /// `limit` lowest ids in byte order (the primary key's index, in the database's
    /// collation, cannot give byte order), with the category computed from each id.
    async fn streams(&self, list: ListStreams) -> Result<Option<Vec<StreamInfo>>, StoreError> {
        let span = tracing::debug_span!("streams", limit = list.limit);
        self.inner.streams(&list).instrument(span).await.map(Some)
    }

    /// Walks the log in order from `after`, with no index on the correlation id (one
    /// would cost every append), and stops at the `limit`-th match: a correlation with
    /// fewer events than that after `after` costs a scan of the rest of the log. Meant
    /// for an operator's occasional lookup.
    async fn correlated(
        &self,
        correlation_id: uuid::Uuid,
        after: Position,
        limit: usize,
    ) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        let span = tracing::debug_span!("correlated", limit);
        let events = self.inner.correlated(correlation_id, after, limit);
        events.instrument(span).await.map(Some)
    }
}
