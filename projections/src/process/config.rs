//! Process runtime tuning, and the clock deadlines are measured with.

use std::time::{Duration, SystemTime};

use tessera_core::Backoff;

/// The default [`ProcessConfig::retention`]: seven days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// How the process runtime retries dispatches, polls for work and prunes what it no
/// longer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessConfig {
    /// Attempts at dispatching one command before it has failed for good.
    pub max_attempts: u32,
    /// Delay before the second attempt (doubling each time, with jitter).
    pub base_backoff: Duration,
    /// Cap of the delay between attempts.
    pub max_backoff: Duration,
    /// How often the worker looks for due deadlines and retries when nothing wakes it.
    pub poll_interval: Duration,
    /// Most outbox entries or deadlines taken in one round.
    pub batch: usize,
    /// Longest one dispatch may take; a dispatch cut off counts as a transient failure.
    pub dispatch_timeout: Duration,
    /// Most commands one worker has in flight at once, across instances (an instance
    /// never has more than one). 0 counts as 1.
    pub max_concurrent_dispatches: usize,
    /// How long the records of an ended instance are kept once it stopped changing: its
    /// handled triggers, settled commands and fired or cancelled deadlines. `None` keeps
    /// everything. What is pruned, and why exactly-once holds without it:
    /// [retention](crate::process#retention).
    pub retention: Option<Duration>,
    /// How often a spawned [`Worker`](super::Worker) prunes (it also prunes when it
    /// starts). A round that reached [`prune_batch`](Self::prune_batch) in some table is
    /// followed by the next after [`poll_interval`](Self::poll_interval), until the
    /// backlog is gone.
    pub prune_interval: Duration,
    /// Most rows one prune round deletes from each table, so a large backlog is pruned in
    /// short steps (PostgreSQL: one statement per table; memory: an instance's records go
    /// together, so a round may exceed it by one instance's rows, and it visits at most
    /// this many ended instances). 0 counts as 1.
    pub prune_batch: usize,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            poll_interval: Duration::from_millis(250),
            batch: 256,
            dispatch_timeout: Duration::from_secs(30),
            max_concurrent_dispatches: 16,
            retention: Some(DEFAULT_RETENTION),
            prune_interval: Duration::from_secs(300),
            prune_batch: 1000,
        }
    }
}

impl ProcessConfig {
    /// The delay after failed attempt number `attempt` (1-based): exponential, capped,
    /// with jitter in its upper half ([`Backoff::capped`]).
    pub fn backoff(&self, attempt: u32) -> Duration {
        Backoff::capped(self.base_backoff, self.max_backoff, self.max_attempts).delay(attempt)
    }

    /// What is old enough to prune at `now`: records from before this time. `None`:
    /// nothing (no retention, or a retention longer than the clock reaches back).
    pub fn prune_before(&self, now: SystemTime) -> Option<SystemTime> {
        now.checked_sub(self.retention?)
    }
}

/// Wall-clock time that advances with tokio's clock: real time normally, and paused or
/// advanced time in tests (`#[tokio::test(start_paused = true)]`). Deadlines are stored
/// as wall-clock times so they survive restarts.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall: SystemTime,
    tokio: tokio::time::Instant,
}

impl Clock {
    /// A clock anchored at the current time. Call it inside a tokio runtime.
    pub fn new() -> Self {
        Self {
            wall: SystemTime::now(),
            tokio: tokio::time::Instant::now(),
        }
    }

    /// The current time.
    pub fn now(&self) -> SystemTime {
        self.wall + self.tokio.elapsed()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
