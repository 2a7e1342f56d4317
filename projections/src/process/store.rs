//! What the worker needs from a process store, and what a store shows of its contents.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use tessera_core::process::{Correlation, Instance, InstanceId, Issued, ProcessManager, Status};
use tessera_core::{decode_recorded, BoxError, CodecError, RecordedEvent, Upcasters};

use tokio::sync::Notify;

use super::record::page_limit;
use super::{Clock, InstanceRecord, Pruned};
use crate::Subscriber;

/// The commands a [`ProcessStore::due`] scan found.
#[derive(Debug, Clone)]
pub struct Due<C> {
    /// The commands that may go now, oldest first.
    pub entries: Vec<OutboxEntry<C>>,
    /// Some pending command was not returned (or may exist unread): it waits behind an
    /// instance in `busy` or behind a command returned, its retry time has not come, or
    /// the scan stopped at its limit or a full page. False: every pending command was
    /// returned, so a later scan finds something only once new commands are queued
    /// (in this process, the store's [`wakeup`](ProcessStore::wakeup) says so), a retry
    /// time comes, or a returned command is left pending (a failed mark): an instance
    /// landing frees nothing else.
    pub more: bool,
}

/// Durable storage of a process manager's instances, handled inputs, outbox and
/// deadlines. The [`Runner`](crate::Runner) drives it as a [`Subscriber`]; the
/// [`Worker`](super::Worker) dispatches its outbox and fires its deadlines. Implemented by
/// [`MemoryProcess`](super::MemoryProcess) and [`PgProcess`](super::PgProcess).
pub trait ProcessStore<P: ProcessManager>: Subscriber + Clone {
    /// The clock deadlines are measured with.
    fn clock(&self) -> Clock;

    /// Notified when new commands are in the outbox.
    fn wakeup(&self) -> Arc<Notify>;

