//! Outbox relay throughput: a [`Relay`] publishing a PostgreSQL log to a broker, against
//! the broker's own client publishing the same messages.
//!
//! The run is split into rounds. Each round appends its share of the events (not
//! timed), then times a relay runner from its start until its checkpoint reaches the
//! head, then builds the same messages from the same events (not timed) and times the
//! raw client publishing them. The relay is one [`Relay`] kept across rounds (each
//! round starts a [`Runner`] over it again from its checkpoint in PostgreSQL), so it
//! remembers each stream's last public version as a running relay does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::{
    EventAppender, EventReader, ExpectedVersion, Metadata, Position, ReadAll, StreamId,
};
use tessera_postgres::PostgresStore;
use tessera_projections::integration::{Bus, Message, PublicEvents, Relay};
use tessera_projections::{PgCheckpoints, Runner, RunnerConfig, State};

use crate::broker::Session;
use crate::order::sample_event;

/// Events per append when filling the log.
const APPEND_CHUNK: usize = 10;
/// Tasks appending at once when filling the log.
const FILLERS: usize = 8;

/// The size of a `relay` run.
#[derive(Debug, Clone, Copy)]
pub struct RelayLoad {
    /// Events in the log (all public).
    pub events: usize,
    /// Streams they are spread over.
    pub streams: usize,
    /// Rounds, each its share of the events for the relay and then for the raw client.
    pub rounds: usize,
    /// The runner's batch size (events read and published per confirmation wait).
    pub batch_size: usize,
}

/// What a `relay` run measured.
#[derive(Debug, Default)]
pub struct RelayReport {
    /// Events published by each side.
    pub events: usize,
    /// The relay's time, summed over the rounds.
    pub relay: Duration,
    /// The raw client's time, summed over the rounds.
    pub raw: Duration,
    /// Each round's relay rate over the raw rate.
    pub round_ratios: Vec<f64>,
    /// Publishes the raw client had awaiting confirmation at most.
    pub window: usize,
    /// Messages the broker holds from the relay and from the raw client (if it can tell).
    pub stored: (Option<u64>, Option<u64>),
}

/// The bench's public events in `context`: every `LineAdded` of a `benchorder` stream,
/// published as `LineAdded` v1 with the event's data as its payload.
pub fn public_events(context: &str) -> PublicEvents {
    PublicEvents::new(context).map("benchorder", "LineAdded", "LineAdded", 1, |e| {
        Ok(e.data.to_value()?)
    })
}

/// Metadata like a command handler's, with a trace context, so that messages carry
/// every header a service's do.
pub fn sample_metadata() -> Metadata {
    let mut m = Metadata::correlated(uuid::Uuid::new_v4()).caused_by(uuid::Uuid::new_v4());
    m.headers.insert(
        "traceparent".to_owned(),
        format!(
            "00-{}-{}-01",
            uuid::Uuid::new_v4().simple(),
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        ),
    );
    m
}

