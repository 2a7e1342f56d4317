//! Pruning a PostgreSQL process store: one statement per table, each deleting at most
//! `limit` rows, each its own transaction.

use std::time::SystemTime;

use deadpool_postgres::Pool;
use tessera_core::process::ProcessManager;
use tessera_core::BoxError;

use super::sql::Sql;
use crate::process::Pruned;

pub(super) async fn prune<P: ProcessManager>(
    pool: &Pool,
    sql: &Sql,
    before: SystemTime,
    limit: usize,
) -> Result<Pruned, BoxError> {
    let client = pool.get().await?;
    let limit = i64::try_from(limit.max(1))?;
    let mut deleted = [0; 3];
    let statements = [&sql.prune_handled, &sql.prune_outbox, &sql.prune_deadlines];
    for (n, text) in deleted.iter_mut().zip(statements) {
        let statement = client.prepare_cached(text).await?;
        *n = usize::try_from(
            client
                .execute(&statement, &[&P::NAME, &before, &limit])
                .await?,
        )?;
    }
    let [handled, outbox, deadlines] = deleted;
    Ok(Pruned {
        handled,
        outbox,
        deadlines,
    })
}
