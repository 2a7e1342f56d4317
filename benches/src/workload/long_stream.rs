//! Commands on long streams: what snapshots buy.

use std::time::{Duration, Instant};

use tessera_core::{CommandHandler, EventStore, ExpectedVersion, NewEvent, StreamId};

use crate::order::{sample_event, AddLine, BenchOrder};
use crate::stats::Latencies;

/// Fills `streams` streams with `length` events each, in batches of 1,000.
pub async fn prepare<S: EventStore>(
    store: &S,
    streams: usize,
    length: usize,
    run_id: &str,
) -> Result<Vec<String>, String> {
    let mut ids = Vec::with_capacity(streams);
    for s in 0..streams {
        let id = format!("{run_id}_long_{s}");
        let stream = StreamId::from_parts("benchorder", &id).map_err(|e| e.to_string())?;
        let mut written = 0usize;
        while written < length {
            let n = (length - written).min(1000);
            let events: Vec<NewEvent> =
                (0..n).map(|i| sample_event((written + i) as u64)).collect();
            store
                .append(&stream, ExpectedVersion::Any, events)
                .await
                .map_err(|e| format!("filling {stream}: {e}"))?;
            written += n;
        }
        ids.push(id);
    }
    Ok(ids)
}

/// Sends `per_stream` commands to each of `ids` in turn; returns wall time and latencies.
pub async fn run<S: EventStore>(
    handler: &CommandHandler<BenchOrder, S>,
    ids: &[String],
    per_stream: usize,
) -> Result<(Duration, Latencies), String> {
    let mut lat = Latencies::with_capacity(ids.len() * per_stream);
    let start = Instant::now();
    for k in 0..per_stream {
        for id in ids {
            let t0 = Instant::now();
            handler
                .handle(id, &AddLine::sample(k as u64))
                .await
                .map_err(|e| format!("command on {id}: {e}"))?;
            lat.record(t0.elapsed());
        }
    }
    Ok((start.elapsed(), lat))
}
