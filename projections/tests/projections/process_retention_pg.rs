//! Retention on PostgreSQL: the shared cases, the rows left per table, two prunes at once,
//! and migration 2 on a store that had settled rows before it.

use std::time::Duration;

use deadpool_postgres::Pool;
use tessera_core::MemoryStore;
use tessera_projections::process::{PgProcess, ProcessStore, Pruned};

use crate::process_postgres::in_schema;
use crate::process_retention as retention;
use crate::process_support::{Ev, Fulfil, LedgerDispatcher};

const HOUR: Duration = Duration::from_secs(3600);

async fn open(pool: &Pool, schema: &str) -> PgProcess<Fulfil> {
    PgProcess::new(pool.clone(), Fulfil, schema)
        .await
        .expect("process store")
}

/// (table, instance, rows) for every instance with rows.
async fn rows(pool: &Pool, schema: &str) -> Vec<(String, String, i64)> {
    let client = pool.get().await.expect("connection");
    let count = |t: &str| {
        format!("SELECT '{t}', instance_id, count(*) FROM \"{schema}\".{t} GROUP BY instance_id")
    };
    let query = format!(
        "{} UNION ALL {} UNION ALL {} ORDER BY 1, 2",
        count("handled"),
        count("outbox"),
        count("deadlines")
    );
    let rows = client.query(&query, &[]).await.expect("rows");
    rows.iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn table(rows: &[(&str, &str, i64)]) -> Vec<(String, String, i64)> {
    rows.iter()
        .map(|(t, i, n)| ((*t).to_owned(), (*i).to_owned(), *n))
        .collect()
}

/// Completes `n` orders (o0, o1, …): each leaves 3 handled records, 3 dispatched
/// commands and a cancelled deadline.
async fn complete(process: &PgProcess<Fulfil>, n: usize) {
    let store = MemoryStore::new();
    let events = (0..n)
        .flat_map(|i| {
            let order = format!("o{i}");
            [
                Ev::Placed {
                    order: order.clone(),
                },
                Ev::Reserved {
                    order: order.clone(),
                },
                Ev::Charged { order },
            ]
        })
        .collect();
    retention::record(&store, process, events).await;
    let d = LedgerDispatcher::new(&store);
    let worker = tessera_projections::process::Worker::new(
        process.clone(),
        std::sync::Arc::new(d),
        crate::process_cases::config(),
    );
    let round = worker.run_once().await.expect("round");
    assert_eq!(round.dispatched, 3 * n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_prunes_the_records_of_ended_instances_only() {
    in_schema(|pool, schema| async move {
        retention::prunes_the_records_of_ended_instances_only(open(&pool, &schema).await).await;
        // What the case's prune left, and what came after it (o3's timeout and Release,
        // o5's three commands sent).
        let expected = table(&[
            ("deadlines", "o3", 1),
            ("handled", "o3", 3),
            ("handled", "o4", 1),
            ("outbox", "o3", 3),
            ("outbox", "o4", 1),
            ("outbox", "o5", 3),
        ]);
        assert_eq!(rows(&pool, &schema).await, expected);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_spawned_worker_prunes_by_itself() {
    in_schema(|pool, schema| async move {
        let process = open(&pool, &schema).await;
        retention::a_spawned_worker_prunes_by_itself(process, Duration::from_secs(1)).await;
    })
    .await;
}

/// Two prunes at once (two workers) delete each row once, skip what the other holds,
/// and never wait on each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_concurrent_prunes_delete_each_row_once() {
    in_schema(|pool, schema| async move {
        let (a, b) = (open(&pool, &schema).await, open(&pool, &schema).await);
        complete(&a, 40).await;
        let cutoff = a.clock().now() + HOUR;
        let drain = |p: PgProcess<Fulfil>| async move {
            let mut sum = Pruned::default();
            loop {
                let r = p.prune(cutoff, 7).await.expect("prune");
                if r.total() == 0 {
                    return sum;
                }
                sum.handled += r.handled;
                sum.outbox += r.outbox;
                sum.deadlines += r.deadlines;
            }
        };
        let (x, y) = tokio::join!(drain(a), drain(b));
        let all = Pruned {
            handled: x.handled + y.handled,
            outbox: x.outbox + y.outbox,
            deadlines: x.deadlines + y.deadlines,
        };
        let expected = Pruned {
            handled: 120,
            outbox: 120,
            deadlines: 40,
        };
        assert_eq!(all, expected);
        assert_eq!(rows(&pool, &schema).await, table(&[]));
    })
    .await;
}

/// A store whose rows were settled before migration 2 (no settled time): migration 2
/// gives them one, and they are pruned like the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_migration_2_dates_rows_settled_before_it() {
    in_schema(|pool, schema| async move {
        let process = open(&pool, &schema).await;
        complete(&process, 2).await;
        let client = pool.get().await.expect("connection");
        client
            .batch_execute(&format!(
                "UPDATE \"{schema}\".outbox SET settled_at = NULL;
                 UPDATE \"{schema}\".deadlines SET settled_at = NULL;
                 DELETE FROM \"{schema}\".tessera_read_migrations WHERE component = 'process' AND version = 2;"
            ))
            .await
            .expect("back to version 1");
        let cutoff = process.clock().now() + HOUR;
        let p = process.prune(cutoff, 100).await.expect("prune");
        assert_eq!((p.outbox, p.deadlines), (0, 0), "undated rows are never pruned");
        let process = open(&pool, &schema).await;
        let versions: Vec<i32> = client
            .query(
                &format!("SELECT version FROM \"{schema}\".tessera_read_migrations WHERE component = 'process' ORDER BY version"),
                &[],
            )
            .await
            .expect("versions")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(versions, [1, 2, 3, 4, 5]);
        let p = process.prune(cutoff, 100).await.expect("prune");
        assert_eq!((p.outbox, p.deadlines), (6, 2));
        assert_eq!(rows(&pool, &schema).await, table(&[]));
    })
    .await;
}
