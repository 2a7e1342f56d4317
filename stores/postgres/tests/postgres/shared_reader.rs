//! The log reader a store's subscriptions share: what each subscription receives is
//! what it would have read from the database itself, whether it reads from the shared
//! buffer, falls behind it, or joins late, and a reader that meets an event it cannot
//! decode hands the subscriptions back to the database, which reports it.

use std::collections::HashMap;
use std::time::Duration;

use tessera_core::{
    EventAppender, EventFilter, EventReader, ExpectedVersion, Position, RecordedEvent, StoreError,
    StreamId, Subscription,
};
use tessera_postgres::PostgresStore;

use crate::common::{event, raw_client, take, TestDb};

const WRITERS: usize = 6;
const PER_WRITER: usize = 120;

async fn race_writers(store: &PostgresStore) {
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_WRITER {
                let category = if (w + i) % 3 == 0 { "rare" } else { "busy" };
                let stream = StreamId::new(format!("{category}-{w}")).unwrap();
                let ty = if i % 2 == 0 { "Even" } else { "Odd" };
                store
                    .append(&stream, ExpectedVersion::Any, vec![event(ty)])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Every committed event that passes `filter`, as `(stream, version)` in log order,
/// read with a plain `SELECT`. Not with the store's reader: that hides events committed
/// behind a transaction still open anywhere on the server (the hidden-events rule), and
/// with other tests running, an event can be hidden when this is read and reach the
/// subscriptions a moment later, as it should.
async fn truth(db: &TestDb, filter: &EventFilter) -> Vec<(String, u64)> {
    let sql = format!(
        "SELECT stream_id, version, event_type FROM {} ORDER BY tx_id, global_position",
        db.table("events")
    );
    let rows = raw_client().await.query(&sql, &[]).await.unwrap();
    rows.iter()
        .filter(|r| filter.matches_parts(r.get(0), r.get(2)))
        .map(|r| (r.get(0), u64::try_from(r.get::<_, i64>(1)).unwrap()))
        .collect()
}

fn ids(events: &[RecordedEvent]) -> Vec<(String, u64)> {
    events
        .iter()
        .map(|e| (e.stream_id.to_string(), e.version.0))
        .collect()
}

async fn every_subscription_gets_what_the_database_holds(buffer: usize) {
    let db = TestDb::new(&format!("shared_reader_{buffer}")).await;
    let store = db
        .builder()
        .shared_reader_buffer(buffer)
        .build()
        .await
        .unwrap();
    // Some history first, so that subscriptions from the start catch up from the
    // database and then join the shared reader.
    for i in 0..50 {
        let stream = StreamId::new(format!("busy-h{}", i % 5)).unwrap();
        store
            .append(&stream, ExpectedVersion::Any, vec![event("Even")])
            .await
            .unwrap();
    }
    let filters = [
        EventFilter::all(),
        EventFilter::category("rare"),
        EventFilter::category("busy").with_types(["Odd"]),
        EventFilter::all().with_types(["Even"]),
    ];
    let mut early: Vec<(EventFilter, Subscription)> = filters
        .iter()
        .map(|f| (f.clone(), store.subscribe(Position::START, f.clone())))
        .collect();
    // A slow one: it does not read while the writers run, so it falls out of a small
    // buffer and must come back through the database.
    let mut slow = store.subscribe(Position::START, EventFilter::category("busy"));
    let writers = race_writers(&store);
    // A late one joins while the writers run.
    let late = async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        store.subscribe(Position::START, EventFilter::category("rare"))
    };
    let (_, mut late) = tokio::join!(writers, late);

    for (filter, sub) in &mut early {
        let want = truth(&db, filter).await;
        let got = take(sub, want.len(), Duration::from_secs(20)).await;
        assert_eq!(ids(&got), want, "{filter:?}, buffer {buffer}");
    }
    let want = truth(&db, &EventFilter::category("busy")).await;
    let got = take(&mut slow, want.len(), Duration::from_secs(20)).await;
    assert_eq!(ids(&got), want, "the slow subscription, buffer {buffer}");
    let want = truth(&db, &EventFilter::category("rare")).await;
    let got = take(&mut late, want.len(), Duration::from_secs(20)).await;
    assert_eq!(ids(&got), want, "the late subscription, buffer {buffer}");

    // Nothing more, and per stream the versions run without a hole.
    for (_, sub) in &mut early {
        let extra = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
        assert!(
            extra.is_err(),
            "an event delivered twice or out of nowhere: {extra:?}"
        );
    }
    let all = truth(&db, &EventFilter::all()).await;
    let mut versions: HashMap<String, Vec<u64>> = HashMap::new();
    for (stream, version) in all {
        versions.entry(stream).or_default().push(version);
    }
    for (stream, v) in versions {
        assert!(
            v.iter().enumerate().all(|(i, v)| *v == i as u64),
            "{stream}: {v:?}"
        );
    }

    // Live after the race: a new event reaches every subscription that wants it.
    let stream = StreamId::new("rare-after").unwrap();
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event("Even")])
        .await
        .unwrap();
    for (filter, sub) in early
        .iter_mut()
        .filter(|(f, _)| f.matches_parts("rare-after", "Even"))
    {
        let got = take(sub, 1, Duration::from_secs(5)).await;
        assert_eq!(got[0].stream_id, stream, "{filter:?}");
    }
    let got = take(&mut late, 1, Duration::from_secs(5)).await;
    assert_eq!(got[0].stream_id, stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_sharing_the_log_reader_each_get_every_wanted_event_once_in_order() {
    every_subscription_gets_what_the_database_holds(4096).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_falling_out_of_a_small_shared_buffer_read_the_rest_from_the_database() {
    every_subscription_gets_what_the_database_holds(8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_shared_reader_subscriptions_get_the_same() {
    every_subscription_gets_what_the_database_holds(0).await;
}

/// A stored row nobody can decode, written after the subscription went live (no
/// notification: the shared reader finds it by polling): the shared reader stops serving, and the subscription, reading the database itself,
/// delivers what came before and then reports the row by stream and version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_event_is_reported_to_the_live_subscription() {
    let db = TestDb::new("shared_reader_corrupt").await;
    let store = db.store().await;
    let stream = StreamId::new("order-9").unwrap();
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event("Good")])
        .await
        .unwrap();
    let mut sub = store.subscribe(Position::START, EventFilter::category("order"));
    assert_eq!(
        take(&mut sub, 1, Duration::from_secs(5)).await[0].version.0,
        0
    );
    let raw = raw_client().await;
    raw.batch_execute(&format!(
        "INSERT INTO {} (stream_id, version, event_id, event_type, schema_version, data, metadata) \
         VALUES ('order-9', 1, gen_random_uuid(), 'Bad', 1, '{{}}', '{{\"correlation_id\": 42}}')",
        db.table("events"),
    ))
    .await
    .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("the subscription reports within 10 s");
    match next {
        Some(Err(StoreError::Corrupt {
            stream, version, ..
        })) => assert_eq!((stream.as_str(), version), ("order-9", 1)),
        other => panic!("expected the bad row reported, got {other:?}"),
    }
}

/// The shared reader's task runs on the runtime of the subscription that started it.
/// When that runtime is dropped while the store lives on (a service's runtime shutting
/// down, a test's), the next subscription starts another reader: new events reach it at
/// once, not at its next poll (30 s here), because the dropped task marked the reader
/// stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_reader_dropped_with_its_runtime_is_started_again() {
    let db = TestDb::new("shared_reader_restart").await;
    let store = db
        .builder()
        .subscription_config(tessera_core::SubscriptionConfig {
            batch_size: 100,
            buffer: 256,
            poll_interval: Duration::from_secs(30),
            retry_delay: Duration::from_millis(20),
        })
        .build()
        .await
        .unwrap();
    let stream = StreamId::new("order-1").unwrap();
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event("First")])
        .await
        .unwrap();
    // A runtime of its own starts the shared reader, receives, and is dropped.
    let other = store.clone();
    let first = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let got = runtime.block_on(async {
            let mut sub = other.subscribe(Position::START, EventFilter::category("order"));
            take(&mut sub, 1, Duration::from_secs(5)).await
        });
        drop(runtime);
        got
    })
    .join()
    .unwrap();
    assert_eq!(first[0].event_type, "First");
    // On this runtime: a new subscription, live, gets a new event promptly.
    let mut sub = store.subscribe(first[0].position, EventFilter::category("order"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    store
        .append(
            &stream,
            ExpectedVersion::Exact(tessera_core::Version(0)),
            vec![event("Second")],
        )
        .await
        .unwrap();
    let got = take(&mut sub, 1, Duration::from_secs(5)).await;
    assert_eq!(got[0].event_type, "Second");
}
