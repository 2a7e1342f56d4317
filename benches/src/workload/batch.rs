//! Appends of many events at once, straight to the store.

use std::time::{Duration, Instant};

use tessera_core::{EventStore, ExpectedVersion, NewEvent, StreamId};

use crate::order::sample_event;
use crate::stats::Latencies;

/// Appends `batches` batches of `size` events to fresh streams, one task.
pub async fn run<S: EventStore>(
    store: &S,
    batches: usize,
    size: usize,
    run_id: &str,
) -> Result<(Duration, Latencies), String> {
    let template: Vec<NewEvent> = (0..size as u64).map(sample_event).collect();
    let mut lat = Latencies::with_capacity(batches);
    let start = Instant::now();
    for b in 0..batches {
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
