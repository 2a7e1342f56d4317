//! End-to-end latency of an integration event: appended in one service, relayed to the
//! broker, handled by an inbox in another.
//!
//! The "ordering" service appends single events at a steady rate to its PostgreSQL log,
//! and its [`Relay`] (a [`Runner`], checkpoint in PostgreSQL) publishes them; the
//! "warehouse" service, on a connection of its own to the broker, consumes them through
//! an [`Inbox`] whose handler notes when each arrives. Latency is from the append's
//! acknowledgement to the handler's call, on one clock (both services run in this
//! process, sharing its cores with PostgreSQL and the broker).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tessera_core::{BoxError, EventAppender, ExpectedVersion, Position, StreamId};
use tessera_postgres::PostgresStore;
use tessera_projections::integration::{
    Inbox, InboxConfig, InboxHandle, InboxHandler, InboxStatus, Message, Relay,
};
use tessera_projections::{MemoryCheckpoints, PgCheckpoints, Runner, RunnerConfig};
use tokio::sync::mpsc;

use crate::broker::Session;
use crate::order::sample_event;
use crate::stats::Latencies;
use crate::workload::relay::{public_events, sample_metadata};

/// Events sent and handled before the measurement (the consumer's first pull, the
/// first publish, statements prepared).
const WARM_UP: usize = 20;
/// Streams the events are spread over.
const STREAMS: u64 = 100;
/// Appends in flight at most (the rate falls below the one asked for if they are all
/// waiting).
const MAX_APPENDING: usize = 64;

/// Where the inbox keeps the version it handled last per source stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxPositions {
    /// `PgCheckpoints` in a schema of the consuming service (a load and an update per
    /// message).
    Postgres,
    /// `MemoryCheckpoints`.
    Memory,
}

/// What a `bus-latency` run measured.
#[derive(Debug)]
pub struct LatencyReport {
    /// Append acknowledgement → handled, one sample per event.
    pub latencies: Latencies,
    /// How long the appends took (the achieved rate is `latencies.len() / this`).
    pub appending: Duration,
    /// From the first measured event's handling to the last's: with the inbox the
    /// bottleneck, `latencies.len() / this` is the most it handles a second.
    pub handling: Duration,
    /// The inbox's figures at the end (handled, duplicates, held back).
    pub inbox: InboxStatus,
}

/// Notes when each message arrives, by its source position.
struct Recorder(mpsc::UnboundedSender<(Position, Instant)>);

impl InboxHandler for Recorder {
    async fn handle(&self, m: &Message) -> Result<(), BoxError> {
        let _ = self.0.send((m.position, Instant::now()));
        Ok(())
    }
}

/// The shape of a `bus-latency` run.
#[derive(Debug, Clone, Copy)]
pub struct BusLatencyLoad {
    /// Events appended per second.
    pub rate: u32,
    /// For how long.
    pub seconds: u32,
    /// Where the inbox keeps its positions.
    pub positions: InboxPositions,
}

/// Runs it on `store`: the relay's checkpoint in `control_schema`, the inbox's
/// positions (if in PostgreSQL) in `inbox_schema`.
pub async fn run(
    store: &PostgresStore,
    control_schema: &str,
    inbox_schema: &str,
    session: &Session,
    load: BusLatencyLoad,
    run_id: &str,
) -> Result<LatencyReport, String> {
    let BusLatencyLoad {
        rate,
        seconds,
        positions,
    } = load;
    // The publishing service.
    let checkpoints = PgCheckpoints::new(store.pool().clone(), control_schema)
        .await
        .map_err(|e| e.to_string())?;
    let relay = Relay::new(
        format!("bench_relay_{run_id}"),
        public_events(session.context()),
        store.clone(),
        session.bus().await?,
        checkpoints,
    );
    let relay = Runner::new(store.clone(), relay, RunnerConfig::default()).spawn();

    // The consuming service, on its own connection.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let config = InboxConfig::new(session.consumer_spec());
    let consumer_bus = session.bus().await?;
    let inbox: InboxHandle = match positions {
        InboxPositions::Postgres => {
            let positions = PgCheckpoints::new(store.pool().clone(), inbox_schema)
                .await
                .map_err(|e| e.to_string())?;
            Inbox::new(consumer_bus, Recorder(tx), positions, config).spawn()
        }
        InboxPositions::Memory => {
            Inbox::new(consumer_bus, Recorder(tx), MemoryCheckpoints::new(), config).spawn()
        }
    };

    let out = measure(store, &mut rx, rate, seconds, run_id).await;
    let status = inbox.stop().await;
    relay.stop().await;
    let (latencies, appending, handling) = out.map_err(|e| format!("{e} (inbox: {status:?})"))?;
    Ok(LatencyReport {
        latencies,
        appending,
        handling,
        inbox: status,
    })
}

