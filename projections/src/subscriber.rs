//! What the runner drives: anything that applies batches of the log with a checkpoint.

use std::future::Future;

use tessera_core::{BoxError, EventFilter, Position, RecordedEvent};

/// A checkpointed reader of the global log: a projection, a process manager, an outbox
/// relay. The runner hands it batches in log order; it applies each batch and moves its
/// checkpoint in the same transaction (or under the same lock).
pub trait Subscriber: Send + Sync + 'static {
    /// Stable name, unique among the subscribers of one store.
    fn name(&self) -> &str;

    /// Which events it wants.
    fn filter(&self) -> EventFilter;

    /// The position of the last event applied ([`Position::START`] for none).
    fn checkpoint(&self) -> impl Future<Output = Result<Position, BoxError>> + Send;

    /// Applies `batch` (non-empty, in order, all after `from`) and moves the checkpoint
    /// from `from` to the position of the last event applied, atomically. The move is a
    /// compare-and-set: if the stored checkpoint is not `from`, nothing is applied and
    /// the result is [`ApplyError::Fenced`].
    ///
    /// A pipelined subscriber may return before its checkpoint moved (the relay moves it
    /// once the broker confirmed the batch, while it publishes the next): then its
    /// [`checkpoint`](Subscriber::checkpoint) first settles that outstanding work, and
    /// if the work fails a later `apply` returns [`ApplyError::Rewind`].
    fn apply(
        &self,
        from: Position,
        batch: &[RecordedEvent],
    ) -> impl Future<Output = Result<(), ApplyError>> + Send;
}

/// Why a batch was not (wholly) applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Another runner moved the checkpoint: this one must re-read it.
    #[error("checkpoint moved by another runner (expected {expected})")]
    Fenced {
        /// The checkpoint this runner expected.
        expected: Position,
    },
    /// Something the subscriber depends on (a broker, a database) is unavailable for
    /// now; nothing of the batch was applied. The runner retries the same batch with
    /// backoff for as long as it takes, reporting the error, without counting it toward
    /// `max_attempts`: an outage is not a poison event.
    #[error("unavailable for now: {error}")]
    Unavailable {
        /// Why.
        error: BoxError,
    },
    /// Work the subscriber had taken on ahead of its stored checkpoint was lost: a
    /// pipelined subscriber (the [`Relay`](crate::integration::Relay), which publishes
    /// a batch before the broker confirmed the one before it) found an earlier batch
    /// unconfirmed, so its stored checkpoint is behind the position the runner reached.
    /// The runner waits a backoff, re-reads the checkpoint and goes on from there,
    /// without counting it toward `max_attempts` (it is an outage, not a poison event).
    #[error("work ahead of the checkpoint lost, resuming from the checkpoint: {error}")]
    Rewind {
        /// Why.
        error: BoxError,
    },
    /// The handler failed on `batch[applied]`; the `applied` events before it were
    /// committed with their checkpoint (0 for a transactional store, where the whole
    /// batch rolled back).
    #[error("handler failed after {applied} events of the batch: {error}")]
    Failed {
        /// Events of the batch committed before the failure.
        applied: usize,
        /// The handler's error.
        error: BoxError,
    },
}
