//! The spawned worker: claims due commands whenever a slot frees up or new commands are
//! recorded, retries when their time comes, and fires due deadlines every poll interval.

use tessera_core::process::ProcessManager;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

use super::{Outcome, Worker, WorkerHandle};
use crate::process::ProcessStore;

impl<P: ProcessManager, S: ProcessStore<P>> Worker<P, S> {
    /// Runs until stopped. It claims work as soon as a dispatch ends, when the store
    /// signals new commands, and when a retry it scheduled comes due, so queued work
    /// never waits for the poll interval; the poll interval paces due deadlines and
    /// retries scheduled by other workers.
    pub fn spawn(self) -> WorkerHandle {
        let (stop_tx, stop) = watch::channel(false);
        let span = tracing::info_span!("process_worker", process = P::NAME);
        WorkerHandle::new(stop_tx, tokio::spawn(self.serve(stop).instrument(span)))
    }

    async fn serve(self, mut stop: watch::Receiver<bool>) {
        let (wake, clock) = (self.store.wakeup(), self.store.clock());
        let mut flights = self.flights();
        let mut tick = Instant::now();
        let mut retry: Option<Instant> = None;
        // Whether due commands may be waiting unclaimed.
        let mut scan = true;
        loop {
            let now = Instant::now();
            if now >= tick {
                tick = now + self.config.poll_interval;
                scan = true;
                match self.store.fire_due(clock.now(), self.config.batch).await {
                    Ok(fired) if fired >= self.config.batch => tick = now,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "firing deadlines failed; retrying"),
                }
            }
            if retry.is_some_and(|at| at <= now) {
                (retry, scan) = (None, true);
            }
            if scan {
                scan = flights.launch(&[]).await.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "claiming commands failed; retrying");
                    false
                });
            }
            let wait = retry.map_or(tick, |at| at.min(tick));
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                Some(landed) = flights.landed() => {
                    for l in landed {
                        match l.outcome {
                            Ok(Outcome::Retry(at)) => {
                                let delay = at.duration_since(clock.now()).unwrap_or_default();
                                let at = Instant::now() + delay;
                                retry = Some(retry.map_or(at, |r| r.min(at)));
                            }
                            Ok(_) => scan = true,
                            Err(e) => tracing::warn!(error = %e, instance = %l.instance, "marking a dispatch failed; retrying"),
                        }
                    }
                }
                () = wake.notified() => scan = true,
                () = tokio::time::sleep_until(wait) => {}
            }
        }
        // Stopped: claim nothing more, and let the dispatches in flight be marked.
        while let Some(landed) = flights.landed().await {
            for l in landed {
                if let Err(e) = l.outcome {
                    tracing::warn!(error = %e, instance = %l.instance, "marking a dispatch failed");
                }
            }
        }
    }
}
