//! Raw tokio-postgres baselines, measured in the same run on the same database.
//!
//! The baseline table is created `LIKE` the store's events table (same columns, defaults,
//! identity, constraints and indexes), so a raw insert writes exactly the row shape and
//! index updates an append writes, minus everything Tessera adds.

use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

use crate::order::sample_event;
use crate::stats::Latencies;

/// Connects one client and drives its connection in the background.
pub async fn connect(url: &str) -> Result<Client, String> {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Creates (anew) `{schema}.raw_events` like `{schema}.events`.
pub async fn create_table(client: &Client, schema: &str) -> Result<String, String> {
    let table = format!("\"{schema}\".raw_events");
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (LIKE \"{schema}\".events INCLUDING ALL);"
        ))
        .await
        .map_err(|e| format!("creating {table}: {e}"))?;
    Ok(table)
}

const COLUMNS: &str = "stream_id, version, event_id, event_type, schema_version, data, metadata";

/// `concurrency` connections insert `total` single rows, one autocommit transaction each
/// (streams named after `round`, so several rounds can write one table).
pub async fn single_inserts(
    url: &str,
    table: &str,
    concurrency: usize,
    total: usize,
    round: usize,
) -> Result<(Duration, Latencies), String> {
    let per_task = total / concurrency.max(1);
    let mut clients = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let client = connect(url).await?;
        let sql = format!("INSERT INTO {table} ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)");
        let stmt = client.prepare(&sql).await.map_err(|e| e.to_string())?;
        clients.push((client, stmt));
    }
    let event = sample_event(1);
    let data = event.data.to_value().map_err(|e| e.to_string())?;
    let metadata = serde_json::json!({});
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (t, (client, stmt)) in clients.into_iter().enumerate() {
        let (data, metadata) = (data.clone(), metadata.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::with_capacity(per_task);
            for i in 0..per_task {
                let stream = format!("raw-{round}_{t}_{i}");
                let t0 = Instant::now();
                client
                    .execute(
                        &stmt,
                        &[
                            &stream,
                            &0i64,
                            &uuid::Uuid::new_v4(),
                            &"LineAdded",
                            &1i64,
                            &data,
                            &metadata,
                        ],
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                lat.record(t0.elapsed());
            }
            Ok::<_, String>(lat)
        }));
    }
    let mut all = Latencies::with_capacity(total);
    for t in tasks {
        all.merge(t.await.map_err(|e| e.to_string())??);
    }
    Ok((start.elapsed(), all))
}

/// One connection inserts `batches` multi-row INSERTs of `size` rows each (autocommit;
/// streams named after `round`, so several rounds can write one table).
pub async fn multi_inserts(
    url: &str,
    table: &str,
    batches: usize,
    size: usize,
    round: usize,
) -> Result<(Duration, Latencies), String> {
    let client = connect(url).await?;
    let sql = format!(
        "INSERT INTO {table} ({COLUMNS}) SELECT * FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::bigint[], $6::jsonb[], $7::jsonb[])"
    );
    let stmt = client.prepare(&sql).await.map_err(|e| e.to_string())?;
    let data = sample_event(1).data.to_value().map_err(|e| e.to_string())?;
    let versions: Vec<i64> = (0..i64::try_from(size).map_err(|e| e.to_string())?).collect();
    let types = vec!["LineAdded"; size];
    let schema_versions = vec![1i64; size];
    let datas = vec![data; size];
    let metas = vec![serde_json::json!({}); size];
    let mut lat = Latencies::with_capacity(batches);
    let start = Instant::now();
    for b in 0..batches {
        let streams = vec![format!("rawbatch-{round}_{b}"); size];
        let ids: Vec<uuid::Uuid> = (0..size).map(|_| uuid::Uuid::new_v4()).collect();
        let t0 = Instant::now();
        client
            .execute(
                &stmt,
                &[
                    &streams,
                    &versions,
                    &ids,
                    &types,
                    &schema_versions,
                    &datas,
                    &metas,
                ],
            )
            .await
            .map_err(|e| e.to_string())?;
        lat.record(t0.elapsed());
    }
    Ok((start.elapsed(), lat))
}

/// Reads every row of `table` in log order with a plain SELECT; returns rows and time.
pub async fn read_all(url: &str, table: &str) -> Result<(usize, Duration), String> {
    let client = connect(url).await?;
    let start = Instant::now();
    let rows = client
        .query(
            &format!("SELECT global_position, tx_id::text, stream_id, version, event_id, event_type, schema_version, data::text, metadata::text, recorded_at FROM {table} ORDER BY tx_id, global_position"),
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok((rows.len(), start.elapsed()))
}
