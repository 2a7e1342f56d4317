//! Projection rebuild from PostgreSQL into a PostgreSQL read model, against a raw read
//! of the same events.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use deadpool_postgres::Transaction;
use futures_util::StreamExt;
use tessera_core::{
    BoxError, EventAppender, EventFilter, ExpectedVersion, NewEvent, RecordedEvent, StreamId,
};
use tessera_postgres::PostgresStore;
use tessera_projections::{PgHandler, PgProjection};

use crate::order::sample_event;

/// Appends `events` events over `streams` streams in batches of 1,000.
pub async fn fill(store: &PostgresStore, events: usize, streams: usize) -> Result<(), String> {
    let template: Vec<NewEvent> = (0..1000).map(sample_event).collect();
    let mut written = 0;
    let mut batch_no = 0usize;
    while written < events {
        let n = (events - written).min(1000);
        let stream = StreamId::new(format!("benchorder-fill{}", batch_no % streams.max(1)))
            .map_err(|e| e.to_string())?;
        let batch = template[..n]
            .iter()
            .map(|e| e.clone().with_id(tessera_core::EventId::random()))
            .collect();
        store
            .append(&stream, ExpectedVersion::Any, batch)
            .await
            .map_err(|e| format!("fill: {e}"))?;
        written += n;
        batch_no += 1;
    }
    Ok(())
}

/// Line count and running total per order: one upsert statement per batch.
pub struct OrderTotals {
    name: String,
}

impl OrderTotals {
    /// The projection of the run whose store schema is `schema`: its versions are
    /// `{schema}_totals_v{n}`, so runs on one database do not meet.
    pub fn of_run(schema: &str) -> Self {
        Self {
            name: format!("{schema}_totals"),
        }
    }
}

impl PgHandler for OrderTotals {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> EventFilter {
        EventFilter::category("benchorder")
    }

    async fn setup(&self, tx: &Transaction<'_>, schema: &str) -> Result<(), BoxError> {
        tx.batch_execute(&format!(
            "CREATE TABLE {schema}.totals (stream text PRIMARY KEY, lines bigint NOT NULL, total bigint NOT NULL)"
        ))
        .await?;
        Ok(())
    }

    async fn handle(
        &self,
        tx: &Transaction<'_>,
        schema: &str,
        events: &[RecordedEvent],
    ) -> Result<(), BoxError> {
        let mut fold: HashMap<&str, (i64, i64)> = HashMap::new();
        for e in events {
            let v: serde_json::Value = e.data.decode()?;
            let total = v["total_cents"].as_i64().ok_or("total_cents missing")?;
            let entry = fold.entry(e.stream_id.as_str()).or_default();
            entry.0 += 1;
            entry.1 = total;
        }
        let (mut streams, mut lines, mut totals) = (Vec::new(), Vec::new(), Vec::new());
        for (s, (l, t)) in fold {
            streams.push(s);
            lines.push(l);
            totals.push(t);
        }
        tx.execute(
            &format!(
                "INSERT INTO {schema}.totals SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
                 ON CONFLICT (stream) DO UPDATE SET lines = totals.lines + EXCLUDED.lines, total = EXCLUDED.total"
            ),
            &[&streams, &lines, &totals],
        )
        .await?;
        Ok(())
    }
}

/// Rebuilds [`OrderTotals::of_run`]`(schema)` from `store`; returns events applied, time
/// and peak RSS (KiB).
pub async fn rebuild(
    store: &PostgresStore,
    schema: &str,
    control_schema: &str,
    batch: usize,
) -> Result<(u64, Duration, u64), String> {
    let totals = OrderTotals::of_run(schema);
    let projection =
        PgProjection::with_control_schema(store.pool().clone(), totals, control_schema)
            .await
            .map_err(|e| e.to_string())?;
    let mut peak = rss_kib();
    let start = Instant::now();
    let report = projection
        .rebuild(store, batch, |_| peak = peak.max(rss_kib()))
        .await
        .map_err(|e| format!("rebuild: {e}"))?;
    Ok((report.events, start.elapsed(), peak.max(rss_kib())))
}

/// Raw baseline: every event of the schema through `COPY (SELECT …) TO STDOUT`.
pub async fn raw_copy(url: &str, schema: &str) -> Result<(u64, Duration), String> {
    let client = crate::baseline::connect(url).await?;
    let start = Instant::now();
    let sql = format!(
        "COPY (SELECT global_position, tx_id, stream_id, version, event_id, event_type, schema_version, data, metadata, recorded_at FROM \"{schema}\".events ORDER BY tx_id, global_position) TO STDOUT"
    );
    let stream = client.copy_out(&sql).await.map_err(|e| e.to_string())?;
    let mut stream = std::pin::pin!(stream);
    let mut rows = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        rows += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    Ok((rows, start.elapsed()))
}

/// Resident set size now, in KiB (0 where /proc is not there).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
