//! Reading a PostgreSQL process store: outbox, instances and deadlines.

use std::collections::HashSet;
use std::time::{Instant, SystemTime};

use deadpool_postgres::Pool;
use tessera_core::process::{Instance, InstanceId, Issued, ProcessManager, Status};
use tessera_core::BoxError;
use tokio_postgres::types::Json;
use tokio_postgres::Row;

use super::mark::{Horizon, LowWater};
use super::sql::Sql;
use crate::process::InstanceCounts;
use crate::process::{Backlog, Deadline, DeadlineState, Due, OutboxEntry};

pub(super) async fn pending<P: ProcessManager>(
    pool: &Pool,
    sql: &Sql,
    limit: usize,
) -> Result<Vec<OutboxEntry<P::Command>>, BoxError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            &client.prepare_cached(&sql.pending).await?,
            &[&P::NAME, &i64::try_from(limit)?],
        )
        .await?;
    rows.iter().map(entry::<P>).collect()
}

pub(super) async fn backlog<P: ProcessManager>(
    pool: &Pool,
    sql: &Sql,
    now: SystemTime,
) -> Result<Backlog, BoxError> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            &client.prepare_cached(&sql.backlog).await?,
            &[&P::NAME, &now],
        )
        .await?;
    let n = |i: usize| u64::try_from(row.get::<_, i64>(i));
    Ok(Backlog {
        waiting: n(0)?,
        retrying: n(1)?,
        oldest: row.get(2),
        instances: InstanceCounts {
            pending: n(3)?,
            compensating: n(4)?,
            completed: n(5)?,
            failed: n(6)?,
        },
        deadlines_scheduled: n(7)?,
        deadlines_due: n(8)?,
    })
}

pub(super) async fn waiting<P: ProcessManager>(pool: &Pool, sql: &Sql) -> Result<u64, BoxError> {
    let client = pool.get().await?;
    let row = client
        .query_one(&client.prepare_cached(&sql.waiting).await?, &[&P::NAME])
        .await?;
    Ok(u64::try_from(row.get::<_, i64>(0))?)
}

pub(super) async fn due<P: ProcessManager>(
    (pool, sql, mark): (&Pool, &Sql, &LowWater),
    (now, limit): (SystemTime, usize),
    busy: &[InstanceId],
) -> Result<Due<P::Command>, BoxError> {
    if limit == 0 {
        // Nothing looked at: anything may be pending.
        let (entries, more) = (Vec::new(), true);
        return Ok(Due { entries, more });
    }
    let busy: Vec<&str> = busy.iter().map(InstanceId::as_str).collect();
    let mut client = pool.get().await?;
    // Run once per free slot: prepared once per connection, not parsed and planned each time.
    let statement = client.prepare_cached(&sql.due).await?;
    // The pending commands in order of `seq`: the first one met of each instance is its
    // oldest pending command, taken when its instance is not busy and its retry time
    // has come; its later ones wait behind it. That holds within one snapshot only: an
    // instance's commands are queued under its lock, so a snapshot that sees one of them
    // sees every older one; but `seq` is drawn at insert, not at commit, so a second
    // page read in a later snapshot could meet an instance's newer command whose older
    // one fell before the first page's end. So: one page, which usually answers; if it
    // does not, the scan starts again in one repeatable-read snapshot, pages doubling.
    // (Not the anti-join this was: a nested loop over the pending index whenever
    // statistics lagged a fast-growing outbox, 14 ms a call at 200 pending rows in a
    // flash sale, against 0.1 ms for the page.)
    // From the low-water mark: every command at or below it is settled.
    let from = mark.after();
    // Busy instances are left out by the statement; a page somewhat larger than the
    // slots to fill leaves room for later commands of the instances met and for heads
    // waiting for their retry.
    let first = limit.saturating_add(16);
    let mut scan = Scan::new(now, limit, !busy.is_empty(), from);
    let rows = client
        .query(
            &statement,
            &[&P::NAME, &from, &i64::try_from(first)?, &busy],
        )
        .await?;
    if let Some(horizon) = Horizon::of(&rows)? {
        if let Some(candidate) = mark.saw(horizon, Instant::now()) {
            // The mark only saves work: without a fresh xid, no candidate this time.
            if let Ok(xid) = fresh_xid(&client).await {
                mark.propose(candidate, xid);
            }
        }
    }
    let rows = commands(&rows)?;
    if scan.take::<P>(rows)? || rows.len() < first {
        return Ok(scan.done(rows.len() == first));
    }
    let tx = super::tx::snapshot(&mut client).await?;
    let mut scan = Scan::new(now, limit, !busy.is_empty(), from);
    let mut page = first;
    let full = loop {
        let rows = tx
            .query(
                &statement,
                &[&P::NAME, &scan.after, &i64::try_from(page)?, &busy],
            )
            .await?;
        let rows = commands(&rows)?;
        if scan.take::<P>(rows)? || rows.len() < page {
            break rows.len() == page;
        }
        page = page.saturating_mul(2).min(MAX_PAGE);
    };
    tx.commit().await?;
    Ok(scan.done(full))
}

