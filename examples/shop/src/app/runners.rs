//! The shop's runners and workers: registering, status, read-your-writes, shutdown.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tessera_core::{EventStore, Position, SnapshotStore};
use tessera_projections::process::WorkerHandle;
use tessera_projections::{RunnerHandle, Status, WaitError};

use super::App;

/// What a runner drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A read model.
    Projection,
    /// The fulfilment saga.
    Saga,
    /// An inbox relay into the ordering log.
    Relay,
    /// The payment worker.
    Worker,
}

impl Kind {
    /// Lower-case name for the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Projection => "projection",
            Kind::Saga => "saga",
            Kind::Relay => "relay",
            Kind::Worker => "worker",
        }
    }
}

pub(super) struct Running<S> {
    kind: Kind,
    context: &'static str,
    handle: Arc<RunnerHandle<S>>,
}

impl<S: EventStore + SnapshotStore> App<S> {
    pub(super) fn lock_workers(&self) -> std::sync::MutexGuard<'_, Vec<WorkerHandle>> {
        self.workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn add(
        &self,
        kind: Kind,
        context: &'static str,
        name: String,
        handle: RunnerHandle<S>,
    ) {
        let running = Running {
            kind,
            context,
            handle: Arc::new(handle),
        };
        self.lock_runners().insert(name, running);
    }

    fn lock_runners(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running<S>>> {
        self.runners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn runner(&self, name: &str) -> Option<Arc<RunnerHandle<S>>> {
        self.lock_runners().get(name).map(|r| r.handle.clone())
    }

    /// Status of every runner: (kind, context, status).
    pub fn statuses(&self) -> Vec<(Kind, &'static str, Status)> {
        self.lock_runners()
            .values()
            .map(|r| (r.kind, r.context, r.handle.status()))
            .collect()
    }

    /// Waits until the runner `name` has processed `position` of its log.
    pub async fn wait_for(
        &self,
        name: &str,
        position: Position,
        timeout: Duration,
    ) -> Result<(), WaitError> {
        match self.runner(name) {
            Some(handle) => handle.wait_for(position, timeout).await,
            None => Err(WaitError::NotRunning {
                name: name.to_owned(),
                position,
                state: "stopped",
            }),
        }
    }

    /// Whether every store answers.
    pub async fn stores_reachable(&self) -> Result<(), tessera_core::StoreError> {
        self.stores.ordering.head().await?;
        self.stores.inventory.head().await?;
        self.stores.payment.head().await?;
        Ok(())
    }

    /// Stops the saga's worker and every runner (each after its current batch).
    pub async fn shutdown(&self) {
        let workers = std::mem::take(&mut *self.lock_workers());
        for worker in workers {
            worker.stop().await;
        }
        let runners = std::mem::take(&mut *self.lock_runners());
        for (_, running) in runners {
            if let Ok(handle) = Arc::try_unwrap(running.handle) {
                handle.stop().await;
            } // else: a waiting request holds it; dropping the last clone stops it
        }
    }
}
