//! The worker's transactions: settling a dispatch outcome, marking many commands
//! dispatched, firing one deadline.

use std::collections::HashSet;
use std::time::SystemTime;

use tessera_core::process::{CommandKind, Input, InstanceId, Issued, ProcessManager, Trigger};
use tessera_core::trace::TraceContext;
use tessera_core::BoxError;
use tokio_postgres::types::Json;

use super::{tx, PgProcess};

/// Applies a dispatch outcome to the command's outbox row and instance.
pub(super) async fn settle<P: ProcessManager>(
    this: &PgProcess<P>,
    issued: &Issued<P::Command>,
    error: Option<&str>,
    retry_at: Option<SystemTime>,
) -> Result<(), BoxError> {
    let mut client = this.pool.get().await?;
    let tx = client.transaction().await?;
    let sql = &*this.sql;
    let loaded = tx::load::<P>(&tx, sql, &issued.instance).await?;
    let now = this.clock.now();
    let (state, not_before) = match (error, retry_at) {
        (None, _) => ("dispatched", None),
        (Some(_), Some(at)) => ("pending", Some(at)),
        (Some(_), None) => ("failed", None),
    };
    let changed = tx
        .execute(
            &tx.prepare_cached(&sql.settle_outbox).await?,
            &[&issued.id.0, &state, &error, &not_before, &now],
        )
        .await?;
    if let (1, Some(mut instance), "dispatched" | "failed") = (changed, loaded, state) {
        let previous = instance.version;
        let effects = match error {
            None => instance.dispatched(issued),
            Some(reason) => instance.failed(&this.process, issued, reason),
        };
        if instance.version != previous {
            tx::record(&tx, sql, &instance, Some(previous), effects, now).await?;
        }
    }
    tx.commit().await?;
    if state == "failed" {
        this.wake.notify_one();
    }
    Ok(())
}

/// Marks `issued` dispatched. Forward commands alone ([`forward_dispatched`]): one
/// statement, no instance locked. With a compensation among them, in one transaction:
/// their instances locked in the order of their ids, then one statement for every
/// outbox row, then what a dispatched compensation does to its instance.
pub(super) async fn dispatched_all<P: ProcessManager>(
    this: &PgProcess<P>,
    issued: &[Issued<P::Command>],
) -> Result<(), BoxError> {
    if issued.is_empty() {
        return Ok(());
    }
    if issued
        .iter()
        .all(|i| !matches!(i.kind, CommandKind::Compensation { .. }))
    {
        return forward_dispatched(this, issued).await;
    }
    let mut client = this.pool.get().await?;
    let tx = client.transaction().await?;
    let sql = &*this.sql;
    let mut instances: Vec<&str> = issued.iter().map(|i| i.instance.as_str()).collect();
    instances.sort_unstable();
    instances.dedup();
    tx::lock_all::<P>(&tx, sql, &instances).await?;
    let ids: Vec<uuid::Uuid> = issued.iter().map(|i| i.id.0).collect();
    let now = this.clock.now();
    let marked = mark(&tx, &sql.mark_dispatched, &ids, now).await?;
    for one in issued {
        if !marked.contains(&one.id.0) || !matches!(one.kind, CommandKind::Compensation { .. }) {
            continue;
        }
        if let Some(mut instance) = tx::load::<P>(&tx, sql, &one.instance).await? {
            let previous = instance.version;
            let effects = instance.dispatched(one);
            if instance.version != previous {
                tx::record(&tx, sql, &instance, Some(previous), effects, now).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Marks forward commands dispatched without locking their instances: a forward
/// command's mark changes its outbox row and nothing else, and waiting for the
/// instances' locks made the worker's marks queue behind the runner's batches (and the
/// runner's batches behind the marks) during a sale.
///
/// The first statement marks every row no other transaction holds, and waits for none.
/// A row it did not mark and that is still pending (one it skipped) is marked afterwards
/// on its own, in a statement of its own: it then waits for the transaction holding it
/// (a runner discarding the instance's commands, after which the row is no longer
/// pending and stays as that transaction left it) while holding no lock itself, so the
/// worker's marks are never part of a deadlock.
async fn forward_dispatched<P: ProcessManager>(
    this: &PgProcess<P>,
    issued: &[Issued<P::Command>],
) -> Result<(), BoxError> {
    let client = this.pool.get().await?;
    let sql = &*this.sql;
    let ids: Vec<uuid::Uuid> = issued.iter().map(|i| i.id.0).collect();
    let now = this.clock.now();
    let marked = mark(&client, &sql.mark_dispatched_free, &ids, now).await?;
    if marked.len() == ids.len() {
        return Ok(());
    }
    // Off the hot path: the rows skipped (or no longer pending) are looked at again.
    let rest: Vec<uuid::Uuid> = ids.into_iter().filter(|id| !marked.contains(id)).collect();
    let skipped = client
        .query(&client.prepare_cached(&sql.still_pending).await?, &[&rest])
        .await?;
    let one = client.prepare_cached(&sql.mark_dispatched).await?;
    for row in skipped {
        let id: uuid::Uuid = row.try_get("command_id")?;
        client.query(&one, &[&[id].as_slice(), &now]).await?;
    }
    Ok(())
}

/// Runs a mark statement (`mark_dispatched` or `mark_dispatched_free`) over the
/// commands `ids` at `now`: the ids it marked.
async fn mark(
    client: &impl deadpool_postgres::GenericClient,
    statement: &str,
    ids: &[uuid::Uuid],
    now: SystemTime,
) -> Result<HashSet<uuid::Uuid>, BoxError> {
    let rows = client
        .query(&client.prepare_cached(statement).await?, &[&ids, &now])
        .await?;
    rows.iter()
        .map(|row| row.try_get("command_id").map_err(BoxError::from))
        .collect()
}

pub(super) async fn fire_one<P: ProcessManager>(
    this: &PgProcess<P>,
    id: uuid::Uuid,
    instance: &InstanceId,
) -> Result<bool, BoxError> {
    let mut client = this.pool.get().await?;
    let tx = client.transaction().await?;
    let sql = &*this.sql;
    // Lock order: the instance, then the deadline, whose claim is a compare-and-set.
    tx::load::<P>(&tx, sql, instance).await?;
    let now = this.clock.now();
    let claimed = tx
        .query_opt(&tx.prepare_cached(&sql.claim_deadline).await?, &[&id, &now])
        .await?;
    let Some(row) = claimed else { return Ok(false) };
    let timeout: Json<P::Timeout> = row.try_get("timeout")?;
    let trace: Option<Json<TraceContext>> = row.try_get("trace")?;
    let trace = trace.map(|t| (t.0, true));
    let input = Input::Timeout(&timeout.0);
    tx::react(
        &tx,
        sql,
        this.process.as_ref(),
        (instance, false),
        input,
        (Trigger(id), trace.as_ref()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
