//! Reads: one stream, the global log, heads and single events.

use deadpool_postgres::Object;
use postgres_types::ToSql;
use tessera_core::{
    Direction, EventFilter, EventId, Position, ReadAll, ReadStream, RecordedEvent, StoreError,
    StreamId, Version,
};
use tokio_postgres::Row;

use crate::codec::{self, get, recorded_event, Xid8};
use crate::error::{map_pg, map_pool};
use crate::store::Inner;

/// For filtered log reads: with stale statistics (a log that just grew) the planner
/// estimates few rows after a position and picks a bitmap scan of the whole rest of the
/// category plus a sort, for every page (seen with EXPLAIN ANALYZE: 900,000 rows fetched
/// to return 2,000). Without bitmap scans it walks the index in order and stops at the
/// limit.
pub(crate) const INDEX_ORDER: &str = "BEGIN; SET LOCAL enable_bitmapscan = off";

/// For statements over "every event of a transaction at or after the snapshot's xmin"
/// (the reader-lag count): the xmin is only known when the statement runs, so the
/// planner assumes a third of the log matches, and on a log of a few million events
/// that estimate costs enough to JIT-compile the plan at every call, while the rows
/// that really match are the few behind an open transaction. On 3,100,000 events
/// (EXPLAIN ANALYZE in psql) the statement took 48–172 ms with JIT and 0.4 ms without.
/// The transaction this needs costs about 0.3 ms on a small log (`tessera-bench
/// rebuild`'s `reader_lag_ms` on 1,000,000 events: 0.20 ms before, 0.48 ms after).
pub(crate) const NO_JIT: &str = "BEGIN; SET LOCAL jit = off";

