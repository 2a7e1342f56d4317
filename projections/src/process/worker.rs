//! The worker: dispatches the outbox, fires due deadlines, and prunes what retention lets go.

use std::marker::PhantomData;
use std::sync::Arc;

use tessera_core::process::{InstanceId, ProcessManager};
use tessera_core::{telemetry, BoxError};
use tokio::sync::watch;
use tracing::Instrument;

use super::{Backlog, Dispatcher, InstanceCounts, ProcessConfig, ProcessStore, Pruned};

mod flights;
mod handle;
mod marks;
mod prune;
mod serve;

use flights::{Flights, Outcome};
pub use handle::WorkerHandle;

/// What one round of the worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Deadlines fired.
    pub fired: usize,
    /// Commands dispatched.
    pub dispatched: usize,
    /// Dispatch attempts that failed (retried later or failed for good).
    pub failed: usize,
}

impl Round {
    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Dispatched => self.dispatched += 1,
            Outcome::Retry(_) | Outcome::Failed => self.failed += 1,
        }
    }
}

/// Dispatches a process store's outbox through a [`Dispatcher`], fires its due
/// deadlines, and prunes the records of ended instances older than
/// [`ProcessConfig::retention`].
///
/// Instances are dispatched concurrently, up to
/// [`ProcessConfig::max_concurrent_dispatches`] commands at once; the commands of one
/// instance go out one at a time, in the order they were issued: the next is claimed
/// only after the previous one was marked. A command that fails transiently is retried
/// with backoff (the next attempt's time is stored, so retries survive restarts) and
/// holds back the instance's later commands, not other instances'. Work is picked with
/// [`ProcessStore::due`], one call per batch of free slots (on PostgreSQL one page of
/// the pending queue, usually).
///
/// Dispatched commands are marked in batches, group-commit style: a command dispatched
/// while no mark is in flight is marked at once; those dispatched while one is in flight
/// queue up and go together in the next ([`ProcessStore::mark_all_dispatched`], at most
/// [`batch`](ProcessConfig::batch) commands; one transaction on PostgreSQL). An instance
/// stays busy until its command's mark committed, so its next command is claimed only
/// then; a failed mark releases its instances, whose commands are dispatched again.
/// [`max_concurrent_dispatches`](ProcessConfig::max_concurrent_dispatches) bounds the
/// dispatches under way, not the commands waiting for their mark.
///
/// Run one per process store, or several: deadlines fire once regardless. Claims are
/// not stored, so a restarted worker re-dispatches at once what a crashed one left in
/// flight; two workers may dispatch the same command, which lands once through its
/// idempotency key, and neither moves to an instance's next command before the
/// previous one was marked.
pub struct Worker<P: ProcessManager, S> {
    store: S,
    dispatcher: Arc<dyn Dispatcher<P::Command>>,
    config: ProcessConfig,
    _process: PhantomData<fn() -> P>,
}

impl<P: ProcessManager, S: ProcessStore<P>> Worker<P, S> {
    /// A worker over `store`, dispatching through `dispatcher`.
    pub fn new(
        store: S,
        dispatcher: Arc<dyn Dispatcher<P::Command>>,
        config: ProcessConfig,
    ) -> Self {
        Self {
            store,
            dispatcher,
            config,
            _process: PhantomData,
        }
    }

    /// Runs until stopped. It claims work when the store signals new commands, when a
    /// dispatch ends that may have freed one (its last scan passed over a pending
    /// command, [`Due::more`](super::Due::more)), when a retry it scheduled comes due,
    /// and shortly after a mark failed, so work queued in this process never waits for
    /// the poll interval; the poll interval paces due deadlines, retries scheduled by
    /// other workers and commands queued by another process (the store's wake-up is
    /// this process's).
    ///
    /// Beside that, it prunes when it starts and every
    /// [`prune_interval`](ProcessConfig::prune_interval), in rounds of at most
    /// [`prune_batch`](ProcessConfig::prune_batch) rows per table, so dispatching never
    /// waits behind a large backlog of records to prune.
    pub fn spawn(self) -> WorkerHandle {
        let (stop_tx, stop) = watch::channel(false);
        let span = tracing::info_span!("process_worker", process = P::NAME);
        let pruning = prune::serve::<P, S>(self.store.clone(), self.config, stop.clone());
        let store = self.store.clone();
        let gauges = Arc::new(Backlogged::new(P::NAME));
        let measure: handle::Measure = Arc::new(move || {
            let (store, gauges) = (store.clone(), Arc::clone(&gauges));
            Box::pin(async move {
                let backlog = store.backlog().await?;
                gauges.set(&backlog);
                Ok(backlog)
            })
        });
        let both = async move {
            tokio::join!(serve::serve(self, stop), pruning);
        };
        let task = tokio::spawn(both.instrument(span));
        WorkerHandle::new(stop_tx, task, measure)
    }

