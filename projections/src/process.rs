//! The process-manager runtime: drives a [`ProcessManager`] (the pure contract in
//! `tessera_core::process`) from the log, durably.
//!
//! Two parts, one store:
//! - a process store ([`MemoryProcess`], [`PgProcess`]) is a [`Subscriber`](crate::Subscriber), driven by
//!   the same [`Runner`](crate::Runner) as projections. For each event it loads the
//!   instance, lets the process manager react, and records the new instance state, the
//!   handled (instance, event id) pair, the deadlines scheduled or cancelled and the
//!   commands issued (an outbox) **atomically with the checkpoint**: under one lock in
//!   memory, in one transaction on PostgreSQL. An (instance, trigger) pair already
//!   handled is skipped, so an event delivered twice issues its commands once.
//! - a [`Worker`] dispatches the outbox through the application's [`Dispatcher`], marks
//!   the commands dispatched, retries transient failures with backoff, and fires due
//!   deadlines. Dispatching outside the runner keeps a slow target from stalling the log.
//!   Marks are group-committed: while one mark is in flight, the commands dispatched
//!   meanwhile queue up and are marked together in the next
//!   ([`ProcessStore::mark_all_dispatched`]: one transaction for many instances on
//!   PostgreSQL), and an instance's next command is claimed only once its previous
//!   one's mark committed.
//!
//! Status: the runner's [`Status`](crate::Status) shows how far the store trails the
//! log; what waits in its outbox (commands not dispatched yet, those waiting for a
//! retry, the oldest's age) is [`ProcessStore::backlog`], which
//! [`WorkerHandle::with_backlog`] fills into that status as
//! [`Status::backlog`](crate::Status::backlog), so both show side by side.
//!
//! Inspection: an operator pages through the instances, all or of one status, in the
//! byte order of their ids ([`ProcessStore::instance_page`]), and reads what the store
//! holds of one beside its state ([`ProcessStore::instance_record`]: its commands in
//! every state with their attempts and last error, its deadlines, and the inputs it
//! handled with when). Both stores keep the same for that: settled commands, fired and
//! cancelled deadlines and handled (instance, trigger) records with their time, until
//! [retention](#retention) prunes them.
//!
//! Crash safety: a crash after recording and before dispatching leaves the commands in
//! the outbox, and the next worker dispatches them; a crash after dispatching and before
//! marking dispatches again. Either way the command carries the idempotency key
//! [`Issued::options`](tessera_core::process::Issued::options) derived from (process,
//! instance, trigger, index), so the target lands it once. A deadline is claimed with a
//! compare-and-set in the same transaction that records its timeout's reaction, so it
//! fires once however many workers run and however often they restart; a deadline whose
//! awaited event arrives first is cancelled in that event's transaction, so it never
//! fires. Deadlines are wall-clock times measured with a [`Clock`] that follows tokio's
//! clock (paused time works in tests).
//!
//! # Retention
//!
//! What exactly-once needs is kept for as long as it is needed; the rest goes after
//! [`ProcessConfig::retention`] (default [`DEFAULT_RETENTION`], seven days; `None` keeps
//! everything). A spawned [`Worker`] prunes when it starts and every
//! [`prune_interval`](ProcessConfig::prune_interval), in rounds of at most
//! [`prune_batch`](ProcessConfig::prune_batch) rows per table ([`ProcessStore::prune`];
//! [`Worker::prune`] runs one round). Pruned, once an instance has **ended** (completed
//! or failed) **and not changed for longer than the retention**: its handled (instance,
//! trigger) records, its settled outbox entries (dispatched, failed, discarded) and its
//! fired or cancelled deadlines, each itself older than the retention. Never pruned:
//! anything of a pending or compensating instance, or of an instance changed within the
//! retention; a pending command (even of an ended instance); a scheduled deadline.
//!
//! Why exactly-once holds without them:
//! - **Events are not offered twice.** The runner hands a store only events after its
//!   checkpoint, which moves in the transaction (under the lock) that records their
//!   reactions, and is a compare-and-set; and the store skips any event at or before the
//!   position it has applied. So an event handled once is never handled again, kept
//!   record or not. The handled record is a second line of defence (against one event id
//!   appended to two streams, or a checkpoint moved back by hand), kept while its
//!   instance runs and for the retention after it ended.
//! - **A deadline fires by a compare-and-set** from scheduled to fired, in the
//!   transaction that handles its timeout. A fired or cancelled deadline is never claimed
//!   again, whether its row is kept or gone; a scheduled one is never pruned.
//! - **A command failure is handled in the transaction that settles its pending outbox
//!   row** (a compare-and-set on `pending`). A settled row is never settled again, kept
//!   or gone (a worker holding a stale copy of a pruned command finds no row and does
//!   nothing); a pending row is never pruned.
//! - **Commands are queued and deadlines scheduled only by handling a trigger**, with ids
//!   derived from it, and no trigger is handled twice, so a pruned command or deadline id
//!   never comes back.
//!
//! On PostgreSQL each prune statement share-locks the instances whose rows it deletes and
//! skips any being changed, so no instance is brought back to life (a cancelled order
//! compensates a completed saga) while its records are being deleted; in memory one lock
//! does the same. What retention gives up: if a process store's checkpoint is moved back
//! by hand, the replay is deduplicated only by the records still kept.
//!
//! **Instances themselves are kept**, ended or not: status queries list them, and an
//! ended instance still reacts to later events, so deleting it would change what a later
//! event does (a `Continue` would be ignored, a `Start` would begin afresh). An instance
//! is one row of state and steps; what grows with its traffic (handled records, commands,
//! deadlines) is what is pruned.
//!
//! In memory the same rules hold, with the times taken from the store's [`Clock`]: each
//! ended instance is indexed by when it ended, so a round visits only instances old
//! enough; due deadlines are read from an index of the scheduled ones by due time, and
//! claimable commands from an index of the pending ones, never from everything stored.
//!
//! # Why a state table, not an event-sourced instance
//!
//! Instances are stored as rows (`instances`: JSON state, status, reason, steps, and a
//! version bumped by every change) rather than as streams of their own events:
//! - the reaction must be recorded in the same transaction as the subscriber's
//!   checkpoint, the outbox and the deadlines; the event store's append is a separate
//!   contract (and may be a different database), while a row in the process store's
//!   schema joins that transaction for free;
//! - what an instance did is already in the log: its inputs are events there, and its
//!   commands produce events there, correlated by the instance's correlation id. A
//!   second copy as saga events would add a write per reaction and a replay per load;
//! - listing and querying instances by status (every instance is listable) is an index
//!   on a column, not a projection to keep.
//!
//! The price: an instance's intermediate states are not kept (only its steps and
//! status), and a change to the state's shape needs a serde-compatible evolution (or a
//! migration of the rows), as for snapshots.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::{Arc, Mutex};
//! use async_trait::async_trait;
//! use serde::{Deserialize, Serialize};
//! use tessera_core::process::{Correlation, Input, Instance, Issued, ProcessManager, Reaction, Status};
//! use tessera_core::{DomainEvent, EventAppender, EventFilter, ExpectedVersion, MemoryStore, NewEvent, StreamId};
//! use tessera_projections::process::{DispatchError, Dispatcher, MemoryProcess, ProcessConfig, ProcessStore, Worker};
//! use tessera_projections::{Runner, RunnerConfig};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! enum Event { #[serde(rename = "OrderPlaced")] Placed { order: String } }
//! impl DomainEvent for Event {}
//!
//! struct Welcome;
//! impl ProcessManager for Welcome {
//!     const NAME: &'static str = "welcome";
//!     type Event = Event;
//!     type State = ();
//!     type Command = String;
//!     type Timeout = ();
//!     fn filter(&self) -> EventFilter { EventFilter::category("order") }
//!     fn correlate(&self, Event::Placed { order }: &Event) -> Correlation { Correlation::Start(order.into()) }
//!     fn react(&self, saga: &Instance<Self>, _: Input<'_, Self>) -> Reaction<Self> {
//!         Reaction::new().issue(format!("thank {}", saga.id)).complete()
//!     }
//! }
//!
//! #[derive(Default)]
//! struct Outbox(Mutex<Vec<String>>);
//! #[async_trait]
//! impl Dispatcher<String> for Outbox {
//!     async fn dispatch(&self, issued: &Issued<String>) -> Result<(), DispatchError> {
//!         self.0.lock().unwrap().push(issued.command.clone());
//!         Ok(())
//!     }
//! }
//!
//! let store = MemoryStore::new();
//! let process = MemoryProcess::new(Welcome);
//! let sent = Arc::new(Outbox::default());
//! let runner = Runner::new(store.clone(), process.clone(), RunnerConfig::default()).spawn();
//! let worker = Worker::new(process.clone(), sent.clone(), ProcessConfig::default()).spawn();
//!
//! let placed = NewEvent::json("OrderPlaced", &serde_json::json!({"order": "o1"})).unwrap();
//! let at = store.append(&StreamId::new("order-o1").unwrap(), ExpectedVersion::Any, vec![placed]).await.unwrap();
//! runner.wait_for(at.position, std::time::Duration::from_secs(5)).await.unwrap();
//! while sent.0.lock().unwrap().is_empty() { tokio::task::yield_now().await; }
//! assert_eq!(*sent.0.lock().unwrap(), ["thank o1"]);
//! let saga = process.instance(&"o1".into()).await.unwrap().unwrap();
//! assert_eq!(saga.status, Status::Completed);
//! worker.stop().await;
//! # });
//! ```
//!
//! [`ProcessManager`]: tessera_core::process::ProcessManager

