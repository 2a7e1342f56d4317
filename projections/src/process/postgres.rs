//! The PostgreSQL process store: instances, handled inputs, outbox and deadlines in
//! tables of a configurable schema, each change in one transaction with the checkpoint.

use std::sync::Arc;
use std::time::SystemTime;

use deadpool_postgres::Pool;
use futures_util::future::join;
use tessera_core::process::{Instance, InstanceId, Issued, ProcessManager, Status, Trigger};
use tessera_core::trace::TraceContext;
use tessera_core::{BoxError, EventFilter, Position, RecordedEvent, Upcasters};
use tokio::sync::Notify;

use super::record::page_limit;
use super::store::route;
use super::{Backlog, Clock, Deadline, Due, InstanceRecord, OutboxEntry, ProcessStore, Pruned};
use crate::checkpoint::PgCheckpoints;
use crate::{ApplyError, PgError, Subscriber};
use tessera_postgres::SchemaName;

mod batch;
mod mark;
mod prune;
mod read;
mod records;
mod settle;
mod sql;
mod tx;

/// The process store's migrations.
const MIGRATIONS: &[crate::migrate::Migration] = &[
    crate::migrate::Migration {
        version: 1,
        name: "instances, handled, outbox, deadlines",
        sql: include_str!("postgres/sql/create.sql"),
    },
    crate::migrate::Migration {
        version: 2,
        name: "retention: settled times and prune indexes",
        sql: include_str!("postgres/sql/retention.sql"),
    },
    crate::migrate::Migration {
        version: 3,
        name: "deadlines: the trace context of their scheduling",
        sql: include_str!("postgres/sql/trace.sql"),
    },
    crate::migrate::Migration {
        version: 4,
        name: "records: instances paged by id, one instance's commands and deadlines",
        sql: include_str!("postgres/sql/records.sql"),
    },
    crate::migrate::Migration {
        version: 5,
        name: "instances: room for HOT updates",
        sql: include_str!("postgres/sql/fillfactor.sql"),
    },
];

/// A process store in PostgreSQL. Several process managers can share one schema (rows
/// are keyed by [`ProcessManager::NAME`]); a bounded context usually owns one schema.
///
/// Tables: `checkpoints` (the read side's one checkpoint table, see
/// [`PgCheckpoints`]; the row is named [`ProcessManager::NAME`]), `instances` (JSON state with a version, status, reason),
/// `handled` (instance, trigger), `outbox` (commands with their dispatch state),
/// `deadlines` (due time, timeout, state). Times that retention compares (`handled_at`,
/// `settled_at`, an instance's `updated_at`) are written from the store's [`Clock`].
pub struct PgProcess<P: ProcessManager> {
    pool: Pool,
    process: Arc<P>,
    checkpoints: PgCheckpoints,
    sql: Arc<sql::Sql>,
    clock: Clock,
    wake: Arc<Notify>,
    upcasters: Arc<Upcasters>,
    /// Where the outbox scan starts.
    mark: Arc<mark::LowWater>,
}

impl<P: ProcessManager> Clone for PgProcess<P> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            process: Arc::clone(&self.process),
            checkpoints: self.checkpoints.clone(),
            sql: Arc::clone(&self.sql),
            clock: self.clock,
            wake: Arc::clone(&self.wake),
            upcasters: Arc::clone(&self.upcasters),
            mark: Arc::clone(&self.mark),
        }
    }
}

impl<P: ProcessManager> PgProcess<P> {
    /// A store for `process` in `schema` (a [`SchemaName`]: lower-case letters, digits
    /// and `_`), creating the schema and tables if needed (idempotent, under an advisory
    /// lock).
    pub async fn new(pool: Pool, process: P, schema: &str) -> Result<Self, PgError> {
        let schema = SchemaName::new(schema)?;
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        PgCheckpoints::create(&tx, &schema).await?;
        crate::migrate::run(&tx, &schema, "process", MIGRATIONS).await?;
        let checkpoints = PgCheckpoints::open(pool.clone(), schema.clone());
        checkpoints.register(&tx, P::NAME).await?;
        tx.commit().await?;
        drop(client);
        Ok(Self {
            pool,
            process: Arc::new(process),
            sql: Arc::new(sql::Sql::new(&schema)),
            checkpoints,
            clock: Clock::new(),
            wake: Arc::new(Notify::new()),
            upcasters: Arc::new(Upcasters::new()),
            mark: Arc::default(),
        })
    }

    /// Where the worker's outbox scan starts: no command at or below this `seq` is
    /// pending, nor ever will be (the scan's low-water mark; 0 until it first moves).
    /// For diagnostics and tests.
    #[must_use]
    pub fn low_water(&self) -> i64 {
        self.mark.after()
    }

