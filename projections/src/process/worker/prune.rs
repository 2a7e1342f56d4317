//! The spawned worker's pruning: a round when it starts and every prune interval, the
//! next soon after while rounds come back full.

use tessera_core::process::ProcessManager;
use tessera_core::BoxError;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::process::{ProcessConfig, ProcessStore, Pruned};

/// One round: what the retention lets go at the store's clock's time.
pub(super) async fn round<P: ProcessManager, S: ProcessStore<P>>(
    store: &S,
    config: &ProcessConfig,
) -> Result<Pruned, BoxError> {
    match config.prune_before(store.clock().now()) {
        Some(before) => store.prune(before, config.prune_batch).await,
        None => Ok(Pruned::default()),
    }
}

/// Prunes until `stop` turns `true` (at once without a retention).
pub(super) async fn serve<P: ProcessManager, S: ProcessStore<P>>(
    store: S,
    config: ProcessConfig,
    mut stop: watch::Receiver<bool>,
) {
    if config.retention.is_none() {
        return;
    }
    let mut next = Instant::now();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            () = tokio::time::sleep_until(next) => {}
        }
        let wait = match round::<P, S>(&store, &config).await {
            Ok(pruned) => {
                if pruned.total() > 0 {
                    tracing::debug!(
                        handled = pruned.handled,
                        outbox = pruned.outbox,
                        deadlines = pruned.deadlines,
                        "pruned"
                    );
                }
                if pruned.reached(config.prune_batch) {
                    config.poll_interval
                } else {
                    config.prune_interval
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "pruning failed; retrying at the next interval");
                config.prune_interval
            }
        };
        next = Instant::now() + wait;
    }
}
