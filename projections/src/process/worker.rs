//! The worker: dispatches the outbox and fires due deadlines.

use std::collections::HashSet;
use std::marker::PhantomData;
use std::sync::Arc;

use tessera_core::process::ProcessManager;
use tessera_core::BoxError;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{DispatchError, Dispatcher, ProcessConfig, ProcessStore};

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

/// Dispatches a process store's outbox through a [`Dispatcher`] and fires its due
/// deadlines. Commands of one instance go out one at a time, in the order they were
/// issued; a command that fails transiently is retried with backoff (the next attempt's
/// time is stored, so retries survive restarts) and holds back the instance's later
/// commands. Run one per process store, or several: deadlines fire once regardless, and
/// a command dispatched twice lands once through its idempotency key.
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

    /// Fires every due deadline and dispatches every command that may go now.
    pub async fn run_once(&self) -> Result<Round, BoxError> {
        let clock = self.store.clock();
        let mut round = Round {
            fired: self.store.fire_due(clock.now(), self.config.batch).await?,
            ..Round::default()
        };
        loop {
            let now = clock.now();
            let pending = self.store.pending(self.config.batch).await?;
            let mut seen = HashSet::new();
            let mut progress = false;
            for entry in pending {
                // Only the oldest pending command of an instance may go.
                if !seen.insert(entry.issued.instance.clone()) || entry.not_before > now {
                    continue;
                }
                let dispatch = self.dispatcher.dispatch(&entry.issued);
                let outcome = tokio::time::timeout(self.config.dispatch_timeout, dispatch)
                    .await
                    .unwrap_or_else(|_| {
                        let limit = self.config.dispatch_timeout;
                        Err(DispatchError::transient(format!(
                            "no answer within {limit:?}"
                        )))
                    });
                match outcome {
                    Ok(()) => {
                        self.store.mark_dispatched(&entry.issued).await?;
                        round.dispatched += 1;
                        progress = true;
                    }
                    Err(e) => {
                        let attempts = entry.attempts + 1;
                        let text = e.to_string();
                        tracing::warn!(command_id = %entry.issued.id, instance = %entry.issued.instance, attempts, error = %text, "dispatch failed");
                        let retry = (e.is_transient() && attempts < self.config.max_attempts)
                            .then(|| now + self.config.backoff(attempts));
                        self.store.mark_failed(&entry.issued, &text, retry).await?;
                        round.failed += 1;
                        progress |= retry.is_none();
                    }
                }
            }
            if !progress {
                return Ok(round);
            }
        }
    }

    /// Runs rounds until stopped: woken by new commands, and every poll interval.
    pub fn spawn(self) -> WorkerHandle {
        let (stop_tx, mut stop) = watch::channel(false);
        let wake = self.store.wakeup();
        let span = tracing::info_span!("process_worker", process = P::NAME);
        let task = tokio::spawn(tracing::Instrument::instrument(
            async move {
                loop {
                    let notified = wake.notified();
                    match self.run_once().await {
                        Ok(round) if round != Round::default() => {
                            tracing::debug!(?round, "worker round")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "worker round failed; retrying"),
                    }
                    tokio::select! {
                        _ = stop.changed() => return,
                        () = notified => {}
                        () = tokio::time::sleep(self.config.poll_interval) => {}
                    }
                }
            },
            span,
        ));
        WorkerHandle {
            stop: stop_tx,
            task: Some(task),
        }
    }
}

/// A running worker. Dropping it stops the worker after its current round.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    /// Stops it after its current round.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Kills it where it is, as a crash would.
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
