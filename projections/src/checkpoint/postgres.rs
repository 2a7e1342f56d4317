//! Checkpoints in a PostgreSQL table: `{schema}.checkpoints`.

use std::sync::Arc;

use deadpool_postgres::{GenericClient, Pool, Transaction};
use tessera_core::{BoxError, Position};
use tessera_postgres::SchemaName;
use tokio_postgres::Statement;

use super::CheckpointStore;
use crate::sql::{from_columns, in_schema, to_columns};
use crate::PgError;

/// The checkpoint table's migrations.
const MIGRATIONS: &[crate::migrate::Migration] = &[crate::migrate::Migration {
    version: 1,
    name: "checkpoints (converting the two shapes of earlier releases)",
    sql: include_str!("sql/create.sql"),
}];

/// The checkpoint statements of one schema, filled in once.
struct Sql {
    load: String,
    lock: String,
    write: String,
    advance: String,
    load_all: String,
    advance_all: String,
    register: String,
    remove: String,
    summary: String,
}

impl Sql {
    fn new(schema: &SchemaName) -> Self {
        Self {
            load: in_schema(include_str!("sql/load.sql"), schema),
            lock: in_schema(include_str!("sql/lock.sql"), schema),
            write: in_schema(include_str!("sql/write.sql"), schema),
            advance: in_schema(include_str!("sql/advance.sql"), schema),
            load_all: in_schema(include_str!("sql/load_all.sql"), schema),
            advance_all: in_schema(include_str!("sql/advance_all.sql"), schema),
            register: in_schema(include_str!("sql/register.sql"), schema),
            remove: in_schema(include_str!("sql/remove.sql"), schema),
            summary: in_schema(include_str!("sql/summary.sql"), schema),
        }
    }
}

/// Checkpoints in `{schema}.checkpoints`, one row per reader. Clones share the pool.
///
/// Readers that write their effects to PostgreSQL (projections, process managers) move
/// their row inside the transaction that writes the effects, so both commit together;
/// [`CheckpointStore::advance`] is for the rest (reactors, relays).
#[derive(Clone)]
pub struct PgCheckpoints {
    pool: Pool,
    schema: SchemaName,
    sql: Arc<Sql>,
}

impl PgCheckpoints {
    /// Checkpoints in `schema` (lower-case letters, digits and `_`; see
    /// [`SchemaName`]), creating the schema and table if missing, and bringing a table of
    /// an earlier release to the current shape, under an advisory lock.
    pub async fn new(pool: Pool, schema: &str) -> Result<Self, PgError> {
        let schema = SchemaName::new(schema)?;
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        Self::create(&tx, &schema).await?;
        tx.commit().await?;
        drop(client);
        Ok(Self::open(pool, schema))
    }

    /// The checkpoints of a schema whose table [`create`](Self::create) made.
    pub(crate) fn open(pool: Pool, schema: SchemaName) -> Self {
        Self {
            sql: Arc::new(Sql::new(&schema)),
            pool,
            schema,
        }
    }

    /// Creates (or brings up to date) the table in `schema`, inside `tx`, under the read
    /// side's advisory lock (held to the end of `tx`), as a recorded migration.
    pub(crate) async fn create(tx: &Transaction<'_>, schema: &SchemaName) -> Result<(), PgError> {
        crate::migrate::run(tx, schema, "checkpoints", MIGRATIONS).await
    }

