//! A batch of the log applied to the process's instances with set-based statements: a
//! round trip per kind of row written, not per event.
//!
//! The instances are loaded (and locked, in the order of their ids) in one statement,
//! the handled check is one statement, and the reactions run in memory in the batch's
//! order, so an instance that reacts to several events of the batch sees each one's
//! outcome. Their effects are written in *rounds*: round `k` holds the `k`-th reaction of
//! every instance, so one instance's effects reach the tables in the order its reactions
//! made them (its commands discarded before the next ones are queued, a deadline
//! cancelled before its replacement is stored), exactly as one statement per effect
//! would have left them. Each instance is then stored once, a compare-and-set on the
//! version it was loaded at.

use std::collections::{HashMap, HashSet};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::SystemTime;

use deadpool_postgres::Transaction;
use futures_util::future::{maybe_done, try_join, BoxFuture, MaybeDone};
use tessera_core::process::{Effects, Input, Instance, InstanceId, ProcessManager, Trigger};
use tessera_core::BoxError;
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::Statement;
use uuid::Uuid;

use super::sql::Sql;
use crate::process::Traced;

/// One event of the batch, routed to an instance.
pub(super) struct Reaction<'a, P: ProcessManager> {
    /// The instance it is for.
    pub(super) id: &'a InstanceId,
    /// Whether it starts the instance if there is none.
    pub(super) start: bool,
    /// The event.
    pub(super) event: &'a P::Event,
    /// The event's id, as the trigger of the reaction.
    pub(super) trigger: Trigger,
    /// The event's trace context.
    pub(super) trace: Option<&'a Traced>,
}

/// A statement sent and not yet answered: the batch sends its writes together
/// (pipelined), and the server runs them in the order sent.
type Sent<'a> = BoxFuture<'a, Result<u64, tokio_postgres::Error>>;

/// Sends `statement` with `params` through `tx` once polled.
fn pipelined<'a>(
    tx: &'a Transaction<'_>,
    statement: &'a Statement,
    params: Vec<&'a (dyn ToSql + Sync)>,
) -> Sent<'a> {
    Box::pin(tx.execute_raw(statement, params))
}

