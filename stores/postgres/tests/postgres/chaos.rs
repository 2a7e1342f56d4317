//! Connections killed under load: appends and subscriptions recover without losing or
//! repeating anything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tessera_core::{
    AppendOutcome, EventAppender, EventFilter, EventId, EventReader, ExpectedVersion, NewEvent,
    Position, ReadAll, ReadStream, StoreError, StreamId, SubscriptionConfig,
};
use tessera_postgres::PostgresStore;

use crate::common::{
    database_url, event, is_unavailable, quiet, raw_client, take, wait_visible, TestDb,
};

/// Appends `batch`, retrying with the same ids while the outcome is unknown and
/// reloading the expectation after a conflict.
async fn append_until_acknowledged(
    store: &PostgresStore,
    stream: &StreamId,
    mut expected: ExpectedVersion,
    batch: &[NewEvent],
    unknown: &AtomicUsize,
) -> AppendOutcome {
    for _ in 0..500 {
        match store.append(stream, expected, batch.to_vec()).await {
            Ok(out) => return out,
            Err(e) if is_unavailable(&e) => {
                unknown.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(StoreError::WrongExpectedVersion { actual, .. }) => {
                expected = ExpectedVersion::from_current(actual);
            }
            Err(e) => panic!("append to {stream} failed: {e}"),
        }
    }
    panic!("append to {stream} never went through");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_append_connections_lose_nothing_and_land_retries_once() {
    let db = TestDb::new("kill_appends").await;
    let store = db.builder().pool_size(6).build().await.unwrap();
    let unknown = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let raw = raw_client().await;
    let killer = tokio::spawn({
        let (stop, app) = (stop.clone(), db.app.clone());
        async move {
            let raw = raw_client().await;
            let mut kills = 0_i64;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(15 + fastrand::u64(..30))).await;
                let row = raw
                    .query_one(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                         WHERE application_name = $1 AND state = 'active'",
                        &[&app],
                    )
                    .await
                    .unwrap();
                kills += row.get::<_, i64>(0);
            }
            kills
        }
    });
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (store, unknown) = (store.clone(), unknown.clone());
            tokio::spawn(async move {
                let mut acked: Vec<(StreamId, Vec<EventId>, AppendOutcome)> = Vec::new();
                for i in 0..40 {
                    let stream = if i % 4 == 0 {
                        StreamId::new(format!("hot-{}", i % 2)).unwrap()
                    } else {
                        StreamId::new(format!("own-{w}")).unwrap()
                    };
                    let batch: Vec<_> = (0..1 + fastrand::usize(..3))
                        .map(|_| event("Chaos"))
                        .collect();
                    let expected = match store.stream_version(&stream).await {
                        Ok(v) => ExpectedVersion::from_current(v),
                        Err(_) => ExpectedVersion::Any,
                    };
                    let out =
                        append_until_acknowledged(&store, &stream, expected, &batch, &unknown)
                            .await;
                    acked.push((stream, batch.iter().map(|e| e.id).collect(), out));
                }
                acked
            })
        })
        .collect();
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let kills = killer.await.unwrap();
    assert!(kills > 0, "the test killed no connection");
    assert!(
        unknown.load(Ordering::Relaxed) > 0,
        "no append saw its connection die"
    );

    // Every acknowledged event is stored once, where its outcome says.
    let mut per_stream: HashMap<StreamId, usize> = HashMap::new();
    for (stream, ids, out) in &acked {
        for (i, id) in ids.iter().enumerate() {
            let stored = store
                .find_event(stream, *id)
                .await
                .unwrap()
                .expect("acknowledged event stored");
            assert_eq!(stored.version.0, out.first_version.0 + i as u64);
        }
        *per_stream.entry(stream.clone()).or_default() += ids.len();
    }
    // Nothing else: no leftovers of appends that were never acknowledged, no holes.
    let total: usize = per_stream.values().sum();
    let rows = raw
        .query_one(&format!("SELECT count(*) FROM {}", db.table("events")), &[])
        .await
        .unwrap();
    assert_eq!(usize::try_from(rows.get::<_, i64>(0)).unwrap(), total);
    for (stream, n) in per_stream {
        let events = store
            .read_stream(&stream, ReadStream::forward())
            .await
            .unwrap();
        assert_eq!(events.len(), n);
        assert!(events
            .iter()
            .enumerate()
            .all(|(i, e)| e.version.0 == i as u64));
    }
    eprintln!(
        "killed {kills} connections; {} appends retried after an unknown outcome",
        unknown.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_survives_its_connections_being_killed() {
    let db = TestDb::new("kill_subscription").await;
    let reader = db.store().await;
    // Writes go through a store with another application_name, which is never killed.
    let writer = db.writer_store().await;
    let mut sub = reader.subscribe(Position::START, EventFilter::all());
    let raw = raw_client().await;
    let mut sent = Vec::new();
    for round in 0..20_u64 {
        let stream = StreamId::new(format!("order-{}", round % 3)).unwrap();
        let batch: Vec<_> = (0..10).map(|_| event("Placed")).collect();
        sent.extend(batch.iter().map(|e| e.id));
        writer
            .append(&stream, ExpectedVersion::Any, batch)
            .await
            .unwrap();
        if round % 4 == 1 {
            assert!(db.terminate_connections(&raw).await > 0, "nothing to kill");
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let got = take(&mut sub, sent.len(), Duration::from_secs(10)).await;
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), sent);
    assert!(
        crate::common::quiet(&mut sub, Duration::from_millis(300))
            .await
            .is_ok(),
        "a duplicate"
    );
}

/// `builder` with polling slowed to 30 s: only LISTEN/NOTIFY can deliver promptly.
fn hints_only(builder: tessera_postgres::Builder) -> tessera_postgres::Builder {
    builder.subscription_config(tessera_core::SubscriptionConfig {
        poll_interval: Duration::from_secs(30),
        ..tessera_core::SubscriptionConfig::default()
    })
}

/// With polling slowed to 30 s, only LISTEN/NOTIFY can deliver promptly: it works, and
/// it comes back after its connection is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_wake_subscribers_and_reconnect() {
    let db = TestDb::new("listen").await;
    let reader = hints_only(db.builder()).build().await.unwrap();
    let writer = db.writer_store().await;
    let mut sub = reader.subscribe(Position::START, EventFilter::all());
    let raw = raw_client().await;
    let stream = StreamId::new("order-1").unwrap();
    // Wait for the listener to be connected before relying on it.
    wait_for_listener(&raw, &db.app).await;
    writer
        .append(&stream, ExpectedVersion::Any, vec![event("A")])
        .await
        .unwrap();
    take(&mut sub, 1, Duration::from_secs(15)).await;
    db.terminate_connections(&raw).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    wait_for_listener(&raw, &db.app).await;
    writer
        .append(&stream, ExpectedVersion::Any, vec![event("B")])
        .await
        .unwrap();
    let got = take(&mut sub, 1, Duration::from_secs(15)).await;
    assert_eq!(got[0].event_type, "B");
}

