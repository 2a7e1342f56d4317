//! # tessera-projections
//!
//! The one piece of machinery that turns the log into read models, and drives every
//! other checkpointed reader (process managers, relays): a [`Runner`] feeds a
//! [`Subscriber`] batches from the store's gap-free subscription; the subscriber applies
//! each batch and moves its checkpoint atomically, with a compare-and-set that fences a
//! second runner of the same subscriber.
//!
//! - Errors: a failing batch is retried with backoff, narrowed to the one failing event,
//!   and after `max_attempts` the runner stops as [`State::Failed`] reporting the event's
//!   position, id, type and the error. Nothing is skipped; a restart resumes at it.
//! - Status: [`RunnerHandle::status`] gives state, checkpoint, head, lag in events and time
//!   (measured by [`Lag::measure`], which a tool reading stored checkpoints can use too).
//! - Read-your-writes: [`RunnerHandle::wait_for`] a position with a timeout.
//! - In-memory read models: [`MemoryProjection`] (model and checkpoint under one lock),
//!   with a zero-downtime [`MemoryProjection::rebuild`].
//! - PostgreSQL read models: [`PgProjection`] (the handler writes in the runner's
//!   transaction, the checkpoint moves in it), with a zero-downtime, crash-resumable
//!   [`PgProjection::rebuild`] into a fresh schema per version.
//! - Document read models: a [`View`] folds events into one JSON document per key; a
//!   [`ViewStore`] keeps it in memory or in PostgreSQL, answers `get` and `list` (filters
//!   on the fields the view declares, cursors) and rebuilds it without downtime. See
//!   [`view`].
//! - Reactors: a [`Reactor`] hands each event to a [`Reaction`] that acts outside the
//!   log (a command to another context, a call to a gateway) and moves its checkpoint
//!   past what succeeded.
//! - Checkpoints: one contract, [`CheckpointStore`] ([`MemoryCheckpoints`],
//!   `PgCheckpoints`), one PostgreSQL table shape and one compare-and-set for every
//!   reader above.
//! - Process managers (sagas): [`process`] runs a `tessera_core::process::ProcessManager`
//!   durably. [`process::MemoryProcess`] or [`process::PgProcess`] is the subscriber the
//!   runner drives (instance state, handled inputs, outbox and deadlines move with the
//!   checkpoint); a [`process::Worker`] dispatches the outbox through your
//!   [`process::Dispatcher`] and fires due deadlines, once.
//! - Integration events between services: [`integration`] (public events, an outbox
//!   [`integration::Relay`] on the log, an [`integration::Inbox`] with per-stream order,
//!   the broker contract and an in-memory bus) and [`leader`] (one active relay per
//!   name).
//! - Calls outside the log: [`resilience::Resilience`] guards them with a timeout,
//!   retries with exponential backoff and jitter on transient errors, a circuit breaker
//!   whose state is observable, and a bulkhead.
//! - Metrics: runners, inboxes, relays, process workers, named guards and rebuilds emit
//!   through the `metrics` facade (see `tessera_core::telemetry`), labelled by the names
//!   they are configured with; install any recorder to collect them, or none for no
//!   cost. The repository README lists every metric.
//!
//! Features: `postgres` (default) adds the PostgreSQL parts (`PgProjection`,
//! `PgProcess`, `PgCheckpoints`, the PostgreSQL side of [`ViewStore`]); without it the
//! crate links no database client, for memory or EventStoreDB users.

mod checkpoint;
pub mod integration;
pub mod leader;
mod memory;
#[cfg(feature = "postgres")]
mod migrate;
#[cfg(feature = "postgres")]
mod postgres;
pub mod process;
mod reactor;
mod rebuild;
pub mod resilience;
mod runner;
#[cfg(feature = "postgres")]
mod sql;
mod status;
mod subscriber;
mod traced;
pub mod view;

#[cfg(feature = "postgres")]
pub use checkpoint::PgCheckpoints;
pub use checkpoint::{CheckpointStore, Checkpoints, MemoryCheckpoints};
pub use memory::{MemoryHandler, MemoryProjection};
#[cfg(feature = "postgres")]
pub use postgres::{PgError, PgHandler, PgProjection, RebuildReport, REBUILD_LOCK_WAIT};
pub use reactor::{Reaction, Reactor};
pub use rebuild::{Progress, ProgressMeter};
pub use view::{QueryError, View, ViewStore};

/// The foreign crates this one's public API exposes, re-exported so that a user writes
/// against the same versions: `async_trait` (for [`process::Dispatcher`]) and, with the
/// `postgres` feature, `deadpool_postgres`, `tokio_postgres` and the store crate.
pub use async_trait;
pub use runner::{RestartError, Runner, RunnerConfig, RunnerHandle, WaitError};
pub use status::{Failure, Lag, State, Status};
pub use subscriber::{ApplyError, Subscriber};
#[cfg(feature = "postgres")]
pub use {deadpool_postgres, tessera_postgres, tokio_postgres};
