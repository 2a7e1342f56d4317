//! Append → read model latency at a steady rate, on PostgreSQL.

use std::time::{Duration, Instant};

use tessera_core::{EventAppender, ExpectedVersion, Position, StreamId};
use tessera_postgres::PostgresStore;
use tessera_projections::{PgProjection, Runner, RunnerConfig, Subscriber};

use crate::order::sample_event;
use crate::stats::Latencies;
use crate::workload::rebuild::OrderTotals;

/// Appends `rate` single events per second for `seconds`, while a live runner applies
/// them to a PostgreSQL read model; latency is from the append's acknowledgement to the
/// moment the runner's checkpoint covers it.
pub async fn run(
    store: &PostgresStore,
    schema: &str,
    control_schema: &str,
    rate: u32,
    seconds: u32,
) -> Result<Latencies, String> {
    let projection = PgProjection::with_control_schema(
        store.pool().clone(),
        OrderTotals::of_run(schema),
        control_schema,
    )
    .await
    .map_err(|e| e.to_string())?;
    measure(store, projection, rate, seconds).await
}

/// The latency loop of [`run`] for any subscriber: its runner first catches up with the
/// log as it is and applies one warm-up event, then `rate` events a second are appended
/// for `seconds`.
pub async fn measure<Sub: Subscriber>(
    store: &PostgresStore,
    subscriber: Sub,
    rate: u32,
    seconds: u32,
) -> Result<Latencies, String> {
    let runner = Runner::new(store.clone(), subscriber, RunnerConfig::default()).spawn();
    // Past its start-up: it has caught up with the log and applied one more event.
    let warm_up = StreamId::new("benchorder-warmup").map_err(|e| e.to_string())?;
    let head = store
        .append(&warm_up, ExpectedVersion::Any, vec![sample_event(0)])
        .await
        .map_err(|e| format!("append: {e}"))?
        .position;
    runner
        .wait_for(head, Duration::from_secs(120))
        .await
        .map_err(|e| e.to_string())?;
    let mut watch = runner.watch();
    // Records when each checkpoint was first seen.
    let observer = tokio::spawn(async move {
        let mut seen: Vec<(Instant, Position)> = Vec::new();
        while watch.changed().await.is_ok() {
            let cp = watch.borrow_and_update().checkpoint;
            seen.push((Instant::now(), cp));
        }
        seen
    });
    let total = u64::from(rate) * u64::from(seconds);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for i in 0..total {
        tick.tick().await;
        let stream =
            StreamId::new(format!("benchorder-lat{}", i % 100)).map_err(|e| e.to_string())?;
        let out = store
            .append(&stream, ExpectedVersion::Any, vec![sample_event(i)])
            .await
            .map_err(|e| format!("append: {e}"))?;
        sent.push((Instant::now(), out.position));
    }
    let last = sent.last().map_or(Position::START, |s| s.1);
    runner
        .wait_for(last, Duration::from_secs(60))
        .await
        .map_err(|e| e.to_string())?;
    runner.stop().await;
    let seen = observer.await.map_err(|e| e.to_string())?;
    let mut lat = Latencies::with_capacity(sent.len());
    let mut j = 0;
    for (at, position) in sent {
        while j < seen.len() && seen[j].1 < position {
            j += 1;
        }
        let Some((applied_at, _)) = seen.get(j) else {
            return Err(format!("no checkpoint covering {position} was observed"));
        };
        lat.record(applied_at.saturating_duration_since(at));
    }
    Ok(lat)
}
