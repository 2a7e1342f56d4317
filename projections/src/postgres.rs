//! PostgreSQL read models: the handler writes in the runner's transaction, and the
//! checkpoint moves in that same transaction with a compare-and-set.
//!
//! Each version of a projection owns a schema of its own (`{name}_v{version}`); a control
//! schema (default `tessera_projections`) records every version's checkpoint and which
//! version is active. Queries resolve the active schema with
//! [`PgProjection::active_schema`]. A rebuild builds the next version into a fresh schema
//! while the active one keeps serving, and takes over in one transaction.

use std::future::Future;
use std::sync::{Arc, Mutex};

use deadpool_postgres::{Pool, Transaction};
use tessera_core::{BoxError, EventFilter, EventReader, Position, RecordedEvent};
use tessera_postgres::SchemaName;

use crate::{ApplyError, Subscriber};

mod control;
mod error;
mod rebuild;

use control::Control;
pub use error::PgError;

/// How long a rebuild waits for another rebuild of the same projection to end before it
/// fails with [`PgError::RebuildRunning`].
pub const REBUILD_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
pub use rebuild::RebuildReport;

/// The logic of a PostgreSQL projection.
pub trait PgHandler: Send + Sync + 'static {
    /// Stable name: lower-case letters, digits and `_`, short enough that the schema of
    /// each version, `{name}_v{version}`, is a valid
    /// [`SchemaName`](tessera_postgres::SchemaName) (at most 50 bytes).
    fn name(&self) -> &str;
    /// Events it wants.
    fn filter(&self) -> EventFilter;
    /// Creates this projection's tables in `schema` (a fresh, empty schema, given quoted
    /// and ready to put in a statement).
    fn setup(
        &self,
        tx: &Transaction<'_>,
        schema: &str,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;
    /// Applies `events` to the tables in `schema`, inside `tx`.
    fn handle(
        &self,
        tx: &Transaction<'_>,
        schema: &str,
        events: &[RecordedEvent],
    ) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// Which version a runner applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) version: i32,
    /// Its schema, quoted.
    pub(crate) schema: String,
}

/// A projection into PostgreSQL tables. Clones share the handler and pool.
pub struct PgProjection<H> {
    pool: Pool,
    handler: Arc<H>,
    control: Arc<Control>,
    target: Arc<Mutex<Option<Target>>>,
    /// The active version and its schema (quoted) as last read, shared by clones: a
    /// document read checks it in its own statement instead of reading it first.
    seen_active: Arc<Mutex<Option<(i32, String)>>>,
}

impl<H> Clone for PgProjection<H> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            handler: Arc::clone(&self.handler),
            control: Arc::clone(&self.control),
            target: Arc::new(Mutex::new(None)),
            seen_active: Arc::clone(&self.seen_active),
        }
    }
}

impl<H: PgHandler> PgProjection<H> {
    /// A projection whose control tables live in `tessera_projections`. Creates them,
    /// and version 1 of the projection if none is active yet.
    pub async fn new(pool: Pool, handler: H) -> Result<Self, PgError> {
        Self::with_control_schema(pool, handler, "tessera_projections").await
    }

    /// The same, with the control tables in `control_schema`.
    pub async fn with_control_schema(
        pool: Pool,
        handler: H,
        control_schema: &str,
    ) -> Result<Self, PgError> {
        SchemaName::new(handler.name())?;
        let control_schema = SchemaName::new(control_schema)?;
        let control = Control::ensure(&pool, control_schema, &handler).await?;
        Ok(Self {
            pool,
            handler: Arc::new(handler),
            control: Arc::new(control),
            target: Arc::new(Mutex::new(None)),
            seen_active: Arc::default(),
        })
    }

    /// The schema of the active version: where queries read.
    pub async fn active_schema(&self) -> Result<String, PgError> {
        let client = self.pool.get().await?;
        Ok(self.read_active(&client).await?.1)
    }

    /// The active version and its schema (quoted), read through `client` and
    /// remembered for [`Self::seen_active`].
    pub(crate) async fn read_active(
        &self,
        client: &impl deadpool_postgres::GenericClient,
    ) -> Result<(i32, String), PgError> {
        let (version, schema) = self.control.active(client, self.handler.name()).await?;
        let active = (version, schema.quoted());
        *self.seen() = Some(active.clone());
        Ok(active)
    }

    /// The active version and schema as last read (`None`: not read yet, or forgotten).
    pub(crate) fn seen_active(&self) -> Option<(i32, String)> {
        self.seen().clone()
    }

    /// Forgets the active version last read (a read found another one active).
    pub(crate) fn forget_active(&self) {
        *self.seen() = None;
    }

    /// The control schema (quoted) and the projection's name.
    pub(crate) fn control_of(&self) -> (String, &str) {
        (self.control.schema.quoted(), self.handler.name())
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Option<(i32, String)>> {
        self.seen_active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The active version number.
    pub async fn active_version(&self) -> Result<i32, PgError> {
        let client = self.pool.get().await?;
        Ok(self.control.active(&client, self.handler.name()).await?.0)
    }

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
        progress: impl FnMut(&crate::Progress) + Send,
    ) -> Result<RebuildReport, PgError> {
        rebuild::run(self, store, batch_size, progress).await
    }

    fn set_target(&self, t: Target) {
        *self
            .target
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(t);
    }

    /// The pool, the version this clone's runner applies to (`None` until its
    /// [`Subscriber::checkpoint`] read it) and the compare-and-set of
    /// `sql/advance_active.sql` filled in: what a subscriber that writes a batch in one
    /// statement of its own (a view's live runner) builds that statement from.
    pub(crate) fn live_parts(&self) -> (&Pool, Option<Target>, &str) {
        (
            &self.pool,
            self.current_target(),
            self.control.advance_active_sql(),
        )
    }

    fn current_target(&self) -> Option<Target> {
        self.target
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl<H: PgHandler> Subscriber for PgProjection<H> {
    fn name(&self) -> &str {
        self.handler.name()
    }

    fn filter(&self) -> EventFilter {
        self.handler.filter()
    }

    async fn checkpoint(&self) -> Result<Position, BoxError> {
        let client = self.pool.get().await?;
        let (version, schema) = self.control.active(&client, self.name()).await?;
        let position = self
            .control
            .checkpoint(&client, self.name(), version)
            .await?
            .unwrap_or_default();
        self.set_target(Target {
            version,
            schema: schema.quoted(),
        });
        Ok(position)
    }

    async fn apply(&self, from: Position, batch: &[RecordedEvent]) -> Result<(), ApplyError> {
        let failed = |error: BoxError| ApplyError::Failed { applied: 0, error };
        let Some(target) = self.current_target() else {
            return Err(ApplyError::Fenced { expected: from });
        };
        let mut client = self.pool.get().await.map_err(|e| failed(e.into()))?;
        let tx = client.transaction().await.map_err(|e| failed(e.into()))?;
        // Moves the checkpoint first, in one statement that also locks the active row
        // and the checkpoint: a second runner waits here, then finds the checkpoint
        // moved and is fenced. A batch that fails after it rolls the move back.
        let last = batch.last().map_or(from, |e| e.position);
        let moved = self
            .control
            .advance_active(&tx, self.name(), target.version, (from, last))
            .await
            .map_err(|e| failed(e.into()))?;
        if !moved {
            return Err(ApplyError::Fenced { expected: from });
        }
        self.handler
            .handle(&tx, &target.schema, batch)
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(|e| failed(e.into()))?;
        Ok(())
    }
}
