//! The worker's dispatches in flight: at most one per instance and a configured number
//! in all, each dispatched in a task of its own; a dispatched command is then marked with
//! others ([`Marks`]), and its instance stays busy until that mark committed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use tessera_core::process::{InstanceId, Issued, ProcessManager};
use tessera_core::BoxError;
use tokio::task::{Id, JoinSet};
use tracing::Instrument;

use super::marks::Marks;
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

/// What a dispatch task ends with: a command dispatched, to be marked, or an attempt
/// that failed, marked so.
enum Attempted<C> {
    Dispatched(Issued<C>),
    Settled(Outcome),
}

/// A dispatch task, joined: its id and what it ended with, or why it did not end.
type Joined<C> = Result<(Id, Result<Attempted<C>, BoxError>), tokio::task::JoinError>;

/// What one [`Flights::launch`] did.
#[derive(Debug, Clone, Copy)]
pub(super) struct Launched {
    /// Every free slot was filled: more may be due already.
    pub(super) full: bool,
    /// The scan left a pending command (behind an instance in flight, before its retry
    /// time, or beyond the free slots).
    pub(super) more: bool,
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
    tasks: JoinSet<Result<Attempted<P::Command>, BoxError>>,
    marks: Marks<P>,
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
            marks: Marks::new(config.batch),
        }
    }

    /// Claims the due commands of instances not in flight (dispatched, or waiting for
    /// their mark) nor in `held`, as many as there are free dispatch slots, and starts
    /// them. Returns whether every free slot was filled (more may be due now) and
    /// whether the scan left a pending command (one may become due when an instance
    /// lands).
    pub(super) async fn launch(&mut self, held: &[InstanceId]) -> Result<Launched, BoxError> {
        let bound = self.config.max_concurrent_dispatches.max(1);
        let free = bound
            .saturating_sub(self.tasks.len())
            .min(self.config.batch);
        if free == 0 {
            return Ok(Launched {
                full: true,
                more: true,
            });
        }
        let mut skip: Vec<InstanceId> = self.busy.values().cloned().collect();
        skip.extend(self.marks.instances().cloned());
        skip.extend_from_slice(held);
        let now = self.store.clock().now();
        let due = self.store.due(now, free, &skip).await?;
        let full = due.entries.len() == free;
        for entry in due.entries {
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
        Ok(Launched {
            full,
            more: due.more,
        })
    }

    /// Waits for a dispatch or a mark to end (`None`: none in flight, nor waiting for its
    /// mark), takes every other one that has ended too, and returns the flights that
    /// ended: a dispatched command ends when its mark committed, a failed attempt once
    /// marked so. While one mark is in flight, the commands dispatched meanwhile queue up
    /// for the next. An empty list: only dispatches ended, their slots are free for more
    /// (their instances stay busy until marked). Cancel-safe.
    pub(super) async fn landed(&mut self) -> Option<Vec<Landed>> {
        let mut all = Vec::new();
        self.marks.start(self.store);
        tokio::select! {
            Some(joined) = self.tasks.join_next_with_id() => self.finish(joined, &mut all),
            Some((instances, outcome)) = self.marks.landed() => marked(instances, outcome, &mut all),
            else => return None,
        }
        while let Some(next) = self.tasks.try_join_next_with_id() {
            self.finish(next, &mut all);
        }
        if let Some((instances, outcome)) = self.marks.try_landed() {
            marked(instances, outcome, &mut all);
        }
        self.marks.start(self.store);
        Some(all)
    }

    fn finish(&mut self, joined: Joined<P::Command>, all: &mut Vec<Landed>) {
        let (id, attempted) = match joined {
            Ok((id, attempted)) => (id, attempted),
            Err(e) => (e.id(), Err(format!("dispatch task failed: {e}").into())),
        };
        let instance = self
            .busy
            .remove(&id)
            .unwrap_or_else(|| InstanceId::from(""));
        match attempted {
            Ok(Attempted::Dispatched(issued)) => self.marks.push(issued),
            Ok(Attempted::Settled(outcome)) => all.push(Landed {
                instance,
                outcome: Ok(outcome),
            }),
            Err(e) => all.push(Landed {
                instance,
                outcome: Err(e),
            }),
        }
    }
}

/// The flights of one mark, ended: dispatched and marked, or (the mark failed) to be
/// claimed and dispatched again.
fn marked(instances: Vec<InstanceId>, outcome: Result<(), BoxError>, all: &mut Vec<Landed>) {
    for instance in instances {
        let outcome = match &outcome {
            Ok(()) => Ok(Outcome::Dispatched),
            Err(e) => Err(format!("marking dispatched failed: {e}").into()),
        };
        all.push(Landed { instance, outcome });
    }
}

/// The span of one dispatch of `issued` by process `name`, under `parent` (`None`: a
/// root).
macro_rules! dispatch_span {
    ($parent:expr, $name:expr, $issued:expr, $attempt:expr) => {
        tracing::info_span!(
            parent: $parent,
            "dispatch",
            otel.name = %format_args!("dispatch {}", $name),
            tessera.process = $name,
            tessera.instance = %$issued.instance,
            tessera.command_id = %$issued.id,
            tessera.attempt = $attempt,
        )
    };
}

/// Dispatches one command (cut off at the dispatch timeout); marks a failed attempt,
/// and hands a dispatched command back to be marked with others.
async fn attempt<P: ProcessManager, S: ProcessStore<P>>(
    store: S,
    dispatcher: Arc<dyn Dispatcher<P::Command>>,
    config: ProcessConfig,
    entry: OutboxEntry<P::Command>,
) -> Result<Attempted<P::Command>, BoxError> {
    let issued = &entry.issued;
    let limit = config.dispatch_timeout;
    let dispatching = tokio::time::timeout(limit, dispatcher.dispatch(issued));
    let outcome = match &issued.trace {
        // The dispatch continues the trace of the event the instance reacted to.
        Some(trace) if !issued.trace_linked => {
            let span = dispatch_span!(
                tracing::Span::current(),
                P::NAME,
                issued,
                entry.attempts + 1
            );
            trace.parent(&span);
            dispatching.instrument(span).await
        }
        // A deadline that fired, perhaps hours after the trace that set it: a trace of
        // its own, linked to that one, rather than a child span that would stretch the
        // first trace over the wait.
        Some(trace) => {
            let span = dispatch_span!(None, P::NAME, issued, entry.attempts + 1);
            trace.link(&span);
            dispatching.instrument(span).await
        }
        None => dispatching.await,
    };
    let outcome = outcome.unwrap_or_else(|_| {
        Err(DispatchError::transient(format!(
            "no answer within {limit:?}"
        )))
    });
    let error = match outcome {
        Ok(()) => return Ok(Attempted::Dispatched(entry.issued)),
        Err(e) => e,
    };
    let attempts = entry.attempts + 1;
    let text = error.to_string();
    tracing::warn!(command_id = %issued.id, instance = %issued.instance, attempts, error = %text, "dispatch failed");
    let retry = (error.is_transient() && attempts < config.max_attempts)
        .then(|| store.clock().now() + config.backoff(attempts));
    store.mark_failed(issued, &text, retry).await?;
    Ok(Attempted::Settled(
        retry.map_or(Outcome::Failed, Outcome::Retry),
    ))
}
