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
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, [1, 2], "each migration recorded once");
    // The second left room on `streams`' pages for HOT updates.
    let options: Option<Vec<String>> = raw
        .query_one(
            "SELECT reloptions FROM pg_class WHERE oid = $1::text::regclass",
            &[&db.table("streams")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(options, Some(vec!["fillfactor=80".to_owned()]));
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
    let (config, tls) = tessera_postgres::tls::connector_for(&database_url()).unwrap();
    let manager = deadpool_postgres::Manager::new(config.clone(), tls.clone());
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(4)
        .build()
        .unwrap();
    let store = PostgresStore::from_pool(pool)
        .listen_config(config, tls)
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

/// A foreign transaction holding the advisory lock `db`'s migrations run under (its
/// key derived as the store derives it: FNV-1a of `tessera-migrate:<schema>`); it
/// holds until `ROLLBACK` on the returned client.
async fn hold_migration_lock(db: &TestDb) -> tokio_postgres::Client {
    let hash = format!("tessera-migrate:{}", db.schema.as_str())
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let key = i64::from_ne_bytes(hash.to_ne_bytes());
    let raw = raw_client().await;
    raw.batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({key})"))
        .await
        .unwrap();
    raw
}

/// A starter stuck in its migration (here a foreign transaction holding the lock) does
/// not hang the others past the migration lock timeout: they fail with a transient error
/// saying why, and build once the lock is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_migration_lock_fails_the_build_within_the_migration_lock_timeout() {
    let db = TestDb::new("migrate_held").await;
    let raw = hold_migration_lock(&db).await;
    let started = std::time::Instant::now();
    let built = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        db.builder()
            .migration_lock_timeout(std::time::Duration::from_millis(300))
            .build(),
    )
    .await
    .expect("the build gave up by itself");
    let err = built.expect_err("the migration lock is held");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("migration lock"), "{err}");
    raw.batch_execute("ROLLBACK").await.unwrap();
    db.store().await; // builds now
    db.builder()
        .migration_lock_timeout(std::time::Duration::MAX)
        .build()
        .await
        .expect("a lock timeout past what the server's lock_timeout takes still builds");
}

/// A migration that takes longer than the connect timeout (another starter holds the
/// lock for a while) does not fail the starters waiting for it: they wait up to the
/// migration lock timeout, then build on the migrated schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starter_waits_past_the_connect_timeout_for_a_slow_migration() {
    let db = TestDb::new("migrate_slow").await;
    let raw = hold_migration_lock(&db).await;
    let builder = db
        .builder()
        .connect_timeout(std::time::Duration::from_millis(200))
        .migration_lock_timeout(std::time::Duration::from_secs(20));
    let started = std::time::Instant::now();
    let waiting = tokio::spawn(async move { builder.build().await });
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert!(!waiting.is_finished(), "the starter waits for the lock");
    raw.batch_execute("ROLLBACK").await.unwrap();
    let store = waiting
        .await
        .unwrap()
        .expect("the starter builds once the lock is released");
    assert!(started.elapsed() >= std::time::Duration::from_millis(800));
    let stream = StreamId::new("slow-1").unwrap();
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event("Slow")])
        .await
        .expect("the schema is migrated");
}

/// On a pool the application keeps, the store's append connection (set to generic
/// plans) does not go back to that pool when the store is dropped: the pool's next
/// connection has the server's default settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_store_leaves_its_session_settings_out_of_a_shared_pool() {
    let db = TestDb::new("shared_pool").await;
    let config: tokio_postgres::Config = database_url().parse().unwrap();
    let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
    // One connection: the append connection is the pool's only one while the store lives.
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(1)
        .build()
        .unwrap();
    let store = PostgresStore::from_pool(pool.clone())
        .schema(db.schema.clone())
        .writers(1)
        .build()
        .await
        .unwrap();
    store
        .append(
            &StreamId::new("order-1").unwrap(),
            ExpectedVersion::NoStream,
            vec![event("A")],
        )
        .await
        .unwrap();
    drop(store);
    let client = tokio::time::timeout(std::time::Duration::from_secs(5), pool.get())
        .await
        .expect("the pool has a connection to give")
        .unwrap();
    let mode: String = client
        .query_one("SHOW plan_cache_mode", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode, "auto");
}
