//! Zero-downtime rebuild of a PostgreSQL projection.

use tessera_core::{EventReader, Position, ReadAll};

use super::control::schema_of;
use super::{PgError, PgHandler, PgProjection};
use crate::{Progress, ProgressMeter};

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildReport {
    /// The version now active.
    pub version: i32,
    /// The version it replaced.
    pub replaced: i32,
    /// Where this run started (after [`Position::START`] when it resumed a crashed one).
    pub resumed_from: Position,
    /// Events applied by this run.
    pub events: u64,
}

impl<H: PgHandler> PgProjection<H> {
    /// Rebuilds the projection from the start of the log into the next version's fresh
    /// schema, while the active version keeps serving queries (and its runner keeps
    /// applying). Once caught up, the new version takes over in one transaction that
    /// also holds the live checkpoint's lock, so the live runner is fenced and continues
    /// on the new version. The old schema is dropped afterwards, and the pool's cached
    /// statements with it (a handler may use `prepare_cached` freely: statements naming
    /// a dropped version do not stay prepared on the pool's connections).
    ///
    /// A rebuild interrupted by a crash resumes from its own checkpoint when run again.
    /// One rebuild of a projection runs at a time, across processes: a second one waits
    /// up to [`REBUILD_LOCK_WAIT`](crate::REBUILD_LOCK_WAIT) for the first to end, then
    /// fails with [`PgError::RebuildRunning`] having changed nothing.
    pub async fn rebuild<S: EventReader>(
        &self,
        store: &S,
        batch_size: usize,
        mut progress: impl FnMut(&Progress) + Send,
    ) -> Result<RebuildReport, PgError> {
        let name = self.handler.name().to_owned();
        // Held until this function returns or its future is dropped.
        let lock = self.lock_rebuild().await?;
        let (version, start) = self.rebuild_target().await?;
        let schema = schema_of(&name, version)?.quoted();
        let filter = self.handler.filter();
        let mut meter = ProgressMeter::start(store, start, &filter).await?;
        let mut cp = start;
        let page =
            |after: Position| ReadAll::after(after, batch_size.max(1)).filter(filter.clone());
        let mut batch = store.read_all(page(cp)).await?;
        loop {
            if batch.is_empty() {
                // Its session gone (killed, timed out), the lock went with it: another
                // rebuild may be building this version now. Stop before switching.
                if lock.is_closed() {
                    return Err(PgError::RebuildLockLost { name });
                }
                if let Some(report) = self.take_over(store, version, cp, &filter, start).await? {
                    let done = meter.finish();
                    progress(&done);
                    tracing::info!(projection = %name, version, replaced = report.replaced, events = done.done, "rebuild took over");
                    return Ok(RebuildReport {
                        events: done.done,
                        ..report
                    });
                }
                // More arrived meanwhile: keep building.
                batch = store.read_all(page(cp)).await?;
                continue;
            }
            let last = batch[batch.len() - 1].position;
            // Read the next page while this one is written: the two overlap.
            let (written, next) = tokio::join!(
                self.apply_rebuild_batch(version, &schema, cp, &batch),
                store.read_all(page(last)),
            );
            written?;
            cp = last;
            progress(meter.advance(batch.len() as u64, cp));
            batch = next?;
        }
    }

