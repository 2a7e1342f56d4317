//! Stopping a shop: draining (readiness turns 503), then its runners, inboxes and
//! workers, each after its current batch or message.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::future::{join, join_all};
use tessera_core::{EventStore, SnapshotStore};
use tessera_projections::process::WorkerHandle;
use tessera_projections::RunnerHandle;
use tokio::time::Instant;

use super::App;

impl<S: EventStore + SnapshotStore> App<S> {
    /// Marks the shop as stopping: `/health/ready` answers 503 `draining` from now on,
    /// so a load balancer stops sending it requests. Everything else goes on.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Whether [`App::drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Drains, then stops the saga's worker and every runner, all at once, each after
    /// its current batch (so each keeps its checkpoint).
    pub async fn shutdown(&self) {
        self.stop_all().await;
    }

    /// [`App::shutdown`], waiting until `deadline` at most: whether everything stopped
    /// by then. A runner or worker still in a batch at the deadline is left to finish it
    /// on its own (it stops after that batch), or is abandoned with the process, its
    /// batch's transaction rolled back and its checkpoint where the last batch left it.
    pub async fn shutdown_until(&self, deadline: Instant) -> bool {
        tokio::time::timeout_at(deadline, self.stop_all())
            .await
            .is_ok()
    }

    async fn stop_all(&self) {
        self.drain();
        let workers = std::mem::take(&mut *self.lock_workers());
        let runners = std::mem::take(&mut *self.lock_runners());
        let inboxes = std::mem::take(&mut *self.lock_inboxes());
        // A runner still shared is held by a waiting request: dropping the last clone
        // stops it.
        let runners = runners
            .into_values()
            .filter_map(|running| Arc::try_unwrap(running.handle).ok());
        join(
            join(
                join_all(workers.into_iter().map(WorkerHandle::stop)),
                join_all(runners.map(RunnerHandle::stop)),
            ),
            join_all(inboxes.into_values().map(|(_, inbox)| inbox.stop())),
        )
        .await;
    }
}
