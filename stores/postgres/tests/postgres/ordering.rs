//! The gap-free log: late commits are never skipped, subscriptions never run ahead of
//! a transaction that can still commit below them.

use std::time::Duration;

use tessera_core::{
    AppendOutcome, EventAppender, EventFilter, EventReader, ExpectedVersion, Position, ReadAll,
    StreamId,
};
use tessera_postgres::PostgresStore;
use tokio_postgres::Client;

use crate::common::{event, quiet, raw_client, take, TestDb};

/// Opens transaction A on `raw` and writes one event of stream `stream` in it, with
/// `metadata` (a JSON object).
pub(crate) async fn open_writer(raw: &Client, db: &TestDb, stream: &str, metadata: &str) {
    raw.batch_execute("BEGIN").await.unwrap();
    write_raw(raw, db, stream, metadata).await;
}

/// Writes one event of stream `stream` on `raw` the way the store does (stream row
/// first, then the event, with `tx_id` from the default).
async fn write_raw(raw: &Client, db: &TestDb, stream: &str, metadata: &str) {
    raw.batch_execute(&format!(
        "INSERT INTO {streams} (stream_id, version) VALUES ('{stream}', 0);
         INSERT INTO {events} (stream_id, version, event_id, event_type, schema_version, data, metadata)
         VALUES ('{stream}', 0, gen_random_uuid(), 'Late', 1, '{{}}', '{metadata}');",
        streams = db.table("streams"),
        events = db.table("events"),
    ))
    .await
    .unwrap();
}