    /// Writes one batch into the rebuild's schema and moves its checkpoint, in one
    /// transaction, checking the checkpoint is still where this rebuild left it.
    async fn apply_rebuild_batch(
        &self,
        version: i32,
        schema: &str,
        cp: Position,
        batch: &[tessera_core::RecordedEvent],
    ) -> Result<(), PgError> {
        let name = self.handler.name();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let stored = self.control.lock_version(&tx, name, version).await?;
        if stored != Some(cp) {
            return Err(PgError::Corrupt {
                name: name.to_owned(),
                reason: format!("rebuild checkpoint moved under the rebuild (another rebuild running?): expected {cp}, found {stored:?}"),
            });
        }
        self.handler
            .handle(&tx, schema, batch)
            .await
            .map_err(|error| PgError::Handler {
                name: name.to_owned(),
                position: batch[0].position,
                error,
            })?;
        let last = batch[batch.len() - 1].position;
        self.control
            .write_checkpoint(&tx, name, version, last)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Switches to `version` if nothing wanted arrived after `cp`, in one transaction
    /// holding the live checkpoint's lock (which fences the live runner). `None`: more
    /// arrived, keep building.
    async fn take_over<S: EventReader>(
        &self,
        store: &S,
        version: i32,
        cp: Position,
        filter: &tessera_core::EventFilter,
        start: Position,
    ) -> Result<Option<RebuildReport>, PgError> {
        let name = self.handler.name();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let live = self.control.lock_active(&tx, name).await?;
        let stored = self.control.lock_version(&tx, name, version).await?;
        let replaced = live.map_or(0, |(v, _)| v);
        // The rebuild lock keeps a second rebuild out; should it have been lost (its
        // connection killed), this still refuses to switch to, or drop, a version that
        // is not this rebuild's own unfinished one.
        if replaced >= version || stored != Some(cp) {
            return Err(PgError::Corrupt {
                name: name.to_owned(),
                reason: format!("another rebuild moved v{version} (active v{replaced}, its checkpoint {stored:?}, this rebuild's {cp}); nothing switched"),
            });
        }
        let probe = ReadAll::after(cp, 1).filter(filter.clone());
        if !store.read_all(probe).await?.is_empty() {
            return Ok(None); // the rollback releases the locks
        }
        self.control.switch(&tx, name, version).await?;
        tx.commit().await?;
        self.drop_version(replaced).await?;
        Ok(Some(RebuildReport {
            version,
            replaced,
            resumed_from: start,
            events: 0,
        }))
    }

    /// The version to build and where to start: an unfinished newer version resumes,
    /// otherwise the next version is created fresh. A rebuild only ever builds the
    /// version after the active one, so that is the only one that can be unfinished.
    async fn rebuild_target(&self) -> Result<(i32, Position), PgError> {
        let name = self.handler.name();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let (active, _) = self.control.active(&tx, name).await?;
        let version = active.checked_add(1).ok_or_else(|| PgError::Corrupt {
            name: name.to_owned(),
            reason: format!("version {active} is the last there can be"),
        })?;
        if let Some(cp) = self.control.checkpoint(&tx, name, version).await? {
            tx.commit().await?;
            tracing::info!(projection = %name, version, from = %cp, "resuming an interrupted rebuild");
            return Ok((version, cp));
        }
        self.control
            .create_version(&tx, self.handler.as_ref(), version)
            .await?;
        tx.commit().await?;
        Ok((version, Position::START))
    }

    /// Takes the projection's rebuild lock: a session advisory lock on a connection
    /// taken out of the pool, so that it is released, with the connection, when the
    /// returned client is dropped (the rebuild ended, failed or was cancelled), and no
    /// pooled connection ever carries it.
    async fn lock_rebuild(&self) -> Result<deadpool_postgres::ClientWrapper, PgError> {
        let name = self.handler.name();
        let client = deadpool_postgres::Object::take(self.pool.get().await?);
        let wait = format!(
            "SET lock_timeout = {}",
            super::REBUILD_LOCK_WAIT.as_millis()
        );
        client.batch_execute(&wait).await?;
        let key = format!("tessera_rebuild \"{}\".{name}", self.control.schema);
        match client
            .execute("SELECT pg_advisory_lock(hashtext($1))", &[&key])
            .await
        {
            Ok(_) => Ok(client),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                Err(PgError::RebuildRunning {
                    name: name.to_owned(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn drop_version(&self, version: i32) -> Result<(), PgError> {
        let client = self.pool.get().await?;
        self.control
            .drop_version(&client, self.handler.name(), version)
            .await?;
        // Handlers cache statements that name their version's schema; each rebuild makes
        // new names, so those of the dropped version would stay prepared on every pooled
        // connection for its life. The pool's caches are emptied (deadpool cannot drop
        // by name): what is still in use is prepared again on first use.
        self.pool.manager().statement_caches.clear();
        Ok(())
    }
}
