//! A bulkhead: at most N calls at once, on a tokio semaphore.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bulkhead is full: no slot freed within its maximum wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bulkhead full")]
pub struct Full;

/// A bulkhead's figures, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkheadSnapshot {
    /// Most calls at once.
    pub max_concurrent: usize,
    /// Calls in flight now.
    pub in_flight: usize,
    /// Calls refused because it was full.
    pub rejected: u64,
}

/// Limits concurrent calls; a call waits at most `max_wait` for a slot, then is refused,
/// so a slow service cannot tie up every task of the caller. Clones share the slots.
#[derive(Debug, Clone)]
pub struct Bulkhead {
    slots: Arc<Semaphore>,
    max_concurrent: usize,
    max_wait: Duration,
    rejected: Arc<AtomicU64>,
}

impl Bulkhead {
    /// At most `max_concurrent` calls (at least 1), waiting at most `max_wait` for a slot.
    pub fn new(max_concurrent: usize, max_wait: Duration) -> Self {
        let max_concurrent = max_concurrent.max(1);
        Self {
            slots: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            max_wait,
            rejected: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A slot, held until the returned permit is dropped.
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, Full> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(permit);
        }
        if !self.max_wait.is_zero() {
            let wait = Arc::clone(&self.slots).acquire_owned();
            if let Ok(Ok(permit)) = tokio::time::timeout(self.max_wait, wait).await {
                return Ok(permit);
            }
        }
        self.rejected.fetch_add(1, Ordering::Relaxed);
        Err(Full)
    }

    /// Calls in flight, the limit, and refusals.
    pub fn snapshot(&self) -> BulkheadSnapshot {
        BulkheadSnapshot {
            max_concurrent: self.max_concurrent,
            in_flight: self.max_concurrent
                - self.slots.available_permits().min(self.max_concurrent),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}
