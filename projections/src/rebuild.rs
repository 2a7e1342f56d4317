//! Rebuild progress: events done, rate, estimated time left.

use std::time::{Duration, Instant};

use tessera_core::{EventFilter, EventReader, Position};

/// How far a rebuild has come. Drawn by the CLI as a progress bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Events applied so far.
    pub done: u64,
    /// Position reached.
    pub position: Position,
    /// Head of the log when the rebuild started (the target; the log may grow).
    pub target: Option<Position>,
    /// Events the rebuild applies up to `target`, in the unit of `done`: those passing
    /// its filter, as the store counts them ([`EventReader::count_events`]); never below
    /// `done` (events arriving after the start are applied too). A store that cannot
    /// count gets an estimate: the distance in positions at the start, then `done` plus
    /// the events still ahead extrapolated from the rate of events per position so far.
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
    /// Where the rebuild started reading.
    from: Position,
    /// Whether the store counted the events to apply (else they are estimated).
    counted: bool,
    progress: Progress,
    /// `tessera_rebuild_events_done{projection}` and
    /// `tessera_rebuild_events_total{projection}`, when named.
    gauges: Option<[metrics::Key; 2]>,
}

impl ProgressMeter {
    /// Reads the head, counts the events passing `filter` after `from` up to it (what a
    /// rebuild reading from `from` applies before it catches up), and starts the clock.
    pub async fn start<S: EventReader>(
        store: &S,
        from: Position,
        filter: &EventFilter,
    ) -> Result<Self, tessera_core::StoreError> {
        let target = store.head().await?;
        let counted = match target {
            Some(head) if head > from => store.count_events(from, head, filter).await?,
            _ => Some(0),
        };
        let total_estimate =
            counted.unwrap_or_else(|| target.map_or(0, |t| t.prepare.saturating_sub(from.prepare)));
        Ok(Self {
            started: Instant::now(),
            from,
            counted: counted.is_some(),
            progress: Progress {
                done: 0,
                position: from,
                target,
                total_estimate,
                events_per_s: 0.0,
                eta: None,
                finished: false,
            },
            gauges: None,
        })
    }

    /// Names the projection rebuilt: its progress is then the gauges
    /// `tessera_rebuild_events_done{projection}` and
    /// `tessera_rebuild_events_total{projection}` (the estimate of events to apply), set
    /// at every advance.
    #[must_use]
    pub fn named(mut self, projection: &str) -> Self {
        let labels = [("projection", projection)];
        self.gauges = Some([
            tessera_core::telemetry::key("tessera_rebuild_events_done", &labels),
            tessera_core::telemetry::key("tessera_rebuild_events_total", &labels),
        ]);
        self.publish();
        self
    }

    fn publish(&self) {
        use tessera_core::telemetry::{set, value};
        if let Some([done, total]) = &self.gauges {
            set(done, value(self.progress.done));
            set(total, value(self.progress.total_estimate));
        }
    }

    /// Records `n` more events applied, up to `position`.
    pub fn advance(&mut self, n: u64, position: Position) -> &Progress {
        let p = &mut self.progress;
        p.done += n;
        p.position = position;
        let secs = self.started.elapsed().as_secs_f64().max(1e-6);
        p.events_per_s = p.done as f64 / secs;
        let left = if self.counted {
            p.total_estimate = p.total_estimate.max(p.done);
            p.total_estimate - p.done
        } else {
            // Not counted: the events still ahead, extrapolated from the events done per
            // position read so far (positions count every event of the log, or bytes).
            let read = position.prepare.saturating_sub(self.from.prepare).max(1);
            let ahead = p
                .target
                .map_or(0, |t| t.prepare.saturating_sub(position.prepare));
            let left = u128::from(ahead) * u128::from(p.done) / u128::from(read);
            let left = u64::try_from(left).unwrap_or(u64::MAX);
            p.total_estimate = p.done.saturating_add(left);
            left
        };
        p.eta =
            (p.events_per_s > 0.0).then(|| Duration::from_secs_f64(left as f64 / p.events_per_s));
        self.publish();
        &self.progress
    }

    /// Marks the rebuild finished.
    pub fn finish(mut self) -> Progress {
        self.progress.finished = true;
        self.progress.eta = Some(Duration::ZERO);
        self.progress
    }
}