/// Runs the relay workload on `store`, the relay's checkpoint in `checkpoint_schema`.
pub async fn run(
    store: &PostgresStore,
    checkpoint_schema: &str,
    session: &Session,
    load: RelayLoad,
    run_id: &str,
) -> Result<RelayReport, String> {
    let bus = session.bus().await?;
    let raw = session.raw().await?;
    let checkpoints = PgCheckpoints::new(store.pool().clone(), checkpoint_schema)
        .await
        .map_err(|e| e.to_string())?;
    let public = public_events(session.context());
    let relay = Arc::new(Relay::new(
        format!("bench_relay_{run_id}"),
        public.clone(),
        store.clone(),
        Arc::clone(&bus) as Arc<dyn Bus>,
        checkpoints,
    ));
    let config = RunnerConfig {
        batch_size: load.batch_size.max(1),
        ..RunnerConfig::default()
    };
    let rounds = load.rounds.clamp(1, load.events.max(1));
    let window = session.window(load.batch_size);
    let mut report = RelayReport {
        events: load.events,
        window,
        ..RelayReport::default()
    };
    // For the raw side's messages: where the last round ended, each stream's last version.
    let mut after = Position::START;
    let mut previous: HashMap<String, u64> = HashMap::new();
    for round in 0..rounds {
        let part = (load.events * round / rounds)..(load.events * (round + 1) / rounds);
        let n = part.len();
        let head = fill(store, part, load.streams, run_id).await?;

        let runner = Runner::shared(store.clone(), Arc::clone(&relay), config);
        let t0 = Instant::now();
        let handle = runner.spawn();
        let waited = handle.wait_for(head, Duration::from_secs(600)).await;
        let relay_el = t0.elapsed();
        let status = handle.stop().await;
        waited.map_err(|e| format!("relay: {e} (status {status:?})"))?;
        if status.state == State::Failed {
            return Err(format!("relay failed: {status:?}"));
        }

        let messages = messages(store, &public, after, head, &mut previous).await?;
        if messages.len() != n {
            return Err(format!(
                "round {round}: {} messages built from the log, {n} events appended",
                messages.len()
            ));
        }
        after = head;
        let t0 = Instant::now();
        raw.publish(&messages, window).await?;
        let raw_el = t0.elapsed();

        report.relay += relay_el;
        report.raw += raw_el;
        report
            .round_ratios
            .push(raw_el.as_secs_f64() / relay_el.as_secs_f64().max(1e-9));
    }
    report.stored = session.stored().await?;
    Ok(report)
}

/// Appends events number `part` (each a `LineAdded`, spread over `streams` streams,
/// [`APPEND_CHUNK`] per append) and returns the head after them.
async fn fill(
    store: &PostgresStore,
    part: std::ops::Range<usize>,
    streams: usize,
    run_id: &str,
) -> Result<Position, String> {
    let streams = streams.max(1);
    let mut per_stream: Vec<Vec<usize>> = vec![Vec::new(); streams];
    for i in part {
        per_stream[i % streams].push(i);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..FILLERS.min(streams) {
        let store = store.clone();
        let mine: Vec<(usize, Vec<usize>)> = per_stream
            .iter()
            .enumerate()
            .skip(t)
            .step_by(FILLERS)
            .map(|(s, events)| (s, events.clone()))
            .collect();
        let run_id = run_id.to_owned();
        tasks.spawn(async move {
            for (s, events) in mine {
                let stream = StreamId::new(format!("benchorder-{run_id}relay{s}"))
                    .map_err(|e| e.to_string())?;
                for chunk in events.chunks(APPEND_CHUNK) {
                    let batch = chunk
                        .iter()
                        .map(|&i| sample_event(i as u64).with_metadata(sample_metadata()))
                        .collect();
                    store
                        .append(&stream, ExpectedVersion::Any, batch)
                        .await
                        .map_err(|e| format!("append to {stream}: {e}"))?;
                }
            }
            Ok::<_, String>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    store
        .head()
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "empty log after appending".to_owned())
}

/// The messages the relay made of the events after `after` up to `head`, built the same
/// way (`PublicEvents::message`, `previous` from each stream's last public version).
async fn messages(
    store: &PostgresStore,
    public: &PublicEvents,
    mut after: Position,
    head: Position,
    previous: &mut HashMap<String, u64>,
) -> Result<Vec<Message>, String> {
    let mut out = Vec::new();
    loop {
        let page = store
            .read_all(ReadAll::after(after, 2_000).filter(public.filter()))
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in page.iter().filter(|e| e.position <= head) {
            let before = previous.get(e.stream_id.as_str()).copied();
            if let Some(m) = public.message(e, before).map_err(|e| e.to_string())? {
                previous.insert(e.stream_id.as_str().to_owned(), e.version.0);
                out.push(m);
            }
        }
        if after >= head {
            break;
        }
    }
    Ok(out)
}