/// A new xid, in a transaction that does nothing else (its commit not waited for: a
/// crash ends every transaction the mark waits for anyway).
async fn fresh_xid(client: &deadpool_postgres::Client) -> Result<i64, BoxError> {
    let messages = client
        .simple_query(
            "BEGIN; SET LOCAL synchronous_commit = off; \
             SELECT pg_current_xact_id()::text; COMMIT",
        )
        .await?;
    for message in messages {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
            return Ok(row.get(0).ok_or("no xid")?.parse()?);
        }
    }
    Err("no xid".into())
}

/// The largest page of a `due` scan.
const MAX_PAGE: usize = 4096;

/// A `due` page's commands: none when it is the one row of nulls that carries the
/// horizon alone.
fn commands(rows: &[Row]) -> Result<&[Row], tokio_postgres::Error> {
    match rows.first() {
        Some(row) if row.try_get::<_, Option<i64>>("seq")?.is_none() => Ok(&[]),
        _ => Ok(rows),
    }
}

/// A `due` scan of the pending commands in order: where it is, the instances met, the
/// commands taken.
struct Scan<C> {
    now: SystemTime,
    limit: usize,
    after: i64,
    met: HashSet<String>,
    due: Vec<OutboxEntry<C>>,
    /// A pending row was passed over or left unread.
    more: bool,
}

impl<C> Scan<C> {
    /// A scan from `after`; `busy`: some instance is busy (the statement leaves busy
    /// instances out).
    fn new(now: SystemTime, limit: usize, busy: bool, after: i64) -> Self {
        Self {
            now,
            limit,
            after,
            met: HashSet::new(),
            due: Vec::new(),
            // A busy instance's command in flight is pending until marked: passed over.
            more: busy,
        }
    }

    /// What the scan found; `full`: its last page was full, so rows may follow it.
    fn done(mut self, full: bool) -> Due<C> {
        self.more |= full;
        Due {
            entries: self.due,
            more: self.more,
        }
    }

    /// Takes the due heads of `rows` (the next page); true once `limit` are taken.
    fn take<P: ProcessManager<Command = C>>(&mut self, rows: &[Row]) -> Result<bool, BoxError> {
        for (n, row) in rows.iter().enumerate() {
            self.after = row.try_get("seq")?;
            let instance: &str = row.try_get("instance_id")?;
            if self.met.contains(instance) {
                self.more = true;
                continue;
            }
            // Met, due or not: a head waiting for its retry holds its instance's later
            // commands back.
            self.met.insert(instance.to_owned());
            if row.try_get::<_, SystemTime>("not_before")? > self.now {
                self.more = true;
                continue;
            }
            self.due.push(entry::<P>(row)?);
            if self.due.len() == self.limit {
                self.more |= n + 1 < rows.len();
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// An outbox row's entry (columns `issued`, `attempts`, `not_before`, `last_error`).
pub(super) fn entry<P: ProcessManager>(r: &Row) -> Result<OutboxEntry<P::Command>, BoxError> {
    Ok(OutboxEntry {
        issued: r.try_get::<_, Json<Issued<P::Command>>>("issued")?.0,
        attempts: u32::try_from(r.try_get::<_, i32>("attempts")?)?,
        not_before: r.try_get("not_before")?,
        last_error: r.try_get("last_error")?,
    })
}

pub(super) async fn instance<P: ProcessManager>(
    pool: &Pool,
    sql: &Sql,
    id: &InstanceId,
) -> Result<Option<Instance<P>>, BoxError> {
    let client = pool.get().await?;
    let select = client.prepare_cached(&sql.instance).await?;
    let row = client.query_opt(&select, &[&P::NAME, &id.as_str()]).await?;
    Ok(match row {
        Some(r) => Some(r.try_get::<_, Json<Instance<P>>>("data")?.0),
        None => None,
    })
}

pub(super) async fn instances<P: ProcessManager>(
    pool: &Pool,
    sql: &Sql,
    status: Option<Status>,
) -> Result<Vec<Instance<P>>, BoxError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            &client.prepare_cached(&sql.instances).await?,
            &[&P::NAME, &status.map(Status::as_str)],
        )
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<_, Json<Instance<P>>>("data")?.0))
        .collect()
}

pub(super) async fn deadlines<P: ProcessManager>(
    pool: &Pool,
    sql: &Sql,
) -> Result<Vec<Deadline>, BoxError> {
    let client = pool.get().await?;
    let rows = client
        .query(&client.prepare_cached(&sql.deadlines).await?, &[&P::NAME])
        .await?;
    rows.iter().map(deadline).collect()
}

/// A deadline row (columns `id`, `instance_id`, `key`, `due_at`, `state`).
pub(super) fn deadline(r: &Row) -> Result<Deadline, BoxError> {
    Ok(Deadline {
        id: r.try_get("id")?,
        instance: InstanceId(r.try_get("instance_id")?),
        key: r.try_get("key")?,
        due_at: r.try_get("due_at")?,
        state: DeadlineState::parse(r.try_get("state")?)?,
    })
}