    /// One prune round: deletes the records that [`ProcessConfig::retention`] lets go,
    /// at most [`prune_batch`](ProcessConfig::prune_batch) rows per table
    /// ([`ProcessStore::prune`]). Nothing without a retention.
    pub async fn prune(&self) -> Result<Pruned, BoxError> {
        prune::round::<P, S>(&self.store, &self.config).await
    }

    fn flights(&self) -> Flights<'_, P, S> {
        Flights::new(&self.store, &self.dispatcher, self.config)
    }

    /// Fires every due deadline and dispatches every command that may go now, the
    /// next command of an instance as soon as its previous one was marked. A command
    /// that fails transiently waits for a later round. On a store error, waits for the
    /// dispatches in flight and returns the first error.
    pub async fn run_once(&self) -> Result<Round, BoxError> {
        let clock = self.store.clock();
        let mut round = Round {
            fired: self.store.fire_due(clock.now(), self.config.batch).await?,
            ..Round::default()
        };
        fired::<P>(round.fired);
        let mut flights = self.flights();
        let mut held: Vec<InstanceId> = Vec::new();
        let mut error = None;
        loop {
            if error.is_none() {
                if let Err(e) = flights.launch(&held).await {
                    error = Some(e);
                }
            }
            let Some(landed) = flights.landed().await else {
                break;
            };
            for l in landed {
                match l.outcome {
                    Ok(outcome) => {
                        round.count(outcome);
                        if let Outcome::Retry(_) = outcome {
                            held.push(l.instance);
                        }
                    }
                    Err(e) => {
                        error.get_or_insert(e);
                    }
                }
            }
        }
        error.map_or(Ok(round), Err)
    }
}

/// Counts `n` deadlines of process `P` fired (`tessera_process_deadlines_fired_total`).
fn fired<P: ProcessManager>(n: usize) {
    if n > 0 {
        metrics::counter!("tessera_process_deadlines_fired_total", "process" => P::NAME)
            .increment(n as u64);
    }
}

/// The gauges of a process store's outbox, set whenever its backlog is measured:
/// `tessera_process_commands_waiting`, `tessera_process_commands_retrying`,
/// `tessera_process_instances{status}`, `tessera_process_deadlines_scheduled` and
/// `tessera_process_deadlines_due`.
struct Backlogged {
    waiting: metrics::Key,
    retrying: metrics::Key,
    instances: [metrics::Key; 4],
    deadlines_scheduled: metrics::Key,
    deadlines_due: metrics::Key,
}

impl Backlogged {
    fn new(process: &'static str) -> Self {
        let labels = [("process", process)];
        Self {
            waiting: telemetry::key("tessera_process_commands_waiting", &labels),
            retrying: telemetry::key("tessera_process_commands_retrying", &labels),
            instances: InstanceCounts::default().by_status().map(|(status, _)| {
                telemetry::key(
                    "tessera_process_instances",
                    &[("process", process), ("status", status)],
                )
            }),
            deadlines_scheduled: telemetry::key("tessera_process_deadlines_scheduled", &labels),
            deadlines_due: telemetry::key("tessera_process_deadlines_due", &labels),
        }
    }

    fn set(&self, backlog: &Backlog) {
        telemetry::set(&self.waiting, telemetry::value(backlog.waiting));
        telemetry::set(&self.retrying, telemetry::value(backlog.retrying));
        for (key, (_, n)) in self.instances.iter().zip(backlog.instances.by_status()) {
            telemetry::set(key, telemetry::value(n));
        }
        let (scheduled, due) = (backlog.deadlines_scheduled, backlog.deadlines_due);
        telemetry::set(&self.deadlines_scheduled, telemetry::value(scheduled));
        telemetry::set(&self.deadlines_due, telemetry::value(due));
    }
}
