//! Rebuild progress: events done, rate, estimated time left.

use std::time::{Duration, Instant};

use tessera_core::{EventReader, Position};

/// How far a rebuild has come. Drawn by the CLI as a progress bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Events applied so far.
    pub done: u64,
    /// Position reached.
    pub position: Position,
    /// Head of the log when the rebuild started (the target; the log may grow).
    pub target: Option<Position>,
    /// Estimated events in all (an upper bound from positions on PostgreSQL).
    pub total_estimate: u64,
    /// Events per second since the start.
    pub events_per_s: f64,
    /// Estimated time left.
    pub eta: Option<Duration>,
    /// Whether the rebuild has taken over.
    pub finished: bool,
}

/// Tracks progress against the head read at the start.
#[derive(Debug)]
pub struct ProgressMeter {
    started: Instant,
    progress: Progress,
}

impl ProgressMeter {
    /// Reads the head and starts the clock.
    pub async fn start<S: EventReader>(store: &S) -> Result<Self, tessera_core::StoreError> {
        let target = store.head().await?;
        Ok(Self {
            started: Instant::now(),
            progress: Progress {
                done: 0,
                position: Position::START,
                target,
                total_estimate: target.map_or(0, |p| p.prepare),
                events_per_s: 0.0,
                eta: None,
                finished: false,
            },
        })
    }

    /// Records `n` more events applied, up to `position`.
    pub fn advance(&mut self, n: u64, position: Position) -> &Progress {
        let p = &mut self.progress;
        p.done += n;
        p.position = position;
        let secs = self.started.elapsed().as_secs_f64().max(1e-6);
        p.events_per_s = p.done as f64 / secs;
        let left = p
            .target
            .map_or(0, |t| t.prepare.saturating_sub(position.prepare));
        p.total_estimate = p.total_estimate.max(p.done);
        p.eta =
            (p.events_per_s > 0.0).then(|| Duration::from_secs_f64(left as f64 / p.events_per_s));
        &self.progress
    }

    /// Marks the rebuild finished.
    pub fn finish(mut self) -> Progress {
        self.progress.finished = true;
        self.progress.eta = Some(Duration::ZERO);
        self.progress
    }
}
