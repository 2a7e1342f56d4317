//! The spawned worker: claims due commands whenever a slot frees up or new commands are
//! recorded, retries when their time comes, and fires due deadlines every poll interval.

use tessera_core::process::ProcessManager;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Outcome, Worker};
use crate::process::ProcessStore;

/// The worker's loop, until `stop` turns `true`.
pub(super) async fn serve<P: ProcessManager, S: ProcessStore<P>>(
    worker: Worker<P, S>,
    mut stop: watch::Receiver<bool>,
) {
    let (wake, clock) = (worker.store.wakeup(), worker.store.clock());
    let mut flights = worker.flights();
    let mut tick = Instant::now();
    let mut retry: Option<Instant> = None;
    // Whether due commands may be waiting unclaimed.
    let mut scan = true;
    // Whether the last scan left a pending command, which may become due when an
    // instance in flight lands: if not, a landing frees nothing to claim (new commands
    // come with a wake-up, retries with their timer, and the tick scans regardless).
    let mut more = true;
    loop {
        let now = Instant::now();
        if now >= tick {
            tick = now + worker.config.poll_interval;
            scan = true;
            match worker
                .store
                .fire_due(clock.now(), worker.config.batch)
                .await
            {
                Ok(fired) if fired >= worker.config.batch => {
                    super::fired::<P>(fired);
                    tick = now;
                }
                Ok(fired) => super::fired::<P>(fired),
                Err(e) => tracing::warn!(error = %e, "firing deadlines failed; retrying"),
            }
        }
        if retry.is_some_and(|at| at <= now) {
            (retry, scan) = (None, true);
        }
        if scan {
            (scan, more) = match flights.launch(&[]).await {
                Ok(launched) => (launched.full, launched.more),
                Err(e) => {
                    tracing::warn!(error = %e, "claiming commands failed; retrying");
                    (false, true)
                }
            };
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
                        Ok(_) => scan |= more,
                        Err(e) => {
                            // Its command is pending and claimable again: claimed after
                            // the base backoff, or by a scan before that.
                            tracing::warn!(error = %e, instance = %l.instance, "marking a dispatch failed; retrying");
                            let at = Instant::now() + worker.config.base_backoff;
                            retry = Some(retry.map_or(at, |r| r.min(at)));
                            more = true;
                        }
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
