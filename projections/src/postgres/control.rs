//! The control tables: active versions and checkpoints.

use deadpool_postgres::{GenericClient, Pool, Transaction};
use tessera_core::Position;

use super::PgHandler;

/// What went wrong with a PostgreSQL read model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// A projection or schema name that is not a plain identifier.
    #[error("invalid name {0:?}: use lower-case letters, digits and '_' (at most 40 bytes, not starting with a digit)")]
    InvalidName(String),
    /// No connection could be had.
    #[error("no database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A statement failed.
    #[error("database error: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// A stored position does not fit the types (corrupt control table).
    #[error("corrupt checkpoint for {name}: {reason}")]
    Corrupt {
        /// The projection.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The handler's `setup` failed.
    #[error("setting up {name} v{version}: {error}")]
    Setup {
        /// The projection.
        name: String,
        /// The version.
        version: i32,
        /// The handler's error.
        error: tessera_core::BoxError,
    },
    /// Reading the event store failed during a rebuild.
    #[error("reading the event store: {0}")]
    Store(#[from] tessera_core::StoreError),
    /// Another rebuild of the same projection holds the rebuild lock (in this process or
    /// another); this one waited [`REBUILD_LOCK_WAIT`](crate::REBUILD_LOCK_WAIT) and
    /// changed nothing.
    #[error("a rebuild of {name} is already running")]
    RebuildRunning {
        /// The projection.
        name: String,
    },
    /// The connection holding this rebuild's lock was lost (its session killed or timed
    /// out), so another rebuild may have started; this one stopped before switching.
    /// Run it again: it resumes from its checkpoint.
    #[error("the rebuild of {name} lost its lock (its connection ended); run it again to resume")]
    RebuildLockLost {
        /// The projection.
        name: String,
    },
    /// The handler failed on an event during a rebuild.
    #[error("rebuild of {name} failed at {position}: {error}")]
    Handler {
        /// The projection.
        name: String,
        /// Where.
        position: Position,
        /// The handler's error.
        error: tessera_core::BoxError,
    },
}

pub(super) fn check_ident(name: &str) -> Result<(), PgError> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(PgError::InvalidName(name.chars().take(100).collect()))
    }
}

pub(super) fn schema_of(name: &str, version: i32) -> String {
    format!("{name}_v{version}")
}

