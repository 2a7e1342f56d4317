//! One active instance per reader: leases, and a supervisor that runs a reader only
//! while it holds one.
//!
//! Two instances of a service may run the same relay (or any reader). The checkpoint's
//! compare-and-set keeps them from applying a batch twice, but both would still publish.
//! With a [`Leadership`], one instance holds the lease of a name and runs the reader; the
//! others wait in [`lead`] and take over when the holder dies or loses its lease.
//!
//! - [`MemoryLeadership`]: instances in one process.
//! - `PgLeadership` (feature `postgres`): a session advisory lock on a connection held
//!   for the lease; the lease ends with the connection (a crashed process, a killed
//!   session), which the holder notices within its check interval. Between the lock's
//!   release and the old holder noticing, both may run for that interval: the
//!   checkpoint fences them, and whatever both published is absorbed downstream (message
//!   ids), so the lease is about efficiency and tidiness, not correctness.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use tessera_core::{BoxError, EventFilter, MemoryStore, RecordedEvent};
//! use tessera_projections::leader::{lead, MemoryLeadership};
//! use tessera_projections::{MemoryHandler, MemoryProjection, Runner, RunnerConfig};
//!
//! struct Count;
//! impl MemoryHandler for Count {
//!     type Model = u64;
//!     fn name(&self) -> &str { "count" }
//!     fn filter(&self) -> EventFilter { EventFilter::all() }
//!     fn handle(&self, n: &mut u64, _: &RecordedEvent) -> Result<(), BoxError> { *n += 1; Ok(()) }
//! }
//!
//! let store = MemoryStore::new();
//! let projection = MemoryProjection::new(Count);
//! let leadership = MemoryLeadership::new();
//! let start = move || Runner::new(store.clone(), projection.clone(), RunnerConfig::default());
//! let a = lead(leadership.clone(), "count", start.clone());
//! let b = lead(leadership.clone(), "count", start);
//! a.wait_until_leader(std::time::Duration::from_secs(5)).await.unwrap();
//! assert!(!b.is_leader());
//! a.stop().await; // b takes over
//! b.wait_until_leader(std::time::Duration::from_secs(5)).await.unwrap();
//! # });
//! ```

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tessera_core::{BoxError, EventReader};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::{Runner, RunnerHandle, Status, Subscriber};

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "postgres")]
pub use postgres::PgLeadership;

/// Where leases are held.
pub trait Leadership: Clone + Send + Sync + 'static {
    /// Waits until this instance holds the lease of `name`.
    fn acquire(&self, name: &str) -> impl Future<Output = Result<Lease, BoxError>> + Send;
}

/// A held lease: released when dropped.
pub struct Lease {
    lost: watch::Receiver<bool>,
    _hold: Box<dyn Send + Sync>,
}

impl Lease {
    /// A lease kept while `hold` lives, lost when `lost` turns `true`.
    pub fn new(lost: watch::Receiver<bool>, hold: Box<dyn Send + Sync>) -> Self {
        Self { lost, _hold: hold }
    }

    /// Resolves when the lease is lost (never, while it is held).
    pub async fn lost(&mut self) {
        if self.lost.wait_for(|lost| *lost).await.is_err() {
            // The sender is gone with whatever watched the lease: treat it as lost.
        }
    }
}

/// Leases among the instances of one process.
#[derive(Clone, Default)]
pub struct MemoryLeadership {
    held: Arc<Mutex<HashSet<String>>>,
    freed: Arc<Notify>,
}

impl MemoryLeadership {
    /// No lease held.
    pub fn new() -> Self {
        Self::default()
    }
}

struct MemoryHold {
    leadership: MemoryLeadership,
    name: String,
    _lost: watch::Sender<bool>,
}

impl Drop for MemoryHold {
    fn drop(&mut self) {
        self.leadership
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.name);
        self.leadership.freed.notify_waiters();
    }
}

impl Leadership for MemoryLeadership {
    async fn acquire(&self, name: &str) -> Result<Lease, BoxError> {
        loop {
            let freed = self.freed.notified();
            if self
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name.to_owned())
            {
                let (tx, rx) = watch::channel(false);
                let hold = MemoryHold {
                    leadership: self.clone(),
                    name: name.to_owned(),
                    _lost: tx,
                };
                return Ok(Lease::new(rx, Box::new(hold)));
            }
            freed.await;
        }
    }
}

/// A reader run only while its instance holds the lease; see [`lead`].
pub struct LeaderHandle<S> {
    leader: watch::Receiver<bool>,
    terms: Arc<std::sync::atomic::AtomicU64>,
    runner: Arc<Mutex<Option<RunnerHandle<S>>>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl<S: EventReader> LeaderHandle<S> {
    /// Whether this instance holds the lease and runs the reader now.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// How many times this instance has taken the lease (a lease lost and taken again
    /// counts twice).
    pub fn terms(&self) -> u64 {
        self.terms.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until this instance leads, at most `timeout`.
    pub async fn wait_until_leader(&self, timeout: Duration) -> Result<(), BoxError> {
        let mut leader = self.leader.clone();
        tokio::time::timeout(timeout, leader.wait_for(|l| *l))
            .await
            .map_err(|_| "not the leader in time")?
            .map_err(|_| "the supervisor ended")?;
        Ok(())
    }

    /// The reader's status while this instance leads.
    pub fn status(&self) -> Option<Status> {
        self.runner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(RunnerHandle::status)
    }

    /// Stops the reader (if leading) and gives the lease up.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Runs the reader `start` makes whenever this instance holds the lease of `name`:
/// waits for the lease, runs the reader until the lease is lost (or [`LeaderHandle::stop`]),
/// stops it, and waits for the lease again.
pub fn lead<L, S, P>(
    leadership: L,
    name: impl Into<String>,
    start: impl Fn() -> Runner<S, P> + Send + 'static,
) -> LeaderHandle<S>
where
    L: Leadership,
    S: EventReader,
    P: Subscriber,
{
    let name = name.into();
    let (leader_tx, leader) = watch::channel(false);
    let (stop, mut stopped) = watch::channel(false);
    let runner: Arc<Mutex<Option<RunnerHandle<S>>>> = Arc::default();
    let current = Arc::clone(&runner);
    let terms = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = Arc::clone(&terms);
    let task = tokio::spawn(async move {
        let take = || {
            current
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        };
        loop {
            let acquired = tokio::select! {
                lease = leadership.acquire(&name) => lease,
                _ = stopped.wait_for(|s| *s) => return,
            };
            let mut lease = match acquired {
                Ok(lease) => lease,
                Err(e) => {
                    tracing::warn!(lease = %name, error = %e, "cannot acquire the lease; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = stopped.wait_for(|s| *s) => return,
                    }
                }
            };
            tracing::info!(lease = %name, "leading");
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            *current.lock().unwrap_or_else(PoisonError::into_inner) = Some(start().spawn());
            let _ = leader_tx.send(true);
            let stopping = tokio::select! {
                () = lease.lost() => false,
                _ = stopped.wait_for(|s| *s) => true,
            };
            let _ = leader_tx.send(false);
            if let Some(r) = take() {
                r.stop().await;
            }
            drop(lease);
            if stopping {
                return;
            }
            tracing::warn!(lease = %name, "lease lost; reader stopped");
        }
    });
    LeaderHandle {
        leader,
        terms,
        runner,
        stop,
        task,
    }
}