/// Warms up, then appends at `rate` and matches each append with its handling.
async fn measure(
    store: &PostgresStore,
    rx: &mut mpsc::UnboundedReceiver<(Position, Instant)>,
    rate: u32,
    seconds: u32,
    run_id: &str,
) -> Result<(Latencies, Duration, Duration), String> {
    let warm = StreamId::new(format!("benchorder-{run_id}warm")).map_err(|e| e.to_string())?;
    for i in 0..WARM_UP {
        store
            .append(
                &warm,
                ExpectedVersion::Any,
                vec![sample_event(i as u64).with_metadata(sample_metadata())],
            )
            .await
            .map_err(|e| format!("append: {e}"))?;
    }
    for _ in 0..WARM_UP {
        tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .map_err(|_| "the warm-up events did not arrive within 60 s".to_owned())?
            .ok_or("the inbox stopped")?;
    }

    let total = u64::from(rate) * u64::from(seconds);
    let streams: Vec<StreamId> = (0..STREAMS)
        .map(|s| StreamId::new(format!("benchorder-{run_id}lat{s}")))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    // Each append starts on its tick, without waiting for the one before (requests of a
    // service arrive so), at most MAX_APPENDING at once.
    let mut appending = tokio::task::JoinSet::new();
    let start = Instant::now();
    for i in 0..total {
        tick.tick().await;
        while appending.len() >= MAX_APPENDING {
            if let Some(done) = appending.join_next().await {
                sent.push(done.map_err(|e| e.to_string())??);
            }
        }
        while let Some(done) = appending.try_join_next() {
            sent.push(done.map_err(|e| e.to_string())??);
        }
        let store = store.clone();
        let stream = streams[usize::try_from(i % STREAMS).unwrap_or(0)].clone();
        let event = sample_event(i).with_metadata(sample_metadata());
        appending.spawn(async move {
            let out = store
                .append(&stream, ExpectedVersion::Any, vec![event])
                .await
                .map_err(|e| format!("append: {e}"))?;
            Ok::<_, String>((Instant::now(), out.position))
        });
    }
    while let Some(done) = appending.join_next().await {
        sent.push(done.map_err(|e| e.to_string())??);
    }
    let appending = start.elapsed();

    let mut handled: HashMap<Position, Instant> = HashMap::with_capacity(sent.len());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while handled.len() < sent.len() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((position, at))) => {
                handled.entry(position).or_insert(at);
            }
            Ok(None) => return Err("the inbox stopped".into()),
            Err(_) => {
                return Err(format!(
                    "{} of {} events handled within 60 s of the last append",
                    handled.len(),
                    sent.len()
                ))
            }
        }
    }
    let mut lat = Latencies::with_capacity(sent.len());
    for (acked, position) in &sent {
        let at = handled
            .get(position)
            .ok_or_else(|| format!("event at {position} was not handled"))?;
        lat.record(at.saturating_duration_since(*acked));
    }
    let first = handled.values().min().copied();
    let last = handled.values().max().copied();
    let handling = match (first, last) {
        (Some(first), Some(last)) => last.saturating_duration_since(first),
        _ => Duration::ZERO,
    };
    Ok((lat, appending, handling))
}
