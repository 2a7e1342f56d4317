//! A running worker, to stop or kill.

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running worker. Dropping it stops the worker: it claims nothing more and lets the
/// dispatches in flight finish and be marked.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    pub(super) fn new(stop: watch::Sender<bool>, task: JoinHandle<()>) -> Self {
        Self {
            stop,
            task: Some(task),
        }
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
