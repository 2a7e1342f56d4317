//! The statements of one process-store transaction. Every transaction that changes an
//! instance locks its row first, then touches its outbox and deadline rows, and one that
//! changes several locks them all first, in the order of their ids ([`lock_all`]): one
//! lock order, so the runner and the workers never deadlock on each other.

use std::time::SystemTime;

use deadpool_postgres::Transaction;
use tessera_core::process::{Effects, Input, Instance, InstanceId, ProcessManager, Trigger};
use tessera_core::BoxError;
use tokio_postgres::types::{Json, ToSql};

use super::sql::Sql;

/// A read-only repeatable-read transaction on `client`: every statement in it reads one
/// snapshot (a scan of several pages, or an instance's record across its tables).
pub(super) async fn snapshot(
    client: &mut deadpool_postgres::Client,
) -> Result<Transaction<'_>, tokio_postgres::Error> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
}

/// The instance `id`, locked for the rest of the transaction.
pub(super) async fn load<P: ProcessManager>(
    tx: &Transaction<'_>,
    sql: &Sql,
    id: &InstanceId,
) -> Result<Option<Instance<P>>, BoxError> {
    let row = tx
        .query_opt(
            &tx.prepare_cached(&sql.lock_instance).await?,
            &[&P::NAME, &id.as_str()],
        )
        .await?;
    match row {
        Some(row) => Ok(Some(row.try_get::<_, Json<Instance<P>>>("data")?.0)),
        None => Ok(None),
    }
}

/// Locks the instances `ids` (those that exist) for the rest of the transaction, in the
/// order of their ids. A transaction that changes several instances calls it before it
/// touches any of them: with every such transaction taking its locks in one order, the
/// runner and concurrent workers never deadlock on each other.
pub(super) async fn lock_all<P: ProcessManager>(
    tx: &Transaction<'_>,
    sql: &Sql,
    ids: &[&str],
) -> Result<(), BoxError> {
    if !ids.is_empty() {
        tx.query(
            &tx.prepare_cached(&sql.lock_instances).await?,
            &[&P::NAME, &ids],
        )
        .await?;
    }
    Ok(())
}

/// Lets instance `id` react to `input` once per `trigger` (creating it if `start`) and
/// records the outcome.
pub(super) async fn react<P: ProcessManager>(
    tx: &Transaction<'_>,
    sql: &Sql,
    process: &P,
    (id, start): (&InstanceId, bool),
    input: Input<'_, P>,
    (trigger, trace): (Trigger, Option<&crate::process::Traced>),
    now: SystemTime,
) -> Result<(), BoxError> {
    let loaded = load::<P>(tx, sql, id).await?;
    let seen = tx
        .query_opt(
            &tx.prepare_cached(&sql.handled).await?,
            &[&P::NAME, &id.as_str(), &trigger.0],
        )
        .await?;
    if seen.is_some() {
        return Ok(());
    }
    let previous = loaded.as_ref().map(|i| i.version);
    let mut instance = match loaded {
        Some(i) => i,
        None if start => Instance::new(id.clone()),
        None => return Ok(()),
    };
    let mut effects = instance.handle(process, input, trigger);
    effects.traced(trace.map(|t| &t.0), trace.is_some_and(|t| t.1));
    tx.execute(
        &tx.prepare_cached(&sql.mark_handled).await?,
        &[&P::NAME, &id.as_str(), &trigger.0, &now],
    )
    .await?;
    record(tx, sql, &instance, previous, effects, now).await
}

/// Stores the instance (a compare-and-set on its version) and its effects.
pub(super) async fn record<P: ProcessManager>(
    tx: &Transaction<'_>,
    sql: &Sql,
    instance: &Instance<P>,
    previous: Option<u64>,
    effects: Effects<P>,
    now: SystemTime,
) -> Result<(), BoxError> {
    let id = instance.id.as_str();
    if effects.discard_pending {
        tx.execute(
            &tx.prepare_cached(&sql.discard_pending).await?,
            &[&P::NAME, &id, &now],
        )
        .await?;
    }
    for issued in &effects.commands {
        tx.execute(
            &tx.prepare_cached(&sql.enqueue).await?,
            &[&P::NAME, &issued.id.0, &id, &Json(issued), &now],
        )
        .await?;
    }
    let cancel = tx.prepare_cached(&sql.cancel_deadlines).await?;
    for key in &effects.cancel {
        tx.execute(&cancel, &[&P::NAME, &id, &Some(key.as_str()), &now])
            .await?;
    }
    if effects.cancel_all {
        tx.execute(&cancel, &[&P::NAME, &id, &None::<&str>, &now])
            .await?;
    }
    for d in &effects.schedule {
        tx.execute(&cancel, &[&P::NAME, &id, &Some(d.key.as_str()), &now])
            .await?;
        tx.execute(
            &tx.prepare_cached(&sql.schedule).await?,
            &[
                &d.id,
                &P::NAME,
                &id,
                &d.key,
                &crate::process::due_at(now, d.after),
                &Json(&d.timeout),
                &d.trace.as_ref().map(Json),
            ],
        )
        .await?;
    }
    save(tx, sql, instance, previous, now).await
}

async fn save<P: ProcessManager>(
    tx: &Transaction<'_>,
    sql: &Sql,
    instance: &Instance<P>,
    previous: Option<u64>,
    now: SystemTime,
) -> Result<(), BoxError> {
    let version = i64::try_from(instance.version)?;
    let (id, status) = (instance.id.as_str(), instance.status.as_str());
    let json = Json(instance);
    let row: [&(dyn ToSql + Sync); 6] = [&P::NAME, &id, &version, &status, &instance.reason, &json];
    // The change's time, on the clock retention is measured with.
    let written = match previous.map(i64::try_from).transpose()? {
        None => {
            let insert = tx.prepare_cached(&sql.insert_instance).await?;
            let mut params = row.to_vec();
            params.push(&now);
            tx.execute(&insert, &params).await?
        }
        Some(previous) => {
            // The same columns, if the stored version is still `previous`.
            let update = tx.prepare_cached(&sql.update_instance).await?;
            let mut params = row.to_vec();
            params.extend_from_slice(&[&previous, &now]);
            tx.execute(&update, &params).await?
        }
    };
    if written != 1 {
        return Err(format!("instance {id} of {} changed concurrently", P::NAME).into());
    }
    Ok(())
}