/// Waits for every statement of `sent`, first polling each once in order (which sends
/// it), and returns their answers in that order, or the first error. (`try_join_all`
/// polls in order only up to a size; the order here must hold for any number.)
async fn in_order(sent: Vec<Sent<'_>>) -> Result<Vec<u64>, tokio_postgres::Error> {
    let mut sent: Vec<MaybeDone<Sent<'_>>> = sent.into_iter().map(maybe_done).collect();
    poll_fn(|cx| {
        let mut done = true;
        for one in &mut sent {
            done &= Pin::new(one).poll(cx).is_ready();
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    sent.iter_mut()
        .map(|one| {
            Pin::new(one)
                .take_output()
                .unwrap_or_else(|| unreachable!("every statement answered"))
        })
        .collect()
}

/// What a batch reads before its instances react: those that exist (locked for the
/// transaction) and the triggers they handled before.
pub(super) struct Loaded<P: ProcessManager> {
    instances: HashMap<String, Instance<P>>,
    seen: HashSet<Uuid>,
}

/// The statements of a batch's reads, prepared (once per connection) before any is
/// sent, so that the reads leave in the order they are polled.
pub(super) struct Reads {
    load: Statement,
    handled: Statement,
}

impl Reads {
    pub(super) async fn prepare(tx: &Transaction<'_>, sql: &Sql) -> Result<Self, BoxError> {
        Ok(Self {
            load: tx.prepare_cached(&sql.load_instances).await?,
            handled: tx.prepare_cached(&sql.handled_any).await?,
        })
    }
}

/// Loads the batch's instances that exist (locked in the order of their ids), then reads
/// which of its triggers they handled before: two statements sent together, run in
/// that order, so the handled check reads once the locks are held, as it did when it
/// waited for them.
pub(super) async fn load<P: ProcessManager>(
    tx: &Transaction<'_>,
    reads: &Reads,
    reactions: &[Reaction<'_, P>],
) -> Result<Loaded<P>, BoxError> {
    if reactions.is_empty() {
        let (instances, seen) = (HashMap::new(), HashSet::new());
        return Ok(Loaded { instances, seen });
    }
    let mut ids: Vec<&str> = reactions.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let pairs: Vec<&str> = reactions.iter().map(|r| r.id.as_str()).collect();
    let triggers: Vec<Uuid> = reactions.iter().map(|r| r.trigger.0).collect();
    let (rows, handled) = try_join(
        tx.query(&reads.load, &[&P::NAME, &ids]),
        tx.query(&reads.handled, &[&P::NAME, &pairs, &triggers]),
    )
    .await?;
    let mut instances = HashMap::with_capacity(rows.len());
    for row in rows {
        let instance = row.try_get::<_, Json<Instance<P>>>("data")?.0;
        instances.insert(row.try_get("instance_id")?, instance);
    }
    // Each event of the batch is routed to one instance, so its trigger names the pair.
    let seen = handled
        .iter()
        .map(|row| row.try_get(1).map_err(BoxError::from))
        .collect::<Result<_, _>>()?;
    Ok(Loaded { instances, seen })
}

/// Lets each instance react to its events of the batch, once per trigger, and records
/// every outcome; the caller's transaction holds it all, `loaded` what it read.
pub(super) async fn react_all<P: ProcessManager>(
    tx: &Transaction<'_>,
    sql: &Sql,
    process: &P,
    (reactions, loaded): (&[Reaction<'_, P>], Loaded<P>),
    now: SystemTime,
) -> Result<(), BoxError> {
    if reactions.is_empty() {
        return Ok(());
    }
    let Loaded {
        mut instances,
        seen,
    } = loaded;
    let previous: HashMap<String, u64> = instances
        .iter()
        .map(|(id, i)| (id.clone(), i.version))
        .collect();
    let mut rounds: Vec<Round<'_, P>> = Vec::new();
    let mut reacted: HashMap<&str, usize> = HashMap::new();
    let mut handled_ids: Vec<&str> = Vec::new();
    let mut handled_triggers: Vec<Uuid> = Vec::new();
    for r in reactions {
        let id = r.id.as_str();
        if seen.contains(&r.trigger.0) {
            continue;
        }
        if !instances.contains_key(id) {
            if !r.start {
                continue;
            }
            instances.insert(id.to_owned(), Instance::new(r.id.clone()));
        }
        let Some(instance) = instances.get_mut(id) else {
            continue;
        };
        let mut effects = instance.handle(process, Input::Event(r.event), r.trigger);
        effects.traced(r.trace.map(|t| &t.0), r.trace.is_some_and(|t| t.1));
        handled_ids.push(id);
        handled_triggers.push(r.trigger.0);
        let round = reacted.entry(id).or_default();
        if rounds.len() <= *round {
            rounds.push(Round::default());
        }
        rounds[*round].add(id, effects, now);
        *round += 1;
    }
    let mut saved: Vec<&str> = reacted.into_keys().collect();
    saved.sort_unstable();
    let mut new = Rows::default();
    let mut changed = Rows::default();
    let mut versions: Vec<i64> = Vec::new();
    for id in saved {
        let instance = &instances[id];
        match previous.get(id) {
            None => new.push(instance)?,
            Some(&version) => {
                changed.push(instance)?;
                versions.push(i64::try_from(version)?);
            }
        }
    }
    // Every write of the batch, sent together in the order one at a time would run
    // them: the rounds, the handled records, the instances (the compare-and-set last).
    let writes = Writes::prepare(tx, sql).await?;
    let mut sent: Vec<Sent<'_>> = Vec::new();
    for round in &rounds {
        round.queue(tx, &writes, &now, &mut sent);
    }
    if !handled_ids.is_empty() {
        let params: Vec<&(dyn ToSql + Sync)> =
            vec![&P::NAME, &handled_ids, &handled_triggers, &now];
        sent.push(pipelined(tx, &writes.mark_handled, params));
    }
    if !new.ids.is_empty() {
        let mut params = new.params().to_vec();
        params.push(&now);
        sent.push(pipelined(tx, &writes.insert_instances, params));
    }
    let compared = !changed.ids.is_empty();
    if compared {
        let mut params = changed.params().to_vec();
        params.extend_from_slice(&[&versions, &now]);
        sent.push(pipelined(tx, &writes.update_instances, params));
    }
    let done = in_order(sent).await?;
    if compared {
        let written = *done.last().ok_or("no answer to the instances' update")?;
        if written != changed.ids.len() as u64 {
            return Err(format!(
                "{} of {} instances of {} changed concurrently",
                changed.ids.len() as u64 - written,
                changed.ids.len(),
                P::NAME
            )
            .into());
        }
    }
    Ok(())
}

/// The statements of a batch's writes, prepared before any is sent.
struct Writes {
    discard: Statement,
    enqueue: Statement,
    cancel: Statement,
    schedule: Statement,
    mark_handled: Statement,
    insert_instances: Statement,
    update_instances: Statement,
}

impl Writes {
    async fn prepare(tx: &Transaction<'_>, sql: &Sql) -> Result<Self, BoxError> {
        Ok(Self {
            discard: tx.prepare_cached(&sql.discard_pending_all).await?,
            enqueue: tx.prepare_cached(&sql.enqueue_all).await?,
            cancel: tx.prepare_cached(&sql.cancel_deadlines_all).await?,
            schedule: tx.prepare_cached(&sql.schedule_all).await?,
            mark_handled: tx.prepare_cached(&sql.mark_handled_all).await?,
            insert_instances: tx.prepare_cached(&sql.insert_instances).await?,
            update_instances: tx.prepare_cached(&sql.update_instances).await?,
        })
    }
}

/// The `k`-th reaction of every instance that reacted at least `k` times: what it writes.
struct Round<'a, P: ProcessManager> {
    discard: Vec<&'a str>,
    command_ids: Vec<Uuid>,
    command_instances: Vec<&'a str>,
    commands: Vec<Json<tessera_core::process::Issued<P::Command>>>,
    cancel_instances: Vec<&'a str>,
    cancel_keys: Vec<Option<String>>,
    deadline_ids: Vec<Uuid>,
    deadline_instances: Vec<&'a str>,
    deadline_keys: Vec<String>,
    deadline_due: Vec<SystemTime>,
    deadline_timeouts: Vec<Json<P::Timeout>>,
    deadline_traces: Vec<Option<Json<tessera_core::trace::TraceContext>>>,
    deadline_replaced: Vec<bool>,
}

impl<P: ProcessManager> Default for Round<'_, P> {
    fn default() -> Self {
        Self {
            discard: Vec::new(),
            command_ids: Vec::new(),
            command_instances: Vec::new(),
            commands: Vec::new(),
            cancel_instances: Vec::new(),
            cancel_keys: Vec::new(),
            deadline_ids: Vec::new(),
            deadline_instances: Vec::new(),
            deadline_keys: Vec::new(),
            deadline_due: Vec::new(),
            deadline_timeouts: Vec::new(),
            deadline_traces: Vec::new(),
            deadline_replaced: Vec::new(),
        }
    }
}

impl<'a, P: ProcessManager> Round<'a, P> {
    /// Adds one reaction's effects, in the order one statement each would apply them:
    /// discard, queue, cancel, schedule (each scheduled deadline replacing its key's).
    fn add(&mut self, id: &'a str, effects: Effects<P>, now: SystemTime) {
        if effects.discard_pending {
            self.discard.push(id);
        }
        for issued in effects.commands {
            self.command_ids.push(issued.id.0);
            self.command_instances.push(id);
            self.commands.push(Json(issued));
        }
        for key in effects.cancel {
            self.cancel_instances.push(id);
            self.cancel_keys.push(Some(key));
        }
        if effects.cancel_all {
            self.cancel_instances.push(id);
            self.cancel_keys.push(None);
        }
        let keys: Vec<String> = effects.schedule.iter().map(|d| d.key.clone()).collect();
        for (n, d) in effects.schedule.into_iter().enumerate() {
            self.cancel_instances.push(id);
            self.cancel_keys.push(Some(d.key.clone()));
            self.deadline_replaced.push(keys[n + 1..].contains(&d.key));
            self.deadline_ids.push(d.id);
            self.deadline_instances.push(id);
            self.deadline_due.push(crate::process::due_at(now, d.after));
            self.deadline_keys.push(d.key);
            self.deadline_timeouts.push(Json(d.timeout));
            self.deadline_traces.push(d.trace.map(Json));
        }
    }

    /// Queues the round's writes: a statement per kind of change it holds.
    fn queue<'b>(
        &'b self,
        tx: &'b Transaction<'_>,
        writes: &'b Writes,
        now: &'b SystemTime,
        sent: &mut Vec<Sent<'b>>,
    ) {
        if !self.discard.is_empty() {
            let params: Vec<&(dyn ToSql + Sync)> = vec![&P::NAME, &self.discard, now];
            sent.push(pipelined(tx, &writes.discard, params));
        }
        if !self.commands.is_empty() {
            let params: Vec<&(dyn ToSql + Sync)> = vec![
                &P::NAME,
                &self.command_ids,
                &self.command_instances,
                &self.commands,
                now,
            ];
            sent.push(pipelined(tx, &writes.enqueue, params));
        }
        if !self.cancel_instances.is_empty() {
            let params: Vec<&(dyn ToSql + Sync)> =
                vec![&P::NAME, &self.cancel_instances, &self.cancel_keys, now];
            sent.push(pipelined(tx, &writes.cancel, params));
        }
        if !self.deadline_ids.is_empty() {
            let params: Vec<&(dyn ToSql + Sync)> = vec![
                &P::NAME,
                &self.deadline_ids,
                &self.deadline_instances,
                &self.deadline_keys,
                &self.deadline_due,
                &self.deadline_timeouts,
                &self.deadline_traces,
                now,
                &self.deadline_replaced,
            ];
            sent.push(pipelined(tx, &writes.schedule, params));
        }
    }
}

/// Instances' columns, one array each.
struct Rows<'a, T> {
    ids: Vec<&'a str>,
    versions: Vec<i64>,
    statuses: Vec<&'a str>,
    reasons: Vec<Option<&'a str>>,
    data: Vec<Json<&'a T>>,
}

impl<T> Default for Rows<'_, T> {
    fn default() -> Self {
        Self {
            ids: Vec::new(),
            versions: Vec::new(),
            statuses: Vec::new(),
            reasons: Vec::new(),
            data: Vec::new(),
        }
    }
}

impl<'a, P: ProcessManager> Rows<'a, Instance<P>> {
    fn push(&mut self, instance: &'a Instance<P>) -> Result<(), BoxError> {
        self.ids.push(instance.id.as_str());
        self.versions.push(i64::try_from(instance.version)?);
        self.statuses.push(instance.status.as_str());
        self.reasons.push(instance.reason.as_deref());
        self.data.push(Json(instance));
        Ok(())
    }

    /// The process name and the five arrays, as statement parameters.
    fn params(&self) -> [&(dyn ToSql + Sync); 6] {
        [
            &P::NAME,
            &self.ids,
            &self.versions,
            &self.statuses,
            &self.reasons,
            &self.data,
        ]
    }
}
