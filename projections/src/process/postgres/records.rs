//! What an operator reads of a PostgreSQL process store: pages of instances by id, and
//! one instance's commands, deadlines and handled inputs. Read-only statements, no row
//! locks: they never wait for, nor hold up, the runner and the workers.

use deadpool_postgres::Pool;
use tessera_core::process::{Instance, InstanceId, ProcessManager, Status};
use tessera_core::BoxError;
use tokio_postgres::types::Json;

use super::read::{deadline, entry};
use super::sql::Sql;
use crate::process::{CommandRecord, CommandState, HandledInput, InstanceRecord};

/// The instances (of `status`, if given) after `after`, by id in byte order, at most
/// `limit` (at least 1).
pub(super) async fn page<P: ProcessManager>(
    pool: &Pool,
    sql: &Sql,
    (status, after): (Option<Status>, Option<&InstanceId>),
    limit: usize,
) -> Result<Vec<Instance<P>>, BoxError> {
    // "At or after `from` and not `not`" (see instance_page.sql).
    let (from, not) = match after {
        Some(id) => (id.as_str(), Some(id.as_str())),
        None => ("", None),
    };
    let limit = i64::try_from(limit)?;
    let client = pool.get().await?;
    let rows = match status {
        None => {
            let select = client.prepare_cached(&sql.instance_page).await?;
            client
                .query(&select, &[&P::NAME, &from, &not, &limit])
                .await?
        }
        Some(s) => {
            let select = client.prepare_cached(&sql.instance_page_of_status).await?;
            let status = s.as_str();
            client
                .query(&select, &[&P::NAME, &status, &from, &not, &limit])
                .await?
        }
    };
    rows.iter()
        .map(|r| Ok(r.try_get::<_, Json<Instance<P>>>("data")?.0))
        .collect()
}

/// Instance `id`'s commands, deadlines and handled inputs, read in one read-only
/// snapshot; `None` when there is no such instance.
pub(super) async fn record<P: ProcessManager>(
    pool: &Pool,
    sql: &Sql,
    id: &InstanceId,
) -> Result<Option<InstanceRecord<P::Command>>, BoxError> {
    let mut client = pool.get().await?;
    let tx = super::tx::snapshot(&mut client).await?;
    let key: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&P::NAME, &id.as_str()];
    let exists = tx
        .query_opt(&tx.prepare_cached(&sql.instance).await?, &key)
        .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let commands = tx
        .query(&tx.prepare_cached(&sql.instance_commands).await?, &key)
        .await?
        .iter()
        .map(|r| {
            Ok(CommandRecord {
                entry: entry::<P>(r)?,
                state: CommandState::parse(r.try_get("state")?)?,
            })
        })
        .collect::<Result<_, BoxError>>()?;
    let deadlines = tx
        .query(&tx.prepare_cached(&sql.instance_deadlines).await?, &key)
        .await?
        .iter()
        .map(deadline)
        .collect::<Result<_, _>>()?;
    let handled = tx
        .query(&tx.prepare_cached(&sql.instance_handled).await?, &key)
        .await?
        .iter()
        .map(|r| {
            Ok(HandledInput {
                trigger_id: r.try_get("trigger_id")?,
                handled_at: r.try_get("handled_at")?,
            })
        })
        .collect::<Result<_, BoxError>>()?;
    tx.commit().await?;
    Ok(Some(InstanceRecord {
        commands,
        deadlines,
        handled,
    }))
}
