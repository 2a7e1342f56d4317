//! The control table (which version of each projection is active, in which schema) and
//! the versions' checkpoints beside it.

use deadpool_postgres::{GenericClient, Pool, Transaction};
use tessera_core::Position;
use tessera_postgres::SchemaName;

use super::{PgError, PgHandler};
use crate::checkpoint::PgCheckpoints;
use crate::sql::{from_columns, in_schema};

/// The control table's migrations.
const MIGRATIONS: &[crate::migrate::Migration] = &[crate::migrate::Migration {
    version: 1,
    name: "active versions",
    sql: include_str!("sql/create.sql"),
}];

/// The control statements of one control schema, filled in once.
pub(super) struct Control {
    pub(super) schema: SchemaName,
    pub(super) checkpoints: PgCheckpoints,
    active: String,
    activate: String,
    switch: String,
    lock_active: String,
    advance_active: String,
}

/// The schema of `version` of projection `name`, which also names its checkpoint.
pub(super) fn schema_of(name: &str, version: i32) -> Result<SchemaName, PgError> {
    Ok(SchemaName::new(format!("{name}_v{version}"))?)
}

impl Control {
    /// Creates the control and checkpoint tables in `schema` and version 1 of `handler`
    /// if nothing is active.
    pub(super) async fn ensure<H: PgHandler>(
        pool: &Pool,
        schema: SchemaName,
        handler: &H,
    ) -> Result<Self, PgError> {
        let this = Self {
            checkpoints: PgCheckpoints::open(pool.clone(), schema.clone()),
            active: in_schema(include_str!("sql/active.sql"), &schema),
            activate: in_schema(include_str!("sql/activate.sql"), &schema),
            switch: in_schema(include_str!("sql/switch.sql"), &schema),
            lock_active: in_schema(include_str!("sql/lock_active.sql"), &schema),
            advance_active: in_schema(include_str!("sql/advance_active.sql"), &schema),
            schema,
        };
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        PgCheckpoints::create(&tx, &this.schema).await?;
        crate::migrate::run(&tx, &this.schema, "projection_control", MIGRATIONS).await?;
        if this.read_active(&tx, handler.name()).await?.is_none() {
            this.create_version(&tx, handler, 1).await?;
            let first = schema_of(handler.name(), 1)?;
            tx.execute(&this.activate, &[&handler.name(), &1i32, &first.as_str()])
                .await?;
        }
        tx.commit().await?;
        Ok(this)
    }

    /// Creates a version's schema and tables, and its checkpoint at the start.
    pub(super) async fn create_version<H: PgHandler>(
        &self,
        tx: &Transaction<'_>,
        handler: &H,
        version: i32,
    ) -> Result<(), PgError> {
        let schema = schema_of(handler.name(), version)?;
        tx.batch_execute(&in_schema(include_str!("sql/version_create.sql"), &schema))
            .await?;
        handler
            .setup(tx, &schema.quoted())
            .await
            .map_err(|error| PgError::Setup {
                name: handler.name().to_owned(),
                version,
                error,
            })?;
        self.checkpoints
            .write(tx, schema.as_str(), Position::START)
            .await
    }

    /// Drops a version's schema and checkpoint.
    pub(super) async fn drop_version(
        &self,
        client: &impl GenericClient,
        name: &str,
        version: i32,
    ) -> Result<(), PgError> {
        let schema = schema_of(name, version)?;
        client
            .batch_execute(&in_schema(include_str!("sql/version_drop.sql"), &schema))
            .await?;
        self.checkpoints.remove(client, schema.as_str()).await
    }

    async fn read_active(
        &self,
        client: &impl GenericClient,
        name: &str,
    ) -> Result<Option<(i32, SchemaName)>, PgError> {
        // Asked on every query of a read model: a cached statement makes it one round trip.
        let select = client.prepare_cached(&self.active).await?;
        let Some(row) = client.query_opt(&select, &[&name]).await? else {
            return Ok(None);
        };
        let version: i32 = row.try_get(0)?;
        let schema: String = row.try_get(1)?;
        Ok(Some((version, SchemaName::new(schema)?)))
    }

    /// The active version and its schema.
    pub(super) async fn active(
        &self,
        client: &impl GenericClient,
        name: &str,
    ) -> Result<(i32, SchemaName), PgError> {
        self.read_active(client, name)
            .await?
            .ok_or_else(|| PgError::Corrupt {
                name: name.to_owned(),
                reason: format!("no active version in {}.active", self.schema),
            })
    }

    /// The checkpoint of `version` (`START` when it has none).
    pub(super) async fn checkpoint(
        &self,
        client: &impl GenericClient,
        name: &str,
        version: i32,
    ) -> Result<Option<Position>, PgError> {
        let schema = schema_of(name, version)?;
        self.checkpoints.read(client, schema.as_str()).await
    }

    /// Locks the active row and the active version's checkpoint; returns both.
    pub(super) async fn lock_active(
        &self,
        tx: &Transaction<'_>,
        name: &str,
    ) -> Result<Option<(i32, Position)>, PgError> {
        // Run for every applied batch: a cached statement makes it one round trip.
        let statement = tx.prepare_cached(&self.lock_active).await?;
        let row = tx.query_opt(&statement, &[&name]).await?;
        row.map(|r| Ok((r.try_get(0)?, from_columns(&r, 1, name)?)))
            .transpose()
    }

    /// Moves the checkpoint of `name`'s active version from `from` to `to` inside `tx`,
    /// if `version` is still active and its checkpoint still at `from`, and keeps the
    /// active row and the checkpoint locked: whether it moved. (A live batch's one
    /// statement of control: fenced when it answers `false`.)
    pub(super) async fn advance_active(
        &self,
        tx: &Transaction<'_>,
        name: &str,
        version: i32,
        (from, to): (Position, Position),
    ) -> Result<bool, PgError> {
        let (from_commit, from_prepare) = crate::sql::to_columns(from)?;
        let (to_commit, to_prepare) = crate::sql::to_columns(to)?;
        let statement = tx.prepare_cached(&self.advance_active).await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
            &name,
            &version,
            &from_commit,
            &from_prepare,
            &to_commit,
            &to_prepare,
        ];
        Ok(tx.query_opt(&statement, &params).await?.is_some())
    }

    /// The text of [`advance_active`](Self::advance_active)'s statement (`$1`..`$6` as
    /// there), for a statement that embeds it.
    pub(super) fn advance_active_sql(&self) -> &str {
        &self.advance_active
    }

    /// Locks one version's checkpoint (for a rebuild); returns it.
    pub(super) async fn lock_version(
        &self,
        tx: &Transaction<'_>,
        name: &str,
        version: i32,
    ) -> Result<Option<Position>, PgError> {
        self.checkpoints
            .lock(tx, schema_of(name, version)?.as_str())
            .await
    }

    /// Moves `version`'s checkpoint to `to` inside `tx` (after a lock compared it).
    pub(super) async fn write_checkpoint(
        &self,
        tx: &Transaction<'_>,
        name: &str,
        version: i32,
        to: Position,
    ) -> Result<(), PgError> {
        self.checkpoints
            .write(tx, schema_of(name, version)?.as_str(), to)
            .await
    }

    /// Makes `version` the active one, inside `tx`.
    pub(super) async fn switch(
        &self,
        tx: &Transaction<'_>,
        name: &str,
        version: i32,
    ) -> Result<(), PgError> {
        let schema = schema_of(name, version)?;
        tx.execute(&self.switch, &[&name, &version, &schema.as_str()])
            .await?;
        Ok(())
    }
}
