//! Append → document view latency on PostgreSQL, the two ways a view can apply a live
//! batch, in alternating rounds of one run: `PgProjection` over `PgView` (a transaction
//! of five statements: begin, the checkpoint's compare-and-set, reading the documents,
//! writing them, commit) and the `ViewStore`'s own subscriber (one statement, reading
//! only the documents it has not kept).

use serde::{Deserialize, Serialize};
use tessera_core::{BoxError, EventFilter, RecordedEvent};
use tessera_postgres::PostgresStore;
use tessera_projections::view::PgView;
use tessera_projections::{PgProjection, View, ViewStore};

use crate::stats::Latencies;
use crate::workload::latency::measure;

/// Lines and running total per order, as one document each.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Totals {
    lines: i64,
    total_cents: i64,
}

/// The benchmark's view of `benchorder` streams.
pub struct OrderDocs;

impl View for OrderDocs {
    type Doc = Totals;
    const NAME: &'static str = "bench_order_docs";

    fn filter() -> EventFilter {
        EventFilter::category("benchorder")
    }

    fn key(event: &RecordedEvent) -> Result<Option<String>, BoxError> {
        Ok(Some(event.stream_id.as_str().to_owned()))
    }

    fn apply(doc: Option<Totals>, event: &RecordedEvent) -> Result<Totals, BoxError> {
        let v: serde_json::Value = event.data.decode()?;
        let mut doc = doc.unwrap_or_default();
        doc.lines += 1;
        doc.total_cents = v["total_cents"].as_i64().ok_or("total_cents missing")?;
        Ok(doc)
    }
}

/// Which way a round applies its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// `PgProjection<PgView<_>>`: a transaction per batch.
    Transaction,
    /// `ViewStore::subscriber`: one statement per batch.
    OneStatement,
}

impl Path {
    /// Its name in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Path::Transaction => "transaction",
            Path::OneStatement => "one_statement",
        }
    }
}

/// One round on `path`: a fresh view (prefix `prefix`, control schema `control`) that
/// catches up with the log, then `rate` events a second for `seconds`.
pub async fn round(
    store: &PostgresStore,
    (prefix, control): (&str, &str),
    path: Path,
    (rate, seconds): (u32, u32),
) -> Result<Latencies, String> {
    let pool = store.pool().clone();
    match path {
        Path::Transaction => {
            let view = PgView::<OrderDocs>::new(prefix);
            let projection = PgProjection::with_control_schema(pool, view, control)
                .await
                .map_err(|e| e.to_string())?;
            measure(store, projection, rate, seconds).await
        }
        Path::OneStatement => {
            let view = ViewStore::<OrderDocs>::postgres(pool, prefix, control)
                .await
                .map_err(|e| e.to_string())?;
            measure(store, view.subscriber(), rate, seconds).await
        }
    }
}
