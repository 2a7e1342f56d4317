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
    /// `tessera_bulkhead_in_flight{route}` and `tessera_bulkhead_rejections_total{route}`,
    /// when named.
    keys: Option<Arc<[metrics::Key; 2]>>,
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
            keys: None,
        }
    }

    /// Names it after the route it guards: its calls in flight are then the gauge
    /// `tessera_bulkhead_in_flight{route}` (set when a slot is taken, and by
    /// [`Resilience`](super::Resilience) when its call ends) and its refusals the counter
    /// `tessera_bulkhead_rejections_total{route}`. An unnamed bulkhead records no metrics.
    #[must_use]
    pub fn with_name(mut self, route: &str) -> Self {
        let labels = [("route", route)];
        self.keys = Some(Arc::new([
            tessera_core::telemetry::key("tessera_bulkhead_in_flight", &labels),
            tessera_core::telemetry::key("tessera_bulkhead_rejections_total", &labels),
        ]));
        self.publish();
        self
    }

    /// A slot that, when dropped, frees itself and then sets the in-flight gauge.
    pub(super) async fn slot(&self) -> Result<Slot<'_>, Full> {
        Ok(Slot(self, Some(self.acquire().await?)))
    }

    /// Sets the in-flight gauge to the calls in flight now (named bulkheads only).
    pub fn publish(&self) {
        if let Some([in_flight, _]) = self.keys.as_deref() {
            let n = self.snapshot().in_flight as u64;
            tessera_core::telemetry::set(in_flight, tessera_core::telemetry::value(n));
        }
    }

    /// A slot, held until the returned permit is dropped.
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, Full> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            self.publish();
            return Ok(permit);
        }
        if !self.max_wait.is_zero() {
            let wait = Arc::clone(&self.slots).acquire_owned();
            if let Ok(Ok(permit)) = tokio::time::timeout(self.max_wait, wait).await {
                self.publish();
                return Ok(permit);
            }
        }
        self.rejected.fetch_add(1, Ordering::Relaxed);
        if let Some([_, rejections]) = self.keys.as_deref() {
            tessera_core::telemetry::increment(rejections, 1);
        }
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

/// A slot of a [`Bulkhead`] taken by [`Resilience`](super::Resilience).
pub(super) struct Slot<'a>(&'a Bulkhead, Option<OwnedSemaphorePermit>);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        drop(self.1.take());
        self.0.publish();
    }
}
