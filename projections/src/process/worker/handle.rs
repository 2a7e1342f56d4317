//! A running worker, to ask for its backlog, stop or kill.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tessera_core::BoxError;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::process::Backlog;
use crate::Status;

/// Reads the backlog of the worker's process store.
pub(super) type Measure =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Backlog, BoxError>> + Send>> + Send + Sync>;

/// A running worker. Dropping it stops the worker: it claims nothing more and lets the
/// dispatches in flight finish and be marked.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    measure: Measure,
}

impl fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerHandle")
            .field("stop", &self.stop)
            .field("task", &self.task)
            .finish_non_exhaustive()
    }
}

impl WorkerHandle {
    pub(super) fn new(stop: watch::Sender<bool>, task: JoinHandle<()>, measure: Measure) -> Self {
        Self {
            stop,
            task: Some(task),
            measure,
        }
    }

    /// What waits in its process store's outbox now: commands not dispatched yet, those
    /// of them waiting for a retry, and the oldest one's issue time
    /// ([`ProcessStore::backlog`](crate::process::ProcessStore::backlog); one query on
    /// PostgreSQL, made when asked, so an idle worker costs nothing for it).
    pub async fn backlog(&self) -> Result<Backlog, BoxError> {
        (self.measure)().await
    }

    /// `status` (of the [`Runner`](crate::Runner) of this worker's process store) with
    /// [`Status::backlog`] filled in, so the commands waiting to be dispatched show
    /// beside the lag. When the backlog cannot be read, `status` is returned as it was
    /// (its `backlog` unchanged) and the error logged.
    pub async fn with_backlog(&self, mut status: Status) -> Status {
        match self.backlog().await {
            Ok(backlog) => status.backlog = Some(backlog),
            Err(e) => tracing::warn!(error = %e, process = %status.name, "cannot read the backlog"),
        }
        status
    }

    /// Stops it: it claims nothing more, and returns once the dispatches in flight were
    /// marked.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Kills it where it is, dispatches in flight included, as a crash would.
    pub async fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