/// A store's own `NOTIFY`s do not wake its subscriptions a second time (its writers woke
/// them at the commit): ten appends, each its own commit and notification, wake the
/// reader ten times, not twenty; another store's appends still wake it through LISTEN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stores_own_notifications_do_not_wake_it_twice() {
    let db = TestDb::new("own_notify").await;
    let store = hints_only(db.builder()).build().await.unwrap();
    let mut sub = store.subscribe(Position::START, EventFilter::all());
    let raw = raw_client().await;
    wait_for_listener(&raw, &db.app).await;
    let stream = StreamId::new("order-1").unwrap();
    let (before, rechecks) = (store.wakeups(), store.recheck_wakeups());
    for _ in 0..10 {
        store
            .append(&stream, ExpectedVersion::Any, vec![event("A")])
            .await
            .unwrap();
        // Past the notifier's 10 ms interval: every commit gets a NOTIFY of its own.
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    take(&mut sub, 10, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Re-checks of events hidden behind an uncommitted transaction also wake the
    // subscriptions (a busy machine makes some: 3 in a CI run); they are not counted.
    let own = (store.wakeups() - before) - (store.recheck_wakeups() - rechecks);
    assert!(
        (10..=12).contains(&own),
        "10 commits woke the store's subscriptions {own} times (20: its own NOTIFYs woke them again)"
    );
    let writer = db.writer_store().await;
    let before = store.wakeups();
    writer
        .append(&stream, ExpectedVersion::Any, vec![event("B")])
        .await
        .unwrap();
    let got = take(&mut sub, 1, Duration::from_secs(15)).await;
    assert_eq!(got[0].event_type, "B");
    assert!(store.wakeups() > before, "another store's NOTIFY woke it");
}

/// Two stores (`{name}_a`, `{name}_b`), hints only, the second built `listen_with` the
/// first.
async fn listening_together(name: &str) -> (TestDb, TestDb, PostgresStore, PostgresStore) {
    let (a_db, b_db) = (
        TestDb::new(&format!("{name}_a")).await,
        TestDb::new(&format!("{name}_b")).await,
    );
    let a = hints_only(a_db.builder()).build().await.unwrap();
    let b = hints_only(b_db.builder())
        .listen_with(&a)
        .build()
        .await
        .unwrap();
    (a_db, b_db, a, b)
}

/// Stores built with `listen_with` share one LISTEN connection, each still woken by its
/// own channel's notifications (and only those), including after the store whose
/// connection it was is dropped and after the shared connection is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_listening_together_share_one_connection() {
    let (a_db, b_db, a, b) = listening_together("shared").await;
    let mut a_sub = a.subscribe(Position::START, EventFilter::all());
    let mut b_sub = b.subscribe(Position::START, EventFilter::all());
    let raw = raw_client().await;
    wait_for_listener(&raw, &a_db.app).await;
    assert_eq!(
        listening(&raw, &b_db.app).await,
        0,
        "b opened a LISTEN connection of its own"
    );
    assert_eq!(listening(&raw, &a_db.app).await, 1);
    let (a_writer, b_writer) = (a_db.writer_store().await, b_db.writer_store().await);
    let stream = StreamId::new("order-1").unwrap();
    let a_wakeups = a.wakeups();
    b_writer
        .append(&stream, ExpectedVersion::Any, vec![event("B1")])
        .await
        .unwrap();
    assert_eq!(
        take(&mut b_sub, 1, Duration::from_secs(15)).await[0].event_type,
        "B1"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(a.wakeups(), a_wakeups, "b's notification woke a");
    a_writer
        .append(&stream, ExpectedVersion::Any, vec![event("A1")])
        .await
        .unwrap();
    assert_eq!(
        take(&mut a_sub, 1, Duration::from_secs(15)).await[0].event_type,
        "A1"
    );
    // The connection outlives the store that opened it, and comes back when killed.
    drop(a_sub);
    drop(a);
    a_db.terminate_connections(&raw).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    wait_for_listener(&raw, &a_db.app).await;
    b_writer
        .append(&stream, ExpectedVersion::Any, vec![event("B2")])
        .await
        .unwrap();
    assert_eq!(
        take(&mut b_sub, 1, Duration::from_secs(15)).await[0].event_type,
        "B2"
    );
}

/// Stores sharing a LISTEN connection share its notifier as well (one `NOTIFY`
/// statement carries the hints of all of them; `notify.rs`'s unit tests show the
/// sharing): appends to each, committed together, still wake, on that store's own
/// channel, subscribers in another process that only hints can wake in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_listening_together_notify_other_processes_on_each_channel() {
    let (a_db, b_db, a, b) = listening_together("notify").await;
    // The other process: a store object of its own on each schema, polling every 30 s.
    let far_a = hints_only(a_db.builder().application_name(format!("{}-far", a_db.app)))
        .build()
        .await
        .unwrap();
    let far_b = hints_only(b_db.builder().application_name(format!("{}-far", b_db.app)))
        .build()
        .await
        .unwrap();
    let mut a_sub = far_a.subscribe(Position::START, EventFilter::all());
    let mut b_sub = far_b.subscribe(Position::START, EventFilter::all());
    let raw = raw_client().await;
    wait_for_listener(&raw, &format!("{}-far", a_db.app)).await;
    wait_for_listener(&raw, &format!("{}-far", b_db.app)).await;
    // Past the subscriptions' first reads of the empty logs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stream = StreamId::new("order-1").unwrap();
    for round in 0..3 {
        let (ta, tb) = (format!("A{round}"), format!("B{round}"));
        let (x, y) = tokio::join!(
            a.append(&stream, ExpectedVersion::Any, vec![event(&ta)]),
            b.append(&stream, ExpectedVersion::Any, vec![event(&tb)]),
        );
        x.unwrap();
        y.unwrap();
        let got_a = take(&mut a_sub, 1, Duration::from_secs(10)).await;
        let got_b = take(&mut b_sub, 1, Duration::from_secs(10)).await;
        assert_eq!(
            (got_a[0].event_type.as_str(), got_b[0].event_type.as_str()),
            (ta.as_str(), tb.as_str())
        );
    }
}

