//! Controlling a running runner: status, read-your-writes waits, stop.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use tessera_core::{EventReader, Position};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::{State, Status};

/// Why a wait for a position ended without reaching it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WaitError {
    /// The subscriber did not get there in time.
    #[error(
        "subscriber {name} did not reach position {position} within {timeout:?} (at {checkpoint})"
    )]
    Timeout {
        /// The subscriber.
        name: String,
        /// The position waited for.
        position: Position,
        /// Where it was when the wait ended.
        checkpoint: Position,
        /// How long the wait lasted.
        timeout: Duration,
    },
    /// The subscriber is stopped or failed and will not get there.
    #[error("subscriber {name} is {state} and will not reach position {position}")]
    NotRunning {
        /// The subscriber.
        name: String,
        /// The position waited for.
        position: Position,
        /// Its state (`"stopped"` or `"failed"`).
        state: &'static str,
    },
}

/// Why [`RunnerHandle::restart`] did nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RestartError {
    /// Only a failed runner restarts; this one is running or stopped.
    #[error("subscriber {name} is {state}, not failed: only a failed runner restarts")]
    NotFailed {
        /// The subscriber.
        name: String,
        /// Its state.
        state: &'static str,
    },
}

/// What restarts a failed runner: its status, changed at once, and the signal its task
/// waits for.
#[derive(Debug)]
pub(crate) struct Restart {
    pub(crate) status: Arc<watch::Sender<Status>>,
    pub(crate) signal: Arc<Notify>,
}

/// A running runner. Dropping the handle stops the runner after its current batch.
#[derive(Debug)]
pub struct RunnerHandle<S> {
    status: watch::Receiver<Status>,
    stop: watch::Sender<bool>,
    refresh: Arc<Notify>,
    restart: Restart,
    task: Option<JoinHandle<()>>,
    store: PhantomData<fn() -> S>,
}

impl<S: EventReader> RunnerHandle<S> {
    pub(crate) fn new(
        status: watch::Receiver<Status>,
        stop: watch::Sender<bool>,
        refresh: Arc<Notify>,
        restart: Restart,
        task: JoinHandle<()>,
    ) -> Self {
        Self {
            status,
            stop,
            refresh,
            restart,
            task: Some(task),
            store: PhantomData,
        }
    }

    /// The latest status.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn watch(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Waits until the subscriber has processed everything up to `position`
    /// (read-your-writes), or `timeout` passes.
    ///
    /// Reached when its checkpoint is at or past `position`, or when the runner, live,
    /// has measured a head at or past `position` with no event it wants left to apply
    /// (a filtered subscriber never sees other categories' positions). A waiter reads
    /// only the runner's status, never the store: it asks the runner for a fresh
    /// measurement, and one measurement answers every waiter at once, so any number of
    /// concurrent waits costs the store what one does.
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> Result<(), WaitError> {
        let mut rx = self.status.clone();
        let now = tokio::time::Instant::now();
        // A timeout too large for the clock waits as good as forever instead of panicking.
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        loop {
            let (checkpoint, state, name) = {
                let s = rx.borrow_and_update();
                (s.checkpoint, s.state, s.name.clone())
            };
            if checkpoint >= position || self.live_past(position) {
                return Ok(());
            }
            self.refresh.notify_one();
            if matches!(state, State::Stopped | State::Failed) {
                return Err(WaitError::NotRunning {
                    name,
                    position,
                    state: state.as_str(),
                });
            }
            let tick = tokio::time::sleep(Duration::from_millis(20));
            tokio::select! {
                _ = rx.changed() => {}
                () = tick => {}
                () = tokio::time::sleep_until(deadline) => {
                    return Err(WaitError::Timeout { name, position, checkpoint, timeout });
                }
            }
        }
    }

    /// Whether the runner, live at its last measurement, had applied everything it
    /// wants up to a head at or past `position`.
    fn live_past(&self, position: Position) -> bool {
        let s = self.status.borrow();
        s.state == State::Live && s.head.is_some_and(|head| head >= position)
    }

    /// Starts a [failed](State::Failed) runner again from its stored checkpoint, after
    /// whatever stopped it was repaired (a read model's table fixed, a handler's bug
    /// deployed away, an upcaster added): it reads the failing event again and, if it
    /// fails once more, stops on it again with a fresh [`Failure`](crate::Failure). Its
    /// failure is cleared and its state goes back to
    /// [`Starting`](State::Starting). Nothing is skipped: a restart never moves the
    /// checkpoint.
    pub fn restart(&self) -> Result<(), RestartError> {
        let mut refused = None;
        // Checked and changed in one step, so two restarts at once start it once, and a
        // wait that follows never sees the old failure.
        self.restart.status.send_if_modified(|s| {
            if s.state != State::Failed {
                refused = Some(RestartError::NotFailed {
                    name: s.name.clone(),
                    state: s.state.as_str(),
                });
                return false;
            }
            s.state = State::Starting;
            s.failure = None;
            s.last_error = None;
            s.updated_at = std::time::SystemTime::now();
            true
        });
        match refused {
            Some(e) => Err(e),
            None => {
                self.restart.signal.notify_one();
                Ok(())
            }
        }
    }

    /// Stops the runner after its current batch and returns its final status.
    pub async fn stop(mut self) -> Status {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.status()
    }

    /// Kills the runner where it is, as a crash would: a batch in flight is abandoned
    /// (its transaction rolls back), its checkpoint stays where it was.
    pub async fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl<S> Drop for RunnerHandle<S> {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