    /// Decodes events with these upcasters.
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = Arc::new(upcasters);
        self
    }

    async fn apply_tx(&self, from: Position, batch: &[RecordedEvent]) -> Result<bool, BoxError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let sql = &*self.sql;
        let now = self.clock.now();
        let mut at = from;
        let mut routed = Vec::with_capacity(batch.len());
        for e in batch {
            if e.position <= at {
                // Applied already: a redelivery (see `Subscriber::apply`).
                continue;
            }
            at = e.position;
            if let Some(r) = route(self.process.as_ref(), &self.upcasters, e)? {
                let trace = TraceContext::of(&e.metadata).map(|t| (t, false));
                routed.push((e.id, trace, r));
            }
        }
        let reactions: Vec<batch::Reaction<'_, P>> = routed
            .iter()
            .map(|(event_id, trace, (id, start, event))| batch::Reaction {
                id,
                start: *start,
                event,
                trigger: Trigger::event(*event_id),
                trace: trace.as_ref(),
            })
            .collect();
        // The checkpoint moves from the batch's start to its end first (compare-and-set,
        // its row locked for the transaction: a second runner's batch waits, then finds
        // it moved and writes nothing); then the batch's instances are locked, in the
        // order of their ids as the worker's marks lock theirs, so neither deadlocks the
        // other. Both are sent together, in that order, with the handled check.
        let advance = self.checkpoints.advance_statement(&tx).await?;
        let reads = batch::Reads::prepare(&tx, sql).await?;
        let (moved, loaded) = join(
            self.checkpoints
                .advance_with(&tx, &advance, P::NAME, (from, at)),
            batch::load(&tx, &reads, &reactions),
        )
        .await;
        // Fenced first: a stale batch says so, whatever its reads met.
        if !moved? {
            return Ok(false);
        }
        let loaded = loaded?;
        let process = self.process.as_ref();
        batch::react_all(&tx, sql, process, (&reactions, loaded), now).await?;
        tx.commit().await?;
        Ok(true)
    }
}

impl<P: ProcessManager> Subscriber for PgProcess<P> {
    fn name(&self) -> &str {
        P::NAME
    }

    fn filter(&self) -> EventFilter {
        self.process.filter()
    }

    async fn checkpoint(&self) -> Result<Position, BoxError> {
        use crate::CheckpointStore;
        self.checkpoints.load(P::NAME).await
    }

    async fn apply(&self, from: Position, batch: &[RecordedEvent]) -> Result<(), ApplyError> {
        match self.apply_tx(from, batch).await {
            Ok(true) => {
                self.wake.notify_one();
                Ok(())
            }
            Ok(false) => Err(ApplyError::Fenced { expected: from }),
            Err(error) => Err(ApplyError::Failed { applied: 0, error }),
        }
    }
}

impl<P: ProcessManager> ProcessStore<P> for PgProcess<P> {
    fn clock(&self) -> Clock {
        self.clock
    }

    fn wakeup(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    async fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry<P::Command>>, BoxError> {
        read::pending::<P>(&self.pool, &self.sql, limit).await
    }

    async fn backlog(&self) -> Result<Backlog, BoxError> {
        read::backlog::<P>(&self.pool, &self.sql, self.clock.now()).await
    }

    async fn waiting(&self) -> Result<u64, BoxError> {
        read::waiting::<P>(&self.pool, &self.sql).await
    }

    async fn due(
        &self,
        now: SystemTime,
        limit: usize,
        busy: &[InstanceId],
    ) -> Result<Due<P::Command>, BoxError> {
        read::due::<P>((&self.pool, &self.sql, &self.mark), (now, limit), busy).await
    }

    async fn mark_dispatched(&self, issued: &Issued<P::Command>) -> Result<(), BoxError> {
        settle::settle(self, issued, None, None).await
    }

    async fn mark_all_dispatched(&self, issued: &[Issued<P::Command>]) -> Result<(), BoxError> {
        settle::dispatched_all(self, issued).await
    }

    async fn mark_failed(
        &self,
        issued: &Issued<P::Command>,
        error: &str,
        retry_at: Option<SystemTime>,
    ) -> Result<(), BoxError> {
        settle::settle(self, issued, Some(error), retry_at).await
    }

    async fn fire_due(&self, now: SystemTime, limit: usize) -> Result<usize, BoxError> {
        let due = {
            let client = self.pool.get().await?;
            client
                .query(
                    &client.prepare_cached(&self.sql.due_deadlines).await?,
                    &[&P::NAME, &now, &i64::try_from(limit)?],
                )
                .await?
        };
        let mut fired = 0;
        for row in due {
            let instance = InstanceId(row.try_get("instance_id")?);
            if settle::fire_one(self, row.try_get("id")?, &instance).await? {
                fired += 1;
            }
        }
        if fired > 0 {
            self.wake.notify_one();
        }
        Ok(fired)
    }

    async fn prune(&self, before: SystemTime, limit: usize) -> Result<Pruned, BoxError> {
        prune::prune::<P>(&self.pool, &self.sql, before, limit).await
    }

    async fn instance(&self, id: &InstanceId) -> Result<Option<Instance<P>>, BoxError> {
        read::instance::<P>(&self.pool, &self.sql, id).await
    }

    async fn instances(&self, status: Option<Status>) -> Result<Vec<Instance<P>>, BoxError> {
        read::instances::<P>(&self.pool, &self.sql, status).await
    }

    async fn deadlines(&self) -> Result<Vec<Deadline>, BoxError> {
        read::deadlines::<P>(&self.pool, &self.sql).await
    }

    async fn instance_page(
        &self,
        status: Option<Status>,
        after: Option<&InstanceId>,
        limit: usize,
    ) -> Result<Vec<Instance<P>>, BoxError> {
        let limit = page_limit(limit)?;
        records::page::<P>(&self.pool, &self.sql, (status, after), limit).await
    }

    async fn instance_record(
        &self,
        id: &InstanceId,
    ) -> Result<Option<InstanceRecord<P::Command>>, BoxError> {
        records::record::<P>(&self.pool, &self.sql, id).await
    }
}