/// Polling is the correctness path: a subscriber whose store has no LISTEN connection
/// at all (built on a pool without [`tessera_postgres::Builder::listen_config`]), fed by
/// another store instance (whose appends cannot wake it in-process), still gets every
/// event, catch-up and live, in log order and once, each within a few poll intervals of
/// becoming visible to readers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_alone_delivers_every_event_in_order_once() {
    const POLL: Duration = Duration::from_millis(200);
    // The poll wait plus a read, with room for a loaded 2-core machine.
    const BOUND: Duration = Duration::from_millis(4 * 200);
    let db = TestDb::new("poll_only").await;
    let writer = db.writer_store().await;
    let mut config: tokio_postgres::Config = database_url().parse().unwrap();
    config.application_name(&db.app);
    let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(4)
        .build()
        .unwrap();
    let reader = PostgresStore::from_pool(pool)
        .schema(db.schema.clone())
        .subscription_config(SubscriptionConfig {
            batch_size: 100,
            buffer: 256,
            poll_interval: POLL,
            retry_delay: Duration::from_millis(20),
        })
        .build()
        .await
        .unwrap();
    let stream = |i: usize| StreamId::new(format!("order-{}", i % 4)).unwrap();
    let mut sent = Vec::new();
    for i in 0..3 {
        let batch = vec![event("Early"), event("Early")];
        sent.extend(batch.iter().map(|e| e.id));
        writer
            .append(&stream(i), ExpectedVersion::Any, batch)
            .await
            .unwrap();
    }
    let mut sub = reader.subscribe(Position::START, EventFilter::all());
    let mut got = take(&mut sub, sent.len(), Duration::from_secs(10)).await;
    let raw = raw_client().await;
    let listening: i64 = raw
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE starts_with(application_name, $1) AND query LIKE 'LISTEN%'",
            &[&db.app],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        listening, 0,
        "a LISTEN connection would make this test moot"
    );

    let mut waits = Vec::new();
    for round in 0..12 {
        // One to three appends at once, of one to three events each.
        let tasks: Vec<_> = (0..1 + round % 3)
            .map(|j| {
                let batch: Vec<_> = (0..=j).map(|_| event("Live")).collect();
                sent.extend(batch.iter().map(|e| e.id));
                let (writer, stream) = (writer.clone(), stream(round + j));
                tokio::spawn(async move {
                    writer
                        .append(&stream, ExpectedVersion::Any, batch)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut newest = Position::START;
        let mut events = 0;
        for task in tasks {
            let out = task.await.unwrap();
            newest = newest.max(out.position);
            events += usize::try_from(out.version.0 - out.first_version.0).unwrap() + 1;
        }
        wait_visible(&writer, newest).await;
        let visible = std::time::Instant::now();
        got.extend(take(&mut sub, events, Duration::from_secs(10)).await);
        let waited = visible.elapsed();
        assert!(
            waited <= BOUND,
            "round {round}: delivered {waited:?} after becoming visible (poll interval {POLL:?})"
        );
        waits.push(waited);
        // Land the next appends at another point of the poll cycle.
        tokio::time::sleep(Duration::from_millis(fastrand::u64(..200))).await;
    }
    let log: Vec<EventId> = writer
        .read_all(ReadAll::after(Position::START, 1000))
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    let delivered: Vec<EventId> = got.iter().map(|e| e.id).collect();
    assert_eq!(delivered, log, "delivered out of log order, or not all");
    let mut unique = delivered.clone();
    unique.sort_unstable_by_key(|id| id.0);
    unique.dedup();
    assert_eq!(unique.len(), sent.len(), "a duplicate or a missing event");
    sent.sort_unstable_by_key(|id| id.0);
    assert_eq!(unique, sent);
    if let Err(e) = quiet(&mut sub, 3 * POLL).await {
        panic!("delivered {} again", e.id);
    }
    eprintln!("polling delivered live events after {waits:?}");
}

/// How many connections named `app` are listening (their last statement a LISTEN).
async fn listening(raw: &tokio_postgres::Client, app: &str) -> i64 {
    raw.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'",
        &[&app],
    )
    .await
    .unwrap()
    .get(0)
}

async fn wait_for_listener(raw: &tokio_postgres::Client, app: &str) {
    for _ in 0..250 {
        if listening(raw, app).await > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the LISTEN connection never came up");
}
