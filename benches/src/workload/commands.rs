//! Single-event commands through the command handler.

use std::time::{Duration, Instant};

use tessera_core::{CommandHandler, EventStore, ReadStream, StreamId};

use crate::order::{AddLine, BenchOrder};
use crate::stats::Latencies;

/// Shape of a command run.
#[derive(Debug, Clone, Copy)]
pub struct CommandLoad {
    /// Concurrent tasks.
    pub concurrency: usize,
    /// Fresh aggregates owned by each task.
    pub aggregates: usize,
    /// Commands sent to each aggregate.
    pub commands: usize,
}

impl CommandLoad {
    /// Commands in the whole run.
    pub fn total(&self) -> usize {
        self.concurrency * self.aggregates * self.commands
    }
}

/// What a run measured.
#[derive(Debug)]
pub struct CommandRun {
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Per-command latency.
    pub latencies: Latencies,
    /// Aggregate ids used, for verification.
    pub ids: Vec<String>,
}

/// Runs the load: each task owns `aggregates` aggregates and sends commands number
/// `commands` (a part of `0..load.commands`, so a run can be split into rounds) to
/// each, round-robin.
pub async fn run<S: EventStore>(
    handler: CommandHandler<BenchOrder, S>,
    load: CommandLoad,
    commands: std::ops::Range<usize>,
    run_id: &str,
) -> Result<CommandRun, String> {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(load.concurrency);
    for t in 0..load.concurrency {
        let handler = handler.clone();
        let commands = commands.clone();
        let ids: Vec<String> = (0..load.aggregates)
            .map(|a| format!("{run_id}_{t}_{a}"))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::with_capacity(load.aggregates * commands.len());
            for k in commands {
                for (a, id) in ids.iter().enumerate() {
                    let cmd = AddLine::sample((k * 1000 + a) as u64);
                    let t0 = Instant::now();
                    handler
                        .handle(id, &cmd)
                        .await
                        .map_err(|e| format!("command on {id} failed: {e}"))?;
                    lat.record(t0.elapsed());
                }
            }
            Ok::<_, String>((lat, ids))
        }));
    }
    let mut latencies =
        Latencies::with_capacity(load.concurrency * load.aggregates * commands.len());
    let mut all_ids = Vec::new();
    for task in tasks {
        let (lat, ids) = task.await.map_err(|e| format!("task panicked: {e}"))??;
        latencies.merge(lat);
        all_ids.extend(ids);
    }
    Ok(CommandRun {
        elapsed: start.elapsed(),
        latencies,
        ids: all_ids,
    })
}

/// Checks that every aggregate holds exactly `commands` events, versions 0..commands.
pub async fn verify<S: EventStore>(
    store: &S,
    ids: &[String],
    commands: usize,
) -> Result<(), String> {
    for id in ids {
        let stream = StreamId::from_parts("benchorder", id).map_err(|e| e.to_string())?;
        let events = store
            .read_stream(&stream, ReadStream::forward())
            .await
            .map_err(|e| e.to_string())?;
        let versions_ok = events
            .iter()
            .enumerate()
            .all(|(i, e)| e.version.0 == i as u64);
        if events.len() != commands || !versions_ok {
            return Err(format!(
                "stream {stream} holds {} events (expected {commands}, versions in order: {versions_ok})",
                events.len()
            ));
        }
    }
    Ok(())
}