impl Inner {
    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| map_pool(e, &self.endpoint))
    }

    /// Runs a (cached, prepared) query.
    pub(crate) async fn query(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let result = async {
            let statement = client.prepare_cached(sql).await?;
            client.query(&statement, params).await
        };
        result.await.map_err(|e| map_pg(e, what, &self.endpoint))
    }

    /// Runs a query in a transaction of its own opened by `begin` (`BEGIN` and a
    /// `SET LOCAL`: [`INDEX_ORDER`], [`NO_JIT`]), for a statement the planner gets wrong
    /// by default. The statement is prepared once per connection and always run this
    /// way, so its cached plan is one made under the same settings.
    ///
    /// The three messages (`BEGIN; SET LOCAL …`, the query, `COMMIT`) are pipelined:
    /// one round trip instead of four. Each is queued on the connection when first
    /// polled, and all three are polled before any result is looked at (`join!`, not
    /// `try_join!`, which would stop at a query that fails to encode its parameters,
    /// after `BEGIN` went out and before `COMMIT` did). So the `COMMIT` is sent even if
    /// this future is dropped early or the query fails (a failed transaction's `COMMIT`
    /// rolls back), and the connection never returns to the pool inside a transaction.
    pub(crate) async fn query_with(
        &self,
        what: &str,
        begin: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let result = async {
            let statement = client.prepare_cached(sql).await?;
            let begin = client.batch_execute(begin);
            let rows = client.query(&statement, params);
            let commit = client.batch_execute("COMMIT");
            let (begun, rows, committed) = tokio::join!(begin, rows, commit);
            begun?;
            let rows = rows?;
            committed?;
            Ok::<_, tokio_postgres::Error>(rows)
        };
        result.await.map_err(|e| map_pg(e, what, &self.endpoint))
    }

    pub(crate) async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = limit(read.limit)?;
        let (sql, from) = match read.direction {
            Direction::Forward => (&self.sql.read_stream_forward, read.from.map_or(0, clamp)),
            Direction::Backward => (
                &self.sql.read_stream_backward,
                read.from.map_or(i64::MAX, clamp),
            ),
        };
        let rows = self
            .query("reading a stream", sql, &[&stream.as_str(), &from, &limit])
            .await?;
        rows.iter().map(recorded_event).collect()
    }

    pub(crate) async fn read_all(&self, read: &ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self.read_all_checked(read, false).await?.0)
    }

    /// [`Self::read_all`], and with `check_hidden` whether committed events wait behind
    /// an older open transaction (`hidden.sql`; `None`: the check failed). The check
    /// goes in the read's transaction, pipelined after it (one round trip, one
    /// transaction): in READ COMMITTED it takes its snapshot after the read's, as the
    /// separate query after a short read did, which cost a transaction and a round trip
    /// of its own on every wake-up of every runner.
    pub(crate) async fn read_all_checked(
        &self,
        read: &ReadAll,
        check_hidden: bool,
    ) -> Result<(Vec<RecordedEvent>, Option<bool>), StoreError> {
        let limit = limit(read.limit)?;
        let tx = Xid8(read.after.commit);
        let position = i64::try_from(read.after.prepare).unwrap_or(i64::MAX);
        let (c, t) = (&read.filter.categories, &read.filter.event_types);
        let (sql, begin, params): (_, _, Vec<&(dyn ToSql + Sync)>) = if read.filter.is_all() {
            (&self.sql.read_all, "BEGIN", vec![&tx, &position, &limit])
        } else if read.filter.categories.is_empty() {
            (
                &self.sql.read_all_types,
                "BEGIN",
                vec![&tx, &position, &limit, t],
            )
        } else {
            (
                &self.sql.read_all_filtered,
                INDEX_ORDER,
                vec![&tx, &position, &limit, c, t],
            )
        };
        let (rows, hidden) = if check_hidden && read.filter.is_all() {
            let sql = &self.sql.read_all_checked;
            let rows = self.query("reading the log", sql, &params).await?;
            let hidden = match rows.first() {
                Some(row) => get::<bool>(row, "hidden").ok(),
                None => None,
            };
            // The row of nulls that carries the check when no event is returned.
            let rows = match rows.first() {
                Some(row)
                    if row
                        .try_get::<_, Option<i64>>("global_position")
                        .ok()
                        .flatten()
                        .is_none() =>
                {
                    Vec::new()
                }
                _ => rows,
            };
            (rows, hidden)
        } else if check_hidden {
            self.query_checked(begin, sql, &params).await?
        } else if begin == INDEX_ORDER {
            let rows = self.query_with("reading the log", begin, sql, &params);
            (rows.await?, None)
        } else {
            (self.query("reading the log", sql, &params).await?, None)
        };
        // A row that cannot be decoded ends the batch: the events before it are
        // returned, and the next read, which starts at it, reports it. So a runner
        // applies everything before the bad event and stops exactly there.
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            match recorded_event(row) {
                Ok(event) => events.push(event),
                Err(e) if events.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok((events, hidden))
    }

    /// `sql` and the hidden-events check in one transaction opened by `begin`, the four
    /// messages pipelined as in [`Self::query_with`].
    async fn query_checked(
        &self,
        begin: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<(Vec<Row>, Option<bool>), StoreError> {
        let client = self.client().await?;
        let result = async {
            let statement = client.prepare_cached(sql).await?;
            let check = client.prepare_cached(&self.sql.hidden).await?;
            let begin = client.batch_execute(begin);
            let rows = client.query(&statement, params);
            let hidden = client.query(&check, &[]);
            let commit = client.batch_execute("COMMIT");
            let (begun, rows, hidden, committed) = tokio::join!(begin, rows, hidden, commit);
            begun?;
            let rows = rows?;
            committed?;
            let hidden = hidden
                .ok()
                .and_then(|r| r.first().and_then(|r| get::<bool>(r, "hidden").ok()));
            Ok::<_, tokio_postgres::Error>((rows, hidden))
        };
        result
            .await
            .map_err(|e| map_pg(e, "reading the log", &self.endpoint))
    }

    pub(crate) async fn stream_version(
        &self,
        stream: &StreamId,
    ) -> Result<Option<Version>, StoreError> {
        let rows = self
            .query(
                "reading a stream version",
                &self.sql.stream_version,
                &[&stream.as_str()],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let version = get::<i64>(row, "version")
            .and_then(|v| codec::unsigned(v, "streams.version"))
            .map_err(|reason| StoreError::Corrupt {
                stream: stream.to_string(),
                version: 0,
                reason,
            })?;
        Ok(Some(Version(version)))
    }

    pub(crate) async fn head(&self) -> Result<Option<Position>, StoreError> {
        let rows = self.query("reading the head", &self.sql.head, &[]).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let position = get(row, "tx_id")
            .and_then(|tx| codec::position(tx, get(row, "global_position")?))
            .map_err(|e| StoreError::backend("reading the head", e))?;
        Ok(Some(position))
    }

    /// The events after `after` and at or before `up_to` that pass `filter` (see
    /// [`EventReader::count_events`](tessera_core::EventReader::count_events)).
    pub(crate) async fn count_events(
        &self,
        after: Position,
        up_to: Position,
        filter: &EventFilter,
    ) -> Result<u64, StoreError> {
        let what = "counting events";
        let bound = |p: Position| (Xid8(p.commit), i64::try_from(p.prepare).unwrap_or(i64::MAX));
        let ((from_tx, from), (to_tx, to)) = (bound(after), bound(up_to));
        let types = &filter.event_types;
        let rows = if filter.categories.is_empty() {
            let params: [&(dyn ToSql + Sync); 5] = [&from_tx, &from, &to_tx, &to, types];
            self.query(what, &self.sql.count, &params).await?
        } else {
            let c = &filter.categories;
            let params: [&(dyn ToSql + Sync); 6] = [&from_tx, &from, &to_tx, &to, c, types];
            self.query(what, &self.sql.count_filtered, &params).await?
        };
        let row = rows
            .first()
            .ok_or_else(|| StoreError::backend(what, "no row"))?;
        get::<i64>(row, "events")
            .and_then(|n| codec::unsigned(n, "count"))
            .map_err(|e| StoreError::backend(what, e))
    }

    pub(crate) async fn find_event(
        &self,
        stream: &StreamId,
        id: EventId,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        let rows = self
            .query(
                "finding an event",
                &self.sql.find_event,
                &[&stream.as_str(), &id.0],
            )
            .await?;
        rows.first().map(recorded_event).transpose()
    }
}

/// A read limit as a SQL `LIMIT`.
pub(crate) fn limit(limit: usize) -> Result<i64, StoreError> {
    if limit == 0 {
        return Err(StoreError::InvalidInput(
            "read limit must be at least 1".into(),
        ));
    }
    Ok(i64::try_from(limit).unwrap_or(i64::MAX))
}

/// A version as a `bigint` bound (versions beyond `i64::MAX` cannot be stored).
fn clamp(v: Version) -> i64 {
    i64::try_from(v.0).unwrap_or(i64::MAX)
}