/// Commits B: one event creating stream `order-b`, through the store.
async fn append_b(store: &PostgresStore) -> AppendOutcome {
    store
        .append(
            &StreamId::new("order-b").unwrap(),
            ExpectedVersion::NoStream,
            vec![event("B")],
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_commit_is_delivered_before_later_positions() {
    let db = TestDb::new("late_commit").await;
    let store = db.store().await;
    let mut sub = store.subscribe(Position::START, EventFilter::all());
    let raw = raw_client().await;
    open_writer(&raw, &db, "order-a", "{}").await; // A: the lower global position, still open
    let b = append_b(&store).await;
    // B committed with a higher position, but A can still commit below it.
    if let Err(e) = quiet(&mut sub, Duration::from_millis(600)).await {
        panic!(
            "delivered {} while an older transaction was open",
            e.stream_id
        );
    }
    assert!(store
        .read_all(ReadAll::after(Position::START, 10))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.head().await.unwrap(), None);
    // Through the contract, as a projection runner asks it.
    let lag = EventReader::reader_lag(&store).await.unwrap();
    assert!(lag.events_behind >= 1, "{lag:?}");
    assert!(lag.oldest_open_transaction.is_some(), "{lag:?}");

    raw.batch_execute("COMMIT").await.unwrap();
    let got = take(&mut sub, 2, Duration::from_secs(5)).await;
    let streams: Vec<_> = got
        .iter()
        .map(|e| e.stream_id.as_str().to_owned())
        .collect();
    assert_eq!(streams, ["order-a", "order-b"]);
    assert!(got[0].position < got[1].position);
    assert_eq!(got[1].position, b.position);
    assert!(
        quiet(&mut sub, Duration::from_millis(300)).await.is_ok(),
        "delivered twice"
    );
    assert_eq!(store.head().await.unwrap(), Some(b.position));
    assert_eq!(store.reader_lag().await.unwrap().events_behind, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_transaction_writing_later_still_comes_first() {
    let db = TestDb::new("older_tx").await;
    let store = db.store().await;
    let mut sub = store.subscribe(Position::START, EventFilter::all());
    let raw = raw_client().await;
    // A takes its transaction id first, B then writes and commits, and only then does A
    // write: A's event has the higher global position but the lower transaction id.
    raw.batch_execute("BEGIN; SELECT pg_current_xact_id();")
        .await
        .unwrap();
    let b = append_b(&store).await;
    write_raw(&raw, &db, "order-a", "{}").await;
    assert!(quiet(&mut sub, Duration::from_millis(500)).await.is_ok());
    raw.batch_execute("COMMIT").await.unwrap();
    let got = take(&mut sub, 2, Duration::from_secs(5)).await;
    assert_eq!(got[0].stream_id.as_str(), "order-a");
    assert_eq!(got[1].position, b.position);
    assert!(got[0].position < got[1].position);
    assert!(
        got[0].position.prepare > got[1].position.prepare,
        "A wrote after B"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_transaction_leaves_nothing_and_stalls_nobody() {
    let db = TestDb::new("rolled_back").await;
    let store = db.store().await;
    let mut sub = store.subscribe(Position::START, EventFilter::all());
    let raw = raw_client().await;
    open_writer(&raw, &db, "order-a", "{}").await;
    append_b(&store).await;
    assert!(quiet(&mut sub, Duration::from_millis(400)).await.is_ok());
    raw.batch_execute("ROLLBACK").await.unwrap();
    let got = take(&mut sub, 1, Duration::from_secs(5)).await;
    assert_eq!(got[0].stream_id.as_str(), "order-b");
    // The stream A would have created does not exist: it can be created now.
    let a = StreamId::new("order-a").unwrap();
    assert_eq!(store.stream_version(&a).await.unwrap(), None);
    store
        .append(&a, ExpectedVersion::NoStream, vec![event("A")])
        .await
        .unwrap();
    let got = take(&mut sub, 1, Duration::from_secs(5)).await;
    assert_eq!(got[0].stream_id, a);
    assert!(quiet(&mut sub, Duration::from_millis(300)).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn category_subscriptions_catch_up_then_go_live() {
    let db = TestDb::new("category_sub").await;
    let store = db.store().await;
    let order = StreamId::new("order-1").unwrap();
    let pay = StreamId::new("payment-1").unwrap();
    for i in 0..250_u64 {
        let expected = if i == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(tessera_core::Version(i - 1))
        };
        store
            .append(&order, expected, vec![event("Placed")])
            .await
            .unwrap();
    }
    store
        .append(&pay, ExpectedVersion::NoStream, vec![event("Charged")])
        .await
        .unwrap();
    let mut sub = store.subscribe(Position::START, EventFilter::category("order"));
    let caught_up = take(&mut sub, 250, Duration::from_secs(5)).await;
    assert!(caught_up
        .iter()
        .enumerate()
        .all(|(i, e)| e.version.0 == i as u64));
    store
        .append(&pay, ExpectedVersion::Any, vec![event("Charged")])
        .await
        .unwrap();
    store
        .append(&order, ExpectedVersion::Any, vec![event("Shipped")])
        .await
        .unwrap();
    let live = take(&mut sub, 1, Duration::from_secs(5)).await;
    assert_eq!(
        (live[0].stream_id.as_str(), live[0].event_type.as_str()),
        ("order-1", "Shipped")
    );
    // A subscription from a checkpoint starts right after it.
    let mut from = store.subscribe(caught_up[248].position, EventFilter::category("order"));
    let rest = take(&mut from, 2, Duration::from_secs(5)).await;
    assert_eq!((rest[0].version.0, rest[1].version.0), (249, 250));
}

/// Events held back by a transaction that is not an append (so its end wakes nobody)
/// are still delivered promptly: the subscription's hidden-events check sees them and
/// re-reads on its own, long before the poll interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_hidden_behind_a_foreign_transaction_arrive_when_it_ends_without_a_poll() {
    let db = TestDb::new("hidden_recheck").await;
    let store = db
        .builder()
        .subscription_config(tessera_core::SubscriptionConfig {
            batch_size: 100,
            buffer: 256,
            poll_interval: Duration::from_secs(120),
            retry_delay: Duration::from_millis(20),
        })
        .build()
        .await
        .expect("store builds");
    let mut sub = store.subscribe(Position::START, EventFilter::all());
    let raw = raw_client().await;
    // A transaction with an id that writes nothing of the store's.
    raw.batch_execute("BEGIN; SELECT pg_current_xact_id();")
        .await
        .unwrap();
    append_b(&store).await;
    // Every wake-up the append caused (in process and NOTIFY) has come and gone.
    assert!(quiet(&mut sub, Duration::from_millis(600)).await.is_ok());
    raw.batch_execute("COMMIT").await.unwrap();
    let got = take(&mut sub, 1, Duration::from_secs(5)).await;
    assert_eq!(got[0].stream_id.as_str(), "order-b");
}
