//! The worker's marks, group-committed: commands dispatched while one mark is in flight
//! queue up and go together in the next ([`ProcessStore::mark_all_dispatched`]), so
//! under load a transaction marks many instances' commands, and when idle one command
//! is marked as soon as it was dispatched.

use tessera_core::process::{InstanceId, Issued, ProcessManager};
use tessera_core::BoxError;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::process::ProcessStore;

/// Dispatched commands waiting to be marked, and the mark in flight (at most one).
pub(super) struct Marks<P: ProcessManager> {
    queued: Vec<Issued<P::Command>>,
    /// The instances of the mark in flight.
    marking: Vec<InstanceId>,
    task: JoinSet<Result<(), BoxError>>,
    /// Most commands in one mark.
    most: usize,
}

impl<P: ProcessManager> Marks<P> {
    pub(super) fn new(most: usize) -> Self {
        Self {
            queued: Vec::new(),
            marking: Vec::new(),
            task: JoinSet::new(),
            most: most.max(1),
        }
    }

    /// Queues a dispatched command for the next mark.
    pub(super) fn push(&mut self, issued: Issued<P::Command>) {
        self.queued.push(issued);
    }

    /// The instances whose command waits for its mark or is being marked: none of their
    /// next commands may be claimed yet.
    pub(super) fn instances(&self) -> impl Iterator<Item = &InstanceId> {
        let queued = self.queued.iter().map(|i| &i.instance);
        self.marking.iter().chain(queued)
    }

    /// Starts the next mark with what is queued (at most the configured batch), unless
    /// one is in flight or nothing is queued.
    pub(super) fn start<S: ProcessStore<P>>(&mut self, store: &S) {
        if !self.task.is_empty() || self.queued.is_empty() {
            return;
        }
        let rest = self.queued.split_off(self.queued.len().min(self.most));
        let batch = std::mem::replace(&mut self.queued, rest);
        self.marking = batch.iter().map(|i| i.instance.clone()).collect();
        let store = store.clone();
        let mark = async move { store.mark_all_dispatched(&batch).await };
        self.task.spawn(mark.instrument(tracing::Span::current()));
    }

    /// Waits for the mark in flight to end (`None`: none is), and returns its instances
    /// and its outcome.
    pub(super) async fn landed(&mut self) -> Option<(Vec<InstanceId>, Result<(), BoxError>)> {
        let joined = self.task.join_next().await?;
        Some(self.finish(joined))
    }

    /// The mark in flight's instances and outcome, if it has ended.
    pub(super) fn try_landed(&mut self) -> Option<(Vec<InstanceId>, Result<(), BoxError>)> {
        let joined = self.task.try_join_next()?;
        Some(self.finish(joined))
    }

    fn finish(
        &mut self,
        joined: Result<Result<(), BoxError>, tokio::task::JoinError>,
    ) -> (Vec<InstanceId>, Result<(), BoxError>) {
        let outcome = joined.unwrap_or_else(|e| Err(format!("mark task failed: {e}").into()));
        (std::mem::take(&mut self.marking), outcome)
    }
}
