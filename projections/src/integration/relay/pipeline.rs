//! The relay's pipeline: at most one batch sent ahead of its confirmation, and the
//! checkpoint moved only past confirmed batches, in order.
//!
//! State, behind one async lock that an `apply` (or `checkpoint`) holds from start to
//! end:
//!
//! - `stored`: the stored checkpoint as this relay last read or wrote it.
//! - `pending`: the batch sent last, from `from` (the stored checkpoint before it) to
//!   `to` (where the runner is), still being settled by a task of its own: the task
//!   awaits the batch's confirmation, then moves the checkpoint from `from` to `to`
//!   (compare-and-set), and reports how that went. It does so at once, whether or not
//!   another batch follows (no timer); the next `apply` sends its batch, then waits for
//!   that report before it leaves its own batch pending, so a task only ever moves the
//!   checkpoint from where the previous one left it.
//!
//! A failure drops what is outstanding (an abandoned batch's task reports to nobody)
//! and makes the next publish synchronous.

use std::sync::Arc;

use tessera_core::{BoxError, Position};
use tokio::sync::{oneshot, Mutex, MutexGuard};

use super::super::{BusError, Confirmation};
use crate::checkpoint::CheckpointStore;
use crate::ApplyError;

pub(super) struct Pipeline<C> {
    name: Arc<str>,
    checkpoints: C,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    stored: Option<Position>,
    pending: Option<Pending>,
    /// Publish the next batch synchronously (after a failure, so that an outage is
    /// retried on one batch with the runner's growing backoff).
    careful: bool,
}

impl State {
    /// Forgets everything outstanding: the runner resumes from the stored checkpoint.
    fn reset(&mut self) {
        self.stored = None;
        self.pending = None;
        self.careful = true;
    }
}

/// A batch sent ahead, settled by its task.
struct Pending {
    from: Position,
    to: Position,
    settled: oneshot::Receiver<Result<(), Lost>>,
}

impl Pending {
    /// Waits for the batch's task: `Ok` once the checkpoint is at `to`.
    async fn settled(self) -> Result<Position, Lost> {
        let report = self.settled.await;
        Self::outcome(self.to, report.ok())
    }

    /// The task's report if it made one already.
    fn try_settled(&mut self) -> Option<Result<Position, Lost>> {
        match self.settled.try_recv() {
            Ok(report) => Some(Self::outcome(self.to, Some(report))),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Self::outcome(self.to, None)),
        }
    }

    fn outcome(to: Position, report: Option<Result<(), Lost>>) -> Result<Position, Lost> {
        match report {
            Some(Ok(())) => Ok(to),
            Some(Err(lost)) => Err(lost),
            None => Err(Lost::Unconfirmed {
                to,
                error: BusError::NotConfirmed("the confirmation task ended early".into()),
            }),
        }
    }
}

/// Why work ahead of the stored checkpoint is lost.
enum Lost {
    /// The broker did not confirm the batch up to `to`.
    Unconfirmed { to: Position, error: BusError },
    /// Another relay moved the checkpoint from `expected`.
    Fenced { expected: Position },
    /// Moving the checkpoint to `to` failed (it may or may not have moved).
    Checkpoint { to: Position, error: BoxError },
}

impl From<Lost> for ApplyError {
    fn from(lost: Lost) -> Self {
        match lost {
            Lost::Unconfirmed { to, error } => ApplyError::Rewind {
                error: format!("the batch up to {to} was not confirmed: {error}").into(),
            },
            Lost::Fenced { expected } => ApplyError::Fenced { expected },
            Lost::Checkpoint { to, error } => ApplyError::Rewind {
                error: format!("moving the checkpoint to {to}: {error}").into(),
            },
        }
    }
}

impl<C: CheckpointStore> Pipeline<C> {
    pub(super) fn new(name: &str, checkpoints: C) -> Self {
        Self {
            name: name.into(),
            checkpoints,
            state: Mutex::default(),
        }
    }

    /// The stored checkpoint, after the batch outstanding is settled (confirmed and
    /// checkpointed, or abandoned if that failed).
    pub(super) async fn checkpoint(&self) -> Result<Position, BoxError> {
        let mut state = self.state.lock().await;
        if let Some(pending) = state.pending.take() {
            if let Err(lost) = pending.settled().await {
                tracing::warn!(relay = %self.name, error = %ApplyError::from(lost), "a batch published ahead of the checkpoint is published again");
                state.reset();
            }
        }
        let stored = self.checkpoints.load(&self.name).await;
        state.stored = stored.as_ref().ok().copied();
        stored
    }

    /// Starts applying a batch read from `from`: holds the pipeline until the returned
    /// turn ends.
    pub(super) async fn begin(&self, from: Position) -> Result<Turn<'_, C>, ApplyError> {
        let mut state = self.state.lock().await;
        // Settled already (while the relay was idle): a failure publishes nothing more.
        if let Some(outcome) = state.pending.as_mut().and_then(Pending::try_settled) {
            state.pending = None;
            match outcome {
                Ok(to) => state.stored = Some(to),
                Err(lost) => {
                    state.reset();
                    return Err(lost.into());
                }
            }
        }
        let runner_at = state.pending.as_ref().map(|p| p.to).or(state.stored);
        if runner_at != Some(from) {
            // Not where this pipeline left the runner (a first batch, or a runner that
            // did not re-read the checkpoint): settle what is outstanding, then fence on
            // what is stored.
            if let Some(pending) = state.pending.take() {
                if let Err(lost) = pending.settled().await {
                    state.reset();
                    return Err(lost.into());
                }
            }
            state.stored = None;
        }
        Ok(Turn {
            pipeline: self,
            state,
            from,
        })
    }
}

