//! Appends of many events at once, straight to the store.

use std::time::{Duration, Instant};

use tessera_core::{EventStore, ExpectedVersion, NewEvent, StreamId};

use crate::order::sample_event;
use crate::stats::Latencies;

/// Appends batches number `batches` (a part of the run, so it can be split into rounds)
/// of `size` events each to fresh streams, one task.
pub async fn run<S: EventStore>(
    store: &S,
    batches: std::ops::Range<usize>,
    size: usize,
    run_id: &str,
) -> Result<(Duration, Latencies), String> {
    let template: Vec<NewEvent> = (0..size as u64).map(sample_event).collect();
    let mut lat = Latencies::with_capacity(batches.len());
    let start = Instant::now();
    for b in batches {
        let stream =
            StreamId::new(format!("benchbatch-{run_id}_{b}")).map_err(|e| e.to_string())?;
        let events = template
            .iter()
            .map(|e| e.clone().with_id(tessera_core::EventId::random()))
            .collect();
        let t0 = Instant::now();
        store
            .append(&stream, ExpectedVersion::NoStream, events)
            .await
            .map_err(|e| format!("append to {stream} failed: {e}"))?;
        lat.record(t0.elapsed());
    }
    Ok((start.elapsed(), lat))
}
