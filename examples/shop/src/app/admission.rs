//! Admission control: new orders are refused (`503` with `Retry-After`) while the
//! pipeline's backlog is over a bound, so that an offered rate above what the machine
//! settles does not take the CPU the pipeline needs to settle what it already took.
//!
//! The backlog is the work taken and not done on the way to settling orders: the events
//! the saga, the relays and the payment worker have yet to handle (their lag; read
//! models are left out, an order does not wait for them) and the messages waiting for
//! the inboxes (the broker's count), as their statuses last measured them, and the
//! commands the saga issued and has not dispatched (one count from an index on
//! PostgreSQL). A stopped or failed runner or inbox is left out (readiness reports it). A task measures it
//! every [`MEASURE_EVERY`]; `POST /v1/orders` reads the verdict, one atomic load.
//! Refusing starts when the backlog goes over the bound and stops when it is back
//! under three quarters of it, so the verdict does not flap at the bound.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tessera_core::{EventStore, SnapshotStore};
use tessera_projections::integration::InboxState;
use tessera_projections::State as RunnerState;

use super::App;

/// How often the backlog is measured.
pub const MEASURE_EVERY: Duration = Duration::from_millis(200);

/// The bound, the last measure and the verdict.
#[derive(Debug, Default)]
pub struct Admission {
    /// Most backlog at which new orders are still taken; 0: always taken.
    max: u64,
    backlog: AtomicU64,
    refusing: AtomicBool,
    refused: AtomicU64,
}

impl Admission {
    /// Admission with a bound of `max` (0 takes every order).
    ///
    /// ```
    /// use shop::app::Admission;
    /// let a = Admission::new(100);
    /// a.observe(101);
    /// assert!(a.refusing(), "over the bound");
    /// a.observe(80);
    /// assert!(a.refusing(), "not yet under three quarters of it");
    /// a.observe(75);
    /// assert!(!a.refusing());
    /// ```
    pub fn new(max: u64) -> Self {
        Self {
            max,
            ..Self::default()
        }
    }

    /// Records a measure of the backlog and decides from it.
    pub fn observe(&self, backlog: u64) {
        self.backlog.store(backlog, Ordering::Relaxed);
        if self.max == 0 {
            return;
        }
        let refusing = if self.refusing.load(Ordering::Relaxed) {
            backlog > self.max / 4 * 3
        } else {
            backlog > self.max
        };
        self.refusing.store(refusing, Ordering::Relaxed);
    }

    /// Counts an order refused for the backlog.
    pub fn refuse(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The bound (0: none).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The backlog as last measured.
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Whether new orders are refused now.
    pub fn refusing(&self) -> bool {
        self.refusing.load(Ordering::Relaxed)
    }

    /// Orders refused since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

impl<S: EventStore + SnapshotStore> App<S> {
    /// The work this process has taken and not done on the way to settling orders: the
    /// lag of its saga, relays and payment worker (not of read models: an order does
    /// not wait for one) and its inboxes' waiting messages, as their statuses last
    /// measured them, and the saga's undispatched commands where the saga runs here
    /// (left out when it cannot be counted). A runner or inbox that stopped or failed
    /// is left out: its last figure no longer moves, and readiness reports it.
    pub async fn backlog(&self) -> u64 {
        let runners: u64 = self
            .statuses()
            .iter()
            .filter(|(kind, _, s)| {
                *kind != super::Kind::Projection
                    && !matches!(s.state, RunnerState::Stopped | RunnerState::Failed)
            })
            .map(|(_, _, s)| s.lag_events)
            .sum();
        let inboxes: u64 = self
            .inbox_statuses()
            .iter()
            .filter(|(_, s)| !matches!(s.state, InboxState::Stopped | InboxState::Failed))
            .filter_map(|(_, s)| s.lag)
            .sum();
        let commands = if self.runs("ordering") {
            self.saga.waiting().await.unwrap_or(0)
        } else {
            0
        };
        runners + inboxes + commands
    }

    /// Measures the backlog every [`MEASURE_EVERY`] while the app lives (when a bound
    /// is set).
    pub(super) fn spawn_admission(self: &Arc<Self>) {
        if self.admission.max() == 0 {
            return;
        }
        let app: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(MEASURE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(app) = app.upgrade() else { return };
                let backlog = app.backlog().await;
                app.admission.observe(backlog);
            }
        });
    }
}
