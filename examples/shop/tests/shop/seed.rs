//! `shop seed` on PostgreSQL: seeded orders are real, settled orders to a served shop.

use std::sync::Arc;
use std::time::Duration;

use shop::app::{postgres_parts, App};
use shop::cli::seed::seed;
use shop::fulfilment::Fulfilment;
use tessera_postgres::PostgresStore;

use crate::support::{database_url, drop_schemas, eventually, settings, unique_prefix, TestShop};

/// A shop on PostgreSQL in schemas of `prefix`, in process.
async fn start(prefix: &str) -> Arc<App<PostgresStore>> {
    let mut s = settings();
    s.prefix = prefix.to_owned();
    let saga = Fulfilment {
        payment_timeout: s.payment_timeout,
    };
    let parts = postgres_parts(&database_url(), prefix, saga)
        .await
        .expect("PostgreSQL at DATABASE_URL");
    App::start(s, parts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_orders_are_served_as_settled() {
    let prefix = unique_prefix();
    let app = start(&prefix).await;
    let seeded = seed(&app, 12, 3, 4, Duration::from_secs(1))
        .await
        .expect("seed");
    app.shutdown().await;
    assert_eq!((seeded.ids.len(), seeded.confirmed), (12, 12));

    // A server started afterwards on the same schemas shows them as settled.
    let shop = TestShop::postgres_on(&prefix, settings()).await;
    for id in &seeded.ids {
        // Each context's view catches up on its own: wait for all of them.
        eventually(
            &format!("order {id} is shown settled in every view"),
            || async {
                let (status, body) = shop.get(&format!("/v1/orders/{id}")).await;
                (status == 200
                    && body["status"] == "confirmed"
                    && body["payment"]["status"] == "captured"
                    && body["reservation"]["status"] == "reserved"
                    && body["saga"]["status"] == "completed")
                    .then_some(body)
            },
        )
        .await;
    }
    let (status, page) = shop.get("/v1/orders?limit=100").await;
    assert_eq!(status, 200, "{page}");
    let listed = page["items"].as_array().expect("items").len();
    assert_eq!(listed, 12, "{page}");
    let (_, product) = shop.get("/v1/products/seed-0").await;
    assert_eq!(product["reserved"], 4, "{product}");
    shop.finish().await;
}

/// A shop on PostgreSQL keeps the statistics of its fast-growing tables current (its
/// `Analyzer`): once it has placed a few hundred orders, its log's table has been
/// analyzed by an explicit `ANALYZE`, which nothing else here runs (autovacuum's count
/// apart, as `last_autoanalyze`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_shop_analyzes_its_grown_tables() {
    let prefix = unique_prefix();
    let app = start(&prefix).await;
    let seeded = seed(&app, 300, 10, 8, Duration::from_secs(1))
        .await
        .expect("seed");
    assert_eq!(seeded.confirmed, 300);
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    eventually("the shop's log table is analyzed", || async {
        let rows = client
            .query(
                "SELECT s.schemaname || '.' || s.relname FROM pg_stat_user_tables s \
                 WHERE starts_with(s.schemaname, $1) AND s.last_analyze IS NOT NULL",
                &[&prefix],
            )
            .await
            .ok()?;
        rows.iter()
            .any(|r| r.get::<_, String>(0).ends_with(".events"))
            .then_some(())
    })
    .await;
    app.shutdown().await;
    drop_schemas(&prefix).await;
}
