//! Migrations: idempotent, safe to run from many starters at once, recorded.

use tessera_core::{EventAppender, EventReader, ExpectedVersion, ReadStream, StreamId};
use tessera_postgres::PostgresStore;

use crate::common::{database_url, event, raw_client, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_and_repeated_migrations_run_once() {
    let db = TestDb::new("migrate").await;
    let starters: Vec<_> = (0..4)
        .map(|_| {
            let builder = db.builder();
            tokio::spawn(async move { builder.build().await })
        })
        .collect();
    let mut stores = Vec::new();
    for s in starters {
        stores.push(s.await.unwrap().expect("every starter succeeds"));
    }
    let again = db.store().await;
    let raw = raw_client().await;
    let rows = raw
        .query(
            &format!(
                "SELECT version, name FROM {} ORDER BY version",
                db.table("tessera_migrations")
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "each migration recorded once");
    assert_eq!(rows[0].get::<_, i32>(0), 1);
    // All of them work on the same tables.
    let s = StreamId::new("order-1").unwrap();
    stores[0]
        .append(&s, ExpectedVersion::NoStream, vec![event("A")])
        .await
        .unwrap();
    assert_eq!(
        again
            .read_stream(&s, ReadStream::forward())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_can_be_built_on_an_existing_pool() {
    let db = TestDb::new("from_pool").await;
    let config: tokio_postgres::Config = database_url().parse().unwrap();
    let manager = deadpool_postgres::Manager::new(config.clone(), tokio_postgres::NoTls);
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(4)
        .build()
        .unwrap();
    let store = PostgresStore::from_pool(pool)
        .listen_config(config)
        .schema(db.schema.clone())
        .build()
        .await
        .unwrap();
    assert_eq!(store.schema(), &db.schema);
    let mut sub = store.subscribe(
        tessera_core::Position::START,
        tessera_core::EventFilter::all(),
    );
    let s = StreamId::new("order-1").unwrap();
    store
        .append(&s, ExpectedVersion::NoStream, vec![event("A")])
        .await
        .unwrap();
    let got = crate::common::take(&mut sub, 1, std::time::Duration::from_secs(10)).await;
    assert_eq!(got[0].stream_id, s);
}