    /// Commands not yet dispatched, oldest first, at most `limit`.
    fn pending(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<OutboxEntry<P::Command>>, BoxError>> + Send;

    /// What waits in the outbox: how many commands, how many of them failed at least
    /// once and wait for a retry, and when the oldest was issued; its instances by
    /// status and its deadlines scheduled and due (as of the store's clock). What an
    /// operator needs beside the runner's lag: a process manager can be caught up with
    /// the log while its commands queue (one query on PostgreSQL, counting from the
    /// status and deadline indexes).
    fn backlog(&self) -> impl Future<Output = Result<Backlog, BoxError>> + Send;

    /// How many commands wait in the outbox ([`Backlog::waiting`] alone): what admission
    /// control polls, so a store counts it without the rest of the backlog (PostgreSQL:
    /// one count from the pending-commands index). The default takes it from
    /// [`backlog`](Self::backlog).
    fn waiting(&self) -> impl Future<Output = Result<u64, BoxError>> + Send {
        async move { Ok(self.backlog().await?.waiting) }
    }

    /// The commands that may go at `now`, oldest first, at most `limit`: the oldest
    /// pending command of each instance not in `busy`, when its retry time has come (an
    /// instance's later commands wait behind it). On PostgreSQL, a scan of the pending
    /// commands in order, a page (usually the only one) at a time.
    ///
    /// [`Due::more`] says whether the scan passed over a pending command: the worker
    /// claims again when one of its instances lands only if it did.
    fn due(
        &self,
        now: SystemTime,
        limit: usize,
        busy: &[InstanceId],
    ) -> impl Future<Output = Result<Due<P::Command>, BoxError>> + Send;

    /// Records that `issued` was dispatched (and what that did to its instance).
    fn mark_dispatched(
        &self,
        issued: &Issued<P::Command>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Records that each of `issued` was dispatched, as [`mark_dispatched`] does for one,
    /// in one change where the store can: one transaction on PostgreSQL (the instances
    /// locked in the order of their ids, so concurrent marks and the runner never
    /// deadlock), one lock in memory. The worker marks the commands dispatched while its
    /// previous mark was in flight together (group commit). On an error, any of them may
    /// be left unmarked and is dispatched again (its idempotency key lands it once). The
    /// default marks them one by one.
    ///
    /// [`mark_dispatched`]: Self::mark_dispatched
    fn mark_all_dispatched(
        &self,
        issued: &[Issued<P::Command>],
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        async move {
            for one in issued {
                self.mark_dispatched(one).await?;
            }
            Ok(())
        }
    }

    /// Records a failed attempt: to be retried at `retry_at`, or (`None`) failed for good,
    /// which the instance reacts to.
    fn mark_failed(
        &self,
        issued: &Issued<P::Command>,
        error: &str,
        retry_at: Option<SystemTime>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Fires the deadlines due at `now`, at most `limit`: each one is claimed with a
    /// compare-and-set and its timeout handled in the same transaction, so it fires once
    /// however many workers run. Returns how many fired.
    fn fire_due(
        &self,
        now: SystemTime,
        limit: usize,
    ) -> impl Future<Output = Result<usize, BoxError>> + Send;

    /// Deletes what exactly-once no longer needs, at most `limit` rows of each table:
    /// the handled records, settled outbox entries (dispatched, failed, discarded) and
    /// fired or cancelled deadlines of instances that ended (completed or failed) and
    /// have not changed since before `before`, each record itself from before `before`.
    /// Never anything of a pending or compensating instance, a pending command, a
    /// scheduled deadline, nor an instance itself. Why that is safe:
    /// [retention](crate::process#retention).
    fn prune(
        &self,
        before: SystemTime,
        limit: usize,
    ) -> impl Future<Output = Result<Pruned, BoxError>> + Send;

    /// One instance.
    fn instance(
        &self,
        id: &InstanceId,
    ) -> impl Future<Output = Result<Option<Instance<P>>, BoxError>> + Send;

    /// Every instance (with this status, if given), by id.
    fn instances(
        &self,
        status: Option<Status>,
    ) -> impl Future<Output = Result<Vec<Instance<P>>, BoxError>> + Send;

    /// Every deadline stored, scheduled, fired or cancelled, by due time.
    fn deadlines(&self) -> impl Future<Output = Result<Vec<Deadline>, BoxError>> + Send;

    /// One page of [`instances`](Self::instances): those with this status, if given,
    /// whose ids come strictly after `after` (`None`: from the first), at most `limit`,
    /// ordered by id in the byte order of the id string (`InstanceId`'s `Ord`; on
    /// PostgreSQL `COLLATE "C"`, whatever the database's collation), so both stores
    /// page alike. The next page starts after the last id of this one; a page shorter
    /// than `limit` is the last. An instance created or changing status between two
    /// pages shows in a later page if its id comes later. A `limit` of 0 is an error.
    ///
    /// Both stores read only the page: PostgreSQL from an index in that order (of the
    /// status, when given), memory from its ids in order (of the status, when given)
    /// under its lock. The default reads every instance of the status from
    /// [`instances`](Self::instances) and keeps the page: correct, but as costly as
    /// listing them all.
    fn instance_page(
        &self,
        status: Option<Status>,
        after: Option<&InstanceId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Instance<P>>, BoxError>> + Send {
        async move {
            let limit = page_limit(limit)?;
            let mut all = self.instances(status).await?;
            all.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(all
                .into_iter()
                .filter(|i| after.is_none_or(|a| i.id > *a))
                .take(limit)
                .collect())
        }
    }

    /// What the store holds about instance `id` beside its state: every command in its
    /// outbox (any state, in issue order), its deadlines (by due time) and the inputs it
    /// handled (trigger ids with when, oldest first), as far as
    /// [retention](crate::process#retention) kept them. `None` when there is no such
    /// instance. Read-only: on PostgreSQL one read-only snapshot (so the three lists
    /// agree with each other), taking no row locks; in memory under the store's lock.
    ///
    /// The default is an error: a store has to say what it keeps.
    fn instance_record(
        &self,
        id: &InstanceId,
    ) -> impl Future<Output = Result<Option<InstanceRecord<P::Command>>, BoxError>> + Send {
        async move {
            Err(format!(
                "this process store keeps no instance records (asked for instance {id} of {})",
                P::NAME
            )
            .into())
        }
    }
}

/// What waits in a process store's outbox ([`ProcessStore::backlog`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Commands issued and not dispatched yet.
    pub waiting: u64,
    /// Of those, the ones that failed at least once and wait for a retry.
    pub retrying: u64,
    /// When the oldest of them was issued (`None` when none waits).
    pub oldest: Option<SystemTime>,
    /// Instances by status (ended ones until retention prunes them).
    pub instances: InstanceCounts,
    /// Deadlines scheduled and not fired or cancelled yet.
    pub deadlines_scheduled: u64,
    /// Of those, the ones due (their time has come; a worker fires them next round).
    pub deadlines_due: u64,
}

/// How many instances of a process manager are in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstanceCounts {
    /// Running.
    pub pending: u64,
    /// Dispatching compensations.
    pub compensating: u64,
    /// Ended, done.
    pub completed: u64,
    /// Ended, failed.
    pub failed: u64,
}

impl InstanceCounts {
    /// Counts one more instance in `status`.
    pub fn add(&mut self, status: tessera_core::process::Status) {
        use tessera_core::process::Status;
        match status {
            Status::Pending => self.pending += 1,
            Status::Compensating => self.compensating += 1,
            Status::Completed => self.completed += 1,
            Status::Failed => self.failed += 1,
        }
    }

    /// (status name, count) for each status.
    pub fn by_status(&self) -> [(&'static str, u64); 4] {
        [
            ("pending", self.pending),
            ("compensating", self.compensating),
            ("completed", self.completed),
            ("failed", self.failed),
        ]
    }
}

impl Backlog {
    /// How long the oldest waiting command has waited, as of `now`.
    pub fn oldest_age(&self, now: SystemTime) -> std::time::Duration {
        self.oldest
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or_default()
    }
}

/// A command waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry<C> {
    /// The command and its identity.
    pub issued: Issued<C>,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not to be attempted before this time.
    pub not_before: SystemTime,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// Where a deadline stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineState {
    /// Waiting for its time.
    Scheduled,
    /// Its timeout was delivered.
    Fired,
    /// Cancelled, replaced, or its instance ended first.
    Cancelled,
}

impl DeadlineState {
    /// Lower-case name (`"scheduled"`, `"fired"`, `"cancelled"`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineState::Scheduled => "scheduled",
            DeadlineState::Fired => "fired",
            DeadlineState::Cancelled => "cancelled",
        }
    }