/// Creates the control tables, and version 1 of `handler` if nothing is active.
pub(super) async fn ensure<H: PgHandler>(
    pool: &Pool,
    control: &str,
    handler: &H,
) -> Result<(), PgError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('tessera_projections_control'))",
        &[],
    )
    .await?;
    tx.batch_execute(&include_str!("control.sql").replace("{control}", control))
        .await?;
    let active = tx
        .query_opt(
            &format!("SELECT version FROM {control}.active WHERE name = $1"),
            &[&handler.name()],
        )
        .await?;
    if active.is_none() {
        create_version(&tx, control, handler, 1).await?;
        tx.execute(
            &format!(
                "INSERT INTO {control}.active (name, version, schema_name) VALUES ($1, 1, $2)"
            ),
            &[&handler.name(), &schema_of(handler.name(), 1)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Creates a version's schema and tables and its checkpoint row at the start.
pub(super) async fn create_version<H: PgHandler>(
    tx: &Transaction<'_>,
    control: &str,
    handler: &H,
    version: i32,
) -> Result<(), PgError> {
    let schema = schema_of(handler.name(), version);
    tx.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE; CREATE SCHEMA \"{schema}\";"
    ))
    .await?;
    handler
        .setup(tx, &format!("\"{schema}\""))
        .await
        .map_err(|error| PgError::Setup {
            name: handler.name().to_owned(),
            version,
            error,
        })?;
    tx.execute(
        &format!(
            "INSERT INTO {control}.checkpoints (name, version) VALUES ($1, $2)
             ON CONFLICT (name, version) DO UPDATE SET commit_pos = 0, prepare_pos = 0, updated_at = now()"
        ),
        &[&handler.name(), &version],
    )
    .await?;
    Ok(())
}

/// The active version and its (quoted) schema.
pub(super) async fn active(
    client: &impl GenericClient,
    control: &str,
    name: &str,
) -> Result<(i32, String), PgError> {
    // Asked on every query of a read model: a cached statement makes it one round trip.
    let select = client
        .prepare_cached(&format!(
            "SELECT version, schema_name FROM {control}.active WHERE name = $1"
        ))
        .await?;
    let row = client.query_one(&select, &[&name]).await?;
    let version: i32 = row.try_get(0)?;
    let schema: String = row.try_get(1)?;
    Ok((version, format!("\"{schema}\"")))
}

pub(super) async fn read_checkpoint(
    client: &impl GenericClient,
    control: &str,
    name: &str,
    version: i32,
) -> Result<Position, PgError> {
    let row = client
        .query_opt(
            &format!("SELECT commit_pos, prepare_pos FROM {control}.checkpoints WHERE name = $1 AND version = $2"),
            &[&name, &version],
        )
        .await?;
    match row {
        Some(row) => to_position(name, row.try_get(0)?, row.try_get(1)?),
        None => Ok(Position::START),
    }
}

/// Locks the active row and the active version's checkpoint; returns both.
pub(super) async fn lock_for_apply(
    tx: &Transaction<'_>,
    control: &str,
    name: &str,
) -> Result<Option<(i32, Position)>, PgError> {
    // Run for every applied batch: a cached statement makes it one round trip.
    let statement = tx
        .prepare_cached(&format!(
            "SELECT a.version, c.commit_pos, c.prepare_pos
               FROM {control}.active a
               JOIN {control}.checkpoints c ON c.name = a.name AND c.version = a.version
              WHERE a.name = $1
              FOR UPDATE"
        ))
        .await?;
    let row = tx.query_opt(&statement, &[&name]).await?;
    row.map(|r| {
        Ok((
            r.try_get(0)?,
            to_position(name, r.try_get(1)?, r.try_get(2)?)?,
        ))
    })
    .transpose()
}

/// Locks one version's checkpoint (for a rebuild); returns it.
pub(super) async fn lock_version(
    tx: &Transaction<'_>,
    control: &str,
    name: &str,
    version: i32,
) -> Result<Option<Position>, PgError> {
    let row = tx
        .query_opt(
            &format!("SELECT commit_pos, prepare_pos FROM {control}.checkpoints WHERE name = $1 AND version = $2 FOR UPDATE"),
            &[&name, &version],
        )
        .await?;
    row.map(|r| to_position(name, r.try_get(0)?, r.try_get(1)?))
        .transpose()
}

pub(super) async fn write_checkpoint(
    tx: &Transaction<'_>,
    control: &str,
    name: &str,
    version: i32,
    p: Position,
) -> Result<(), PgError> {
    let corrupt = |reason: &str| PgError::Corrupt {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let commit = i64::try_from(p.commit).map_err(|_| corrupt("commit position beyond bigint"))?;
    let prepare =
        i64::try_from(p.prepare).map_err(|_| corrupt("prepare position beyond bigint"))?;
    let statement = tx
        .prepare_cached(&format!("UPDATE {control}.checkpoints SET commit_pos = $3, prepare_pos = $4, updated_at = now() WHERE name = $1 AND version = $2"))
        .await?;
    tx.execute(&statement, &[&name, &version, &commit, &prepare])
        .await?;
    Ok(())
}

fn to_position(name: &str, commit: i64, prepare: i64) -> Result<Position, PgError> {
    let corrupt = || PgError::Corrupt {
        name: name.to_owned(),
        reason: format!("negative position {commit}.{prepare}"),
    };
    Ok(Position::new(
        u64::try_from(commit).map_err(|_| corrupt())?,
        u64::try_from(prepare).map_err(|_| corrupt())?,
    ))
}