mod config;
mod dispatch;

/// A trace context to record on a reaction's effects, and whether it is linked (a
/// deadline that fired) rather than continued.
pub(crate) type Traced = (tessera_core::trace::TraceContext, bool);
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod record;
mod retention;
mod store;
mod worker;

pub use config::{Clock, ProcessConfig, DEFAULT_RETENTION};
pub use dispatch::{DispatchError, Dispatcher};
pub use memory::MemoryProcess;
#[cfg(feature = "postgres")]
pub use postgres::PgProcess;
pub use record::{CommandRecord, CommandState, HandledInput, InstanceRecord};
pub use retention::Pruned;
pub use store::{Backlog, Deadline, DeadlineState, Due, InstanceCounts, OutboxEntry, ProcessStore};
pub use worker::{Round, Worker, WorkerHandle};

/// The longest a deadline is kept waiting: a request further out is due after this
/// (about a century) rather than overflowing the clock.
const LONGEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 86_400);

/// When a deadline requested `after` from `now` is due.
fn due_at(now: std::time::SystemTime, after: std::time::Duration) -> std::time::SystemTime {
    now + after.min(LONGEST_DEADLINE)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    #[test]
    fn a_deadline_too_far_out_for_the_clock_is_due_after_the_longest_wait() {
        let now = SystemTime::now();
        assert_eq!(
            super::due_at(now, Duration::from_secs(30)),
            now + Duration::from_secs(30)
        );
        assert_eq!(
            super::due_at(now, Duration::MAX),
            now + super::LONGEST_DEADLINE
        );
    }
}