/// One `apply` holding the pipeline.
pub(super) struct Turn<'a, C> {
    pipeline: &'a Pipeline<C>,
    state: MutexGuard<'a, State>,
    /// Where the runner is.
    from: Position,
}

impl<C: CheckpointStore> Turn<'_, C> {
    /// The stored checkpoint, read for the fence.
    pub(super) async fn load(&self) -> Result<Position, BoxError> {
        self.pipeline.checkpoints.load(&self.pipeline.name).await
    }

    /// The fence, before anything is published: the stored checkpoint is where this
    /// relay left it, else another relay moved it. With a batch outstanding, that is
    /// before it, or after it once its task moved the checkpoint (found by waiting for
    /// the task; its compare-and-set fails if another relay moved the checkpoint there).
    pub(super) async fn fence(&mut self, stored: Position) -> Result<(), ApplyError> {
        let Some(pending) = &self.state.pending else {
            return self.expect(stored == self.from, self.from);
        };
        if stored == pending.from {
            return Ok(());
        }
        let expected = pending.from;
        if stored != pending.to {
            return self.expect(false, expected);
        }
        match self.settle_pending().await {
            Ok(()) => Ok(()),
            Err(lost) => {
                self.state.reset();
                Err(lost.into())
            }
        }
    }

    fn expect(&mut self, holds: bool, expected: Position) -> Result<(), ApplyError> {
        if holds {
            Ok(())
        } else {
            self.state.reset();
            Err(ApplyError::Fenced { expected })
        }
    }

    /// The batch could not be sent: settles the one outstanding, so that the runner
    /// retries this batch from a stored checkpoint.
    pub(super) async fn not_sent(mut self, error: BusError) -> ApplyError {
        if let Err(lost) = self.settle_pending().await {
            self.state.reset();
            return lost.into();
        }
        self.state.careful = true;
        outage(error)
    }

    /// Whether the next publish is synchronous (a failure since the last one).
    pub(super) fn careful(&self) -> bool {
        self.state.careful
    }

    /// The batch up to `to` is sent with `confirmation`: waits until the batch sent
    /// before it is settled (so at most one stays outstanding), then, when `more` (more
    /// to publish after it), leaves this one to its task; else awaits its confirmation
    /// and moves the checkpoint to `to` before returning, so that a relay caught up has
    /// its checkpoint where the runner is.
    pub(super) async fn sent(
        mut self,
        to: Position,
        confirmation: Confirmation,
        more: bool,
    ) -> Result<(), ApplyError> {
        if let Err(lost) = self.settle_pending().await {
            self.state.reset();
            return Err(lost.into());
        }
        // The stored checkpoint is at `from` now.
        if more && !confirmation.is_settled() && !self.state.careful {
            self.state.pending = Some(self.spawn_settle(to, confirmation));
            return Ok(());
        }
        if let Err(e) = confirmation.await {
            self.state.careful = true;
            return Err(outage(e));
        }
        let (name, checkpoints) = (&self.pipeline.name, &self.pipeline.checkpoints);
        match checkpoints.advance(name, self.from, to).await {
            Ok(true) => {
                self.state.stored = Some(to);
                self.state.careful = false;
                Ok(())
            }
            Ok(false) => {
                self.state.reset();
                Err(ApplyError::Fenced {
                    expected: self.from,
                })
            }
            Err(error) => {
                self.state.reset();
                Err(ApplyError::Failed { applied: 0, error })
            }
        }
    }

    /// Waits for the outstanding batch's task; the stored checkpoint is past it then.
    async fn settle_pending(&mut self) -> Result<(), Lost> {
        if let Some(pending) = self.state.pending.take() {
            self.state.stored = Some(pending.settled().await?);
        }
        Ok(())
    }

    /// A task that awaits `confirmation`, then moves the checkpoint from `from` to `to`.
    fn spawn_settle(&self, to: Position, confirmation: Confirmation) -> Pending {
        let (report, settled) = oneshot::channel();
        let from = self.from;
        let name = Arc::clone(&self.pipeline.name);
        let checkpoints = self.pipeline.checkpoints.clone();
        tokio::spawn(async move {
            let outcome = match confirmation.await {
                Err(error) => Err(Lost::Unconfirmed { to, error }),
                Ok(()) => match checkpoints.advance(&name, from, to).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(Lost::Fenced { expected: from }),
                    Err(error) => Err(Lost::Checkpoint { to, error }),
                },
            };
            // Nobody listening is fine: the batch was abandoned.
            let _abandoned = report.send(outcome);
        });
        Pending { from, to, settled }
    }
}

/// A publish that failed: a broker outage or a lost confirmation is retried for as long
/// as it takes, not counted as a failing event.
fn outage(error: BusError) -> ApplyError {
    if error.is_transient() {
        ApplyError::Unavailable {
            error: error.into(),
        }
    } else {
        ApplyError::Failed {
            applied: 0,
            error: error.into(),
        }
    }
}
