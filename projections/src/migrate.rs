//! Versioned migrations of the tables the read side creates (checkpoints, projection
//! control, process stores), recorded per schema and component in
//! `{schema}.tessera_read_migrations`, each run once under the read side's advisory
//! lock, as the store's own migrations are.

use deadpool_postgres::Transaction;
use tessera_postgres::SchemaName;

use crate::sql::in_schema;
use crate::PgError;

/// One versioned migration script of one component. Never edit a released one: add
/// the next.
pub(crate) struct Migration {
    pub(crate) version: i32,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// Brings `component`'s tables in `schema` up to date inside `tx`, holding the read
/// side's advisory lock to the end of `tx`: each migration not yet recorded runs and
/// is recorded. Running it again changes nothing.
pub(crate) async fn run(
    tx: &Transaction<'_>,
    schema: &SchemaName,
    component: &str,
    migrations: &[Migration],
) -> Result<(), PgError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('tessera_read_side_ddl'))",
        &[],
    )
    .await?;
    tx.batch_execute(&in_schema(include_str!("migrations/create.sql"), schema))
        .await?;
    let applied = tx
        .query(
            &in_schema(include_str!("migrations/applied.sql"), schema),
            &[&component],
        )
        .await?
        .iter()
        .map(|row| row.try_get::<_, i32>(0))
        .collect::<Result<Vec<_>, _>>()?;
    let record = in_schema(include_str!("migrations/record.sql"), schema);
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        tracing::info!(schema = %schema, component, version = m.version, name = m.name, "applying read-side migration");
        tx.batch_execute(&in_schema(m.sql, schema)).await?;
        tx.execute(&record, &[&component, &m.version, &m.name])
            .await?;
    }
    let latest = migrations.last().map_or(0, |m| m.version);
    if let Some(newer) = applied.iter().copied().filter(|v| *v > latest).max() {
        tracing::warn!(schema = %schema, component, newer, known = latest, "read-side tables were migrated by a newer version of tessera-projections");
    }
    Ok(())
}
