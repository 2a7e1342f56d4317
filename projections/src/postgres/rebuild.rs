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

/// [`PgProjection::rebuild`].
pub(super) async fn run<H: PgHandler, S: EventReader>(
    this: &PgProjection<H>,
    store: &S,
    batch_size: usize,
    mut progress: impl FnMut(&Progress) + Send,
) -> Result<RebuildReport, PgError> {
    let name = this.handler.name().to_owned();
    // Held until this function returns or its future is dropped.
    let lock = lock_rebuild(this).await?;
    let (version, start) = rebuild_target(this).await?;
    let schema = schema_of(&name, version)?.quoted();
    let filter = this.handler.filter();
    let mut meter = ProgressMeter::start(store, start, &filter)
        .await?
        .named(&name);
    let mut cp = start;
    let page = |after: Position| ReadAll::after(after, batch_size.max(1)).filter(filter.clone());
    let mut batch = store.read_all(page(cp)).await?;
    loop {
        if batch.is_empty() {
            // Its session gone (killed, timed out), the lock went with it: another
            // rebuild may be building this version now. Stop before switching.
            if lock.is_closed() {
                return Err(PgError::RebuildLockLost { name });
            }
            if let Some(report) = take_over(this, store, version, cp, &filter, start).await? {
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
            apply_rebuild_batch(this, version, &schema, cp, &batch),
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
async fn apply_rebuild_batch<H: PgHandler>(
    this: &PgProjection<H>,
    version: i32,
    schema: &str,
    cp: Position,
    batch: &[tessera_core::RecordedEvent],
) -> Result<(), PgError> {
    let name = this.handler.name();
    let mut client = this.pool.get().await?;
    let tx = client.transaction().await?;
    let stored = this.control.lock_version(&tx, name, version).await?;
    if stored != Some(cp) {
        return Err(PgError::Corrupt {
            name: name.to_owned(),
            reason: format!("rebuild checkpoint moved under the rebuild (another rebuild running?): expected {cp}, found {stored:?}"),
        });
    }
    this.handler
        .handle(&tx, schema, batch)
        .await
        .map_err(|error| PgError::Handler {
            name: name.to_owned(),
            position: batch[0].position,
            error,
        })?;
    let last = batch[batch.len() - 1].position;
    this.control
        .write_checkpoint(&tx, name, version, last)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Switches to `version` if nothing wanted arrived after `cp`, in one transaction
/// holding the live checkpoint's lock (which fences the live runner). `None`: more
/// arrived, keep building.
async fn take_over<H: PgHandler, S: EventReader>(
    this: &PgProjection<H>,
    store: &S,
    version: i32,
    cp: Position,
    filter: &tessera_core::EventFilter,
    start: Position,
) -> Result<Option<RebuildReport>, PgError> {
    let name = this.handler.name();
    let mut client = this.pool.get().await?;
    let tx = client.transaction().await?;
    let live = this.control.lock_active(&tx, name).await?;
    let stored = this.control.lock_version(&tx, name, version).await?;
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
    this.control.switch(&tx, name, version).await?;
    tx.commit().await?;
    drop_version(this, replaced).await?;
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
async fn rebuild_target<H: PgHandler>(this: &PgProjection<H>) -> Result<(i32, Position), PgError> {
    let name = this.handler.name();
    let mut client = this.pool.get().await?;
    let tx = client.transaction().await?;
    let (active, _) = this.control.active(&tx, name).await?;
    let version = active.checked_add(1).ok_or_else(|| PgError::Corrupt {
        name: name.to_owned(),
        reason: format!("version {active} is the last there can be"),
    })?;
    if let Some(cp) = this.control.checkpoint(&tx, name, version).await? {
        tx.commit().await?;
        tracing::info!(projection = %name, version, from = %cp, "resuming an interrupted rebuild");
        return Ok((version, cp));
    }
    this.control
        .create_version(&tx, this.handler.as_ref(), version)
        .await?;
    tx.commit().await?;
    Ok((version, Position::START))
}

/// Takes the projection's rebuild lock: a session advisory lock on a connection
/// taken out of the pool, so that it is released, with the connection, when the
/// returned client is dropped (the rebuild ended, failed or was cancelled), and no
/// pooled connection ever carries it.
async fn lock_rebuild<H: PgHandler>(
    this: &PgProjection<H>,
) -> Result<deadpool_postgres::ClientWrapper, PgError> {
    let name = this.handler.name();
    let client = deadpool_postgres::Object::take(this.pool.get().await?);
    let wait = format!(
        "SET lock_timeout = {}",
        super::REBUILD_LOCK_WAIT.as_millis()
    );
    client.batch_execute(&wait).await?;
    let key = format!("tessera_rebuild \"{}\".{name}", this.control.schema);
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

async fn drop_version<H: PgHandler>(this: &PgProjection<H>, version: i32) -> Result<(), PgError> {
    let client = this.pool.get().await?;
    this.control
        .drop_version(&client, this.handler.name(), version)
        .await?;
    // Handlers cache statements that name their version's schema; each rebuild makes
    // new names, so those of the dropped version would stay prepared on every pooled
    // connection for its life. The pool's caches are emptied (deadpool cannot drop
    // by name): what is still in use is prepared again on first use.
    this.pool.manager().statement_caches.clear();
    Ok(())
}
