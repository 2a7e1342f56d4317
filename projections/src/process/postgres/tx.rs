//! The statements of one process-store transaction. Every transaction that changes an
//! instance locks its row first, then touches its outbox and deadline rows: one lock
//! order, so the runner and the workers never deadlock on each other.

use std::time::SystemTime;

use deadpool_postgres::Transaction;
use tessera_core::process::{Effects, Input, Instance, InstanceId, ProcessManager, Trigger};
use tessera_core::BoxError;
use tokio_postgres::types::Json;

/// The instance `id`, locked for the rest of the transaction.
pub(super) async fn load<P: ProcessManager>(
    tx: &Transaction<'_>,
    schema: &str,
    id: &InstanceId,
) -> Result<Option<Instance<P>>, BoxError> {
    let row = tx
        .query_opt(&tx.prepare_cached(&format!("SELECT data FROM {schema}.instances WHERE process = $1 AND instance_id = $2 FOR UPDATE")).await?,
            &[&P::NAME, &id.as_str()],
        )
        .await?;
    match row {
        Some(row) => Ok(Some(row.try_get::<_, Json<Instance<P>>>("data")?.0)),
        None => Ok(None),
    }
}

/// Lets instance `id` react to `input` once per `trigger` (creating it if `start`) and
/// records the outcome.
pub(super) async fn react<P: ProcessManager>(
    tx: &Transaction<'_>,
    schema: &str,
    process: &P,
    (id, start): (&InstanceId, bool),
    input: Input<'_, P>,
    trigger: Trigger,
    now: SystemTime,
) -> Result<(), BoxError> {
    let loaded = load::<P>(tx, schema, id).await?;
    let seen = tx
        .query_opt(&tx.prepare_cached(&format!("SELECT 1 FROM {schema}.handled WHERE process = $1 AND instance_id = $2 AND trigger_id = $3")).await?,
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
    let effects = instance.handle(process, input, trigger);
    tx.execute(
        &tx.prepare_cached(&format!(
            "INSERT INTO {schema}.handled (process, instance_id, trigger_id) VALUES ($1, $2, $3)"
        ))
        .await?,
        &[&P::NAME, &id.as_str(), &trigger.0],
    )
    .await?;
    record(tx, schema, &instance, previous, effects, now).await
}

/// Stores the instance (a compare-and-set on its version) and its effects.
pub(super) async fn record<P: ProcessManager>(
    tx: &Transaction<'_>,
    schema: &str,
    instance: &Instance<P>,
    previous: Option<u64>,
    effects: Effects<P>,
    now: SystemTime,
) -> Result<(), BoxError> {
    let id = instance.id.as_str();
    if effects.discard_pending {
        tx.execute(&tx.prepare_cached(&format!("UPDATE {schema}.outbox SET state = 'discarded' WHERE process = $1 AND instance_id = $2 AND state = 'pending'")).await?,
            &[&P::NAME, &id],
        )
        .await?;
    }
    for issued in &effects.commands {
        tx.execute(&tx.prepare_cached(&format!("INSERT INTO {schema}.outbox (process, command_id, instance_id, issued, not_before) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (command_id) DO NOTHING")).await?,
            &[&P::NAME, &issued.id.0, &id, &Json(issued), &now],
        )
        .await?;
    }
    let cancel = tx.prepare_cached(&format!("UPDATE {schema}.deadlines SET state = 'cancelled' WHERE process = $1 AND instance_id = $2 AND state = 'scheduled' AND ($3::text IS NULL OR key = $3)")).await?;
    for key in &effects.cancel {
        tx.execute(&cancel, &[&P::NAME, &id, &Some(key.as_str())])
            .await?;
    }
    if effects.cancel_all {
        tx.execute(&cancel, &[&P::NAME, &id, &None::<&str>]).await?;
    }
    for d in &effects.schedule {
        tx.execute(&cancel, &[&P::NAME, &id, &Some(d.key.as_str())])
            .await?;
        tx.execute(&tx.prepare_cached(&format!("INSERT INTO {schema}.deadlines (id, process, instance_id, key, due_at, timeout) VALUES ($1, $2, $3, $4, $5, $6)")).await?,
            &[&d.id, &P::NAME, &id, &d.key, &(now + d.after), &Json(&d.timeout)],
        )
        .await?;
    }
    save(tx, schema, instance, previous).await
}

async fn save<P: ProcessManager>(
    tx: &Transaction<'_>,
    schema: &str,
    instance: &Instance<P>,
    previous: Option<u64>,
) -> Result<(), BoxError> {
    let version = i64::try_from(instance.version)?;
    let (id, status) = (instance.id.as_str(), instance.status.as_str());
    let written = match previous {
        None => {
            tx.execute(&tx.prepare_cached(&format!("INSERT INTO {schema}.instances (process, instance_id, version, status, reason, data) VALUES ($1, $2, $3, $4, $5, $6)")).await?,
                &[&P::NAME, &id, &version, &status, &instance.reason, &Json(instance)],
            )
            .await?
        }
        Some(previous) => {
            tx.execute(&tx.prepare_cached(&format!("UPDATE {schema}.instances SET version = $3, status = $4, reason = $5, data = $6, updated_at = now() WHERE process = $1 AND instance_id = $2 AND version = $7")).await?,
                &[&P::NAME, &id, &version, &status, &instance.reason, &Json(instance), &i64::try_from(previous)?],
            )
            .await?
        }
    };
    if written != 1 {
        return Err(format!("instance {id} of {} changed concurrently", P::NAME).into());
    }
    Ok(())
}