    #[cfg(feature = "postgres")]
    pub(crate) fn parse(s: &str) -> Result<Self, BoxError> {
        Ok(match s {
            "scheduled" => DeadlineState::Scheduled,
            "fired" => DeadlineState::Fired,
            "cancelled" => DeadlineState::Cancelled,
            other => return Err(format!("unknown deadline state {other:?}").into()),
        })
    }
}

/// A stored deadline, for status pages and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    /// Its id (the trigger id of its timeout).
    pub id: uuid::Uuid,
    /// Its instance.
    pub instance: InstanceId,
    /// Its key.
    pub key: String,
    /// When it is due.
    pub due_at: SystemTime,
    /// Where it stands.
    pub state: DeadlineState,
}

/// Where an event of the log goes: its instance, whether it may start one, and the
/// decoded event. `None`: the process manager does not react to it.
pub(crate) fn route<P: ProcessManager>(
    process: &P,
    upcasters: &Upcasters,
    recorded: &RecordedEvent,
) -> Result<Option<(InstanceId, bool, P::Event)>, BoxError> {
    let event: P::Event = match decode_recorded(recorded, upcasters) {
        Ok(e) => e,
        Err(e) if matches!(e.source, CodecError::UnknownEventType { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(match process.correlate(&event) {
        Correlation::Start(id) => Some((id, true, event)),
        Correlation::Continue(id) => Some((id, false, event)),
        Correlation::Ignore => None,
    })
}
