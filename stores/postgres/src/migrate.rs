//! Embedded, versioned schema migrations, run once each under an advisory lock.

use std::time::Duration;

use tokio_postgres::Client;

use crate::SchemaName;

/// One versioned migration script.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Never edit a released one: add the next.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events, streams, snapshots",
        sql: include_str!("migrations/0001_events.sql"),
    },
    Migration {
        version: 2,
        name: "streams: room for HOT updates",
        sql: include_str!("migrations/0002_streams_fillfactor.sql"),
    },
];

/// The newest schema version this crate knows.
pub(crate) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Brings `schema` up to date in one transaction, holding a transaction-scoped advisory
/// lock so concurrent starters wait for each other (up to `lock_wait`, then the lock
/// timeout's error: a starter stuck in its migration does not hang the others); each
/// migration that runs is recorded in `<schema>.tessera_migrations`. Running it again
/// changes nothing.
pub(crate) async fn run(
    client: &mut Client,
    schema: &SchemaName,
    lock_wait: Duration,
) -> Result<(), tokio_postgres::Error> {
    let q = schema.quoted();
    let tx = client.transaction().await?;
    // In milliseconds, as the server takes it: at least 1 (0 would mean no limit) and
    // at most what it accepts (i32::MAX, about 24.8 days).
    let wait_ms = lock_wait.as_millis().clamp(1, i32::MAX as u128);
    tx.batch_execute(&format!("SET LOCAL lock_timeout = {wait_ms}"))
        .await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&schema.lock_key()])
        .await?;
    // The migrations themselves wait for locks as the session would.
    tx.batch_execute("SET LOCAL lock_timeout TO DEFAULT")
        .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {q};
         CREATE TABLE IF NOT EXISTS {q}.tessera_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await?;
    let applied = tx
        .query(&format!("SELECT version FROM {q}.tessera_migrations"), &[])
        .await?
        .iter()
        .map(|row| row.try_get::<_, i32>(0))
        .collect::<Result<Vec<_>, _>>()?;
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        tracing::info!(schema = %schema, version = m.version, name = m.name, "applying migration");
        tx.batch_execute(&m.sql.replace("{schema}", &q)).await?;
        tx.execute(
            &format!("INSERT INTO {q}.tessera_migrations (version, name) VALUES ($1, $2)"),
            &[&m.version, &m.name],
        )
        .await?;
    }
    if let Some(newer) = applied.iter().copied().filter(|v| *v > latest()).max() {
        tracing::warn!(schema = %schema, newer, known = latest(), "schema was migrated by a newer version of tessera-postgres");
    }
    tx.commit().await
}
