//! The worker's dispatches in flight: at most one per instance and a configured number
//! in all, each dispatched and then marked in a task of its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use tessera_core::process::{InstanceId, ProcessManager};
use tessera_core::BoxError;
use tokio::task::{Id, JoinSet};
use tracing::Instrument;

use crate::process::{DispatchError, Dispatcher, OutboxEntry, ProcessConfig, ProcessStore};

/// What became of one command.
#[derive(Debug, Clone, Copy)]
pub(super) enum Outcome {
    /// Dispatched and marked so.
    Dispatched,
    /// Failed transiently; to be retried at this time.
    Retry(SystemTime),
    /// Failed for good; its instance was told.
    Failed,
}

/// One finished flight: its instance, and what became of its command (an error if it
/// could not be marked, or its task panicked).
pub(super) struct Landed {
    pub(super) instance: InstanceId,
    pub(super) outcome: Result<Outcome, BoxError>,
}

pub(super) struct Flights<'a, P: ProcessManager, S> {
    store: &'a S,
    dispatcher: &'a Arc<dyn Dispatcher<P::Command>>,
    config: ProcessConfig,
    busy: HashMap<Id, InstanceId>,
    tasks: JoinSet<Result<Outcome, BoxError>>,
}

impl<'a, P: ProcessManager, S: ProcessStore<P>> Flights<'a, P, S> {
    pub(super) fn new(
        store: &'a S,
        dispatcher: &'a Arc<dyn Dispatcher<P::Command>>,
        config: ProcessConfig,
    ) -> Self {
        Self {
            store,
            dispatcher,
            config,
            busy: HashMap::new(),
            tasks: JoinSet::new(),
        }
    }

    /// Claims the due commands of instances not in flight nor in `held`, as many as there
    /// are free slots, and starts them. Returns whether every free slot was filled (more
    /// may be due).
    pub(super) async fn launch(&mut self, held: &[InstanceId]) -> Result<bool, BoxError> {
        let bound = self.config.max_concurrent_dispatches.max(1);
        let free = bound
            .saturating_sub(self.tasks.len())
            .min(self.config.batch);
        if free == 0 {
            return Ok(true);
        }
        let mut skip: Vec<InstanceId> = self.busy.values().cloned().collect();
        skip.extend_from_slice(held);
        let now = self.store.clock().now();
        let due = self.store.due(now, free, &skip).await?;
        let full = due.len() == free;
        for entry in due {
            let instance = entry.issued.instance.clone();
            let flight = attempt(
                self.store.clone(),
                Arc::clone(self.dispatcher),
                self.config,
                entry,
            );
            let task = self
                .tasks
                .spawn(flight.instrument(tracing::Span::current()));
            self.busy.insert(task.id(), instance);
        }
        Ok(full)
    }

    /// Waits for a flight to end (`None`: none in flight), and takes every other one
    /// that has ended too.
    pub(super) async fn landed(&mut self) -> Option<Vec<Landed>> {
        let first = self.tasks.join_next_with_id().await?;
        let mut all = vec![self.finish(first)];
        while let Some(next) = self.tasks.try_join_next_with_id() {
            all.push(self.finish(next));
        }
        Some(all)
    }

    fn finish(
        &mut self,
        joined: Result<(Id, Result<Outcome, BoxError>), tokio::task::JoinError>,
    ) -> Landed {
        let (id, outcome) = match joined {
            Ok((id, outcome)) => (id, outcome),
            Err(e) => (e.id(), Err(format!("dispatch task failed: {e}").into())),
        };
        let instance = self
            .busy
            .remove(&id)
            .unwrap_or_else(|| InstanceId::from(""));
        Landed { instance, outcome }
    }
}

/// Dispatches one command (cut off at the dispatch timeout) and marks the outcome.
async fn attempt<P: ProcessManager, S: ProcessStore<P>>(
    store: S,
    dispatcher: Arc<dyn Dispatcher<P::Command>>,
    config: ProcessConfig,
    entry: OutboxEntry<P::Command>,
) -> Result<Outcome, BoxError> {
    let issued = &entry.issued;
    let limit = config.dispatch_timeout;
    let outcome = tokio::time::timeout(limit, dispatcher.dispatch(issued))
        .await
        .unwrap_or_else(|_| {
            Err(DispatchError::transient(format!(
                "no answer within {limit:?}"
            )))
        });
    let error = match outcome {
        Ok(()) => {
            store.mark_dispatched(issued).await?;
            return Ok(Outcome::Dispatched);
        }
        Err(e) => e,
    };
    let attempts = entry.attempts + 1;
    let text = error.to_string();
    tracing::warn!(command_id = %issued.id, instance = %issued.instance, attempts, error = %text, "dispatch failed");
    let retry = (error.is_transient() && attempts < config.max_attempts)
        .then(|| store.clock().now() + config.backoff(attempts));
    store.mark_failed(issued, &text, retry).await?;
    Ok(retry.map_or(Outcome::Failed, Outcome::Retry))
}