    /// How many checkpoints are named `{prefix}…`, and when one of them last moved: an
    /// inbox keeps one per source stream (`{consumer}:{stream}`), so this is what a
    /// status page shows of an inbox without its broker.
    pub async fn summary(
        &self,
        prefix: &str,
    ) -> Result<(u64, Option<std::time::SystemTime>), PgError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(&self.sql.summary).await?;
        let row = client.query_one(&statement, &[&prefix]).await?;
        let count: i64 = row.get(0);
        Ok((u64::try_from(count).unwrap_or_default(), row.get(1)))
    }

    /// The schema holding the table.
    pub fn schema(&self) -> &SchemaName {
        &self.schema
    }

    /// Ensures `name` has a row (at [`Position::START`] if new), inside `tx`.
    pub(crate) async fn register(
        &self,
        client: &impl GenericClient,
        name: &str,
    ) -> Result<(), PgError> {
        let statement = client.prepare_cached(&self.sql.register).await?;
        client.execute(&statement, &[&name]).await?;
        Ok(())
    }

    /// The checkpoint of `name`, locked until the end of `tx` (`None`: no row).
    pub(crate) async fn lock(
        &self,
        tx: &Transaction<'_>,
        name: &str,
    ) -> Result<Option<Position>, PgError> {
        let statement = tx.prepare_cached(&self.sql.lock).await?;
        let row = tx.query_opt(&statement, &[&name]).await?;
        row.map(|r| from_columns(&r, 0, name)).transpose()
    }

    /// Sets `name` to `to` inside `tx` (after [`lock`](Self::lock) compared it).
    pub(crate) async fn write(
        &self,
        tx: &Transaction<'_>,
        name: &str,
        to: Position,
    ) -> Result<(), PgError> {
        let (commit, prepare) = to_columns(to)?;
        let statement = tx.prepare_cached(&self.sql.write).await?;
        tx.execute(&statement, &[&name, &commit, &prepare]).await?;
        Ok(())
    }

    /// The compare-and-set statement of [`advance_with`](Self::advance_with), prepared
    /// (once per connection), so that a caller can send it together with others.
    pub(crate) async fn advance_statement(
        &self,
        client: &impl GenericClient,
    ) -> Result<Statement, PgError> {
        Ok(client.prepare_cached(&self.sql.advance).await?)
    }

    /// Compare-and-set through `client` (in a transaction, the row stays locked until it
    /// ends): moves `name` from `from` to `to`; false when it was elsewhere. The
    /// statement is sent when the future is first polled.
    pub(crate) async fn advance_with(
        &self,
        client: &impl GenericClient,
        advance: &Statement,
        name: &str,
        (from, to): (Position, Position),
    ) -> Result<bool, PgError> {
        let (fc, fp) = to_columns(from)?;
        let (tc, tp) = to_columns(to)?;
        let moved = client.query(advance, &[&name, &fc, &fp, &tc, &tp]).await?;
        Ok(!moved.is_empty())
    }

    /// The checkpoint of `name` read through `client` (`None`: no row).
    pub(crate) async fn read(
        &self,
        client: &impl GenericClient,
        name: &str,
    ) -> Result<Option<Position>, PgError> {
        let statement = client.prepare_cached(&self.sql.load).await?;
        let row = client.query_opt(&statement, &[&name]).await?;
        row.map(|r| from_columns(&r, 0, name)).transpose()
    }

    /// Deletes the row of `name`.
    pub(crate) async fn remove(
        &self,
        client: &impl GenericClient,
        name: &str,
    ) -> Result<(), PgError> {
        let statement = client.prepare_cached(&self.sql.remove).await?;
        client.execute(&statement, &[&name]).await?;
        Ok(())
    }
}

impl CheckpointStore for PgCheckpoints {
    async fn load(&self, name: &str) -> Result<Position, BoxError> {
        let client = self.pool.get().await?;
        Ok(self.read(&client, name).await?.unwrap_or_default())
    }

    async fn advance(&self, name: &str, from: Position, to: Position) -> Result<bool, BoxError> {
        let client = self.pool.get().await?;
        let statement = self.advance_statement(&client).await?;
        Ok(self
            .advance_with(&client, &statement, name, (from, to))
            .await?)
    }

    /// One statement for all of them.
    async fn load_all(&self, names: &[String]) -> Result<Vec<Position>, BoxError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(&self.sql.load_all).await?;
        let rows = client.query(&statement, &[&names]).await?;
        let mut stored = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let name: &str = row.try_get(0)?;
            stored.insert(name.to_owned(), from_columns(row, 1, name)?);
        }
        Ok(names
            .iter()
            .map(|n| stored.get(n).copied().unwrap_or_default())
            .collect())
    }

    /// One statement for all of them (`sql/advance_all.sql`).
    async fn advance_all(
        &self,
        moves: &[(String, Position, Position)],
    ) -> Result<Vec<bool>, BoxError> {
        if moves.is_empty() {
            return Ok(Vec::new());
        }
        let mut columns: [Vec<i64>; 4] = Default::default();
        let mut names = Vec::with_capacity(moves.len());
        for (name, from, to) in moves {
            let ((fc, fp), (tc, tp)) = (to_columns(*from)?, to_columns(*to)?);
            names.push(name.as_str());
            for (column, value) in columns.iter_mut().zip([fc, fp, tc, tp]) {
                column.push(value);
            }
        }
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(&self.sql.advance_all).await?;
        let [fc, fp, tc, tp] = &columns;
        let rows = client.query(&statement, &[&names, fc, fp, tc, tp]).await?;
        let mut moved = vec![false; moves.len()];
        for row in &rows {
            let n: i64 = row.try_get(0)?;
            if let Some(m) = usize::try_from(n - 1).ok().and_then(|i| moved.get_mut(i)) {
                *m = true;
            }
        }
        Ok(moved)
    }
}
