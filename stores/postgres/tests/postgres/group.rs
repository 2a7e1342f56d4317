//! Group commit: appends that share a transaction still succeed or fail on their own,
//! exactly as they would alone (checked against the in-memory reference store).

use std::sync::Arc;
use std::time::Duration;

use tessera_core::{
    AppendOutcome, EventAppender, EventId, EventReader, ExpectedVersion, MemoryStore, NewEvent,
    ReadStream, StoreError, StreamId, Version,
};
use tessera_postgres::PostgresStore;
use tokio::sync::Barrier;

use crate::common::{count_rows, event, lock_stream_row, raw_client, wait_for_lock_wait, TestDb};

/// What an append did, without store-specific positions.
fn shape(result: &Result<tessera_core::AppendOutcome, StoreError>) -> String {
    match result {
        Ok(o) => format!("ok {}..{}", o.first_version, o.version),
        Err(StoreError::WrongExpectedVersion { actual, .. }) => {
            format!("wrong version, actual {actual:?}")
        }
        Err(StoreError::DuplicateEventId {
            event_id, version, ..
        }) => format!("duplicate {event_id} at {version}"),
        Err(e) => format!("other: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_in_one_group_are_decided_one_by_one() {
    let db = TestDb::new("group").await;
    // One writer with large groups, so the concurrent appends below share transactions.
    let store = db
        .builder()
        .writers(1)
        .max_group_size(64)
        .build()
        .await
        .unwrap();
    let memory = MemoryStore::new();
    let stored: Vec<NewEvent> = (0..3).map(|_| event("Stored")).collect();
    for i in 0..12 {
        let s = StreamId::new(format!("acct-{i}")).unwrap();
        for store in [&store as &dyn Setup, &memory] {
            store.setup(&s, stored.clone()).await;
        }
    }
    let sid = |i: usize| StreamId::new(format!("acct-{i}")).unwrap();
    let fresh = |i: usize| StreamId::new(format!("new-{i}")).unwrap();
    let (a, b, c) = (stored[0].clone(), stored[1].clone(), stored[2].clone());
    let exact = |v| ExpectedVersion::Exact(Version(v));
    let cases: Vec<(StreamId, ExpectedVersion, Vec<NewEvent>)> = vec![
        (sid(0), exact(2), vec![event("X"), event("Y")]),
        (sid(1), exact(1), vec![event("X")]),
        (sid(2), ExpectedVersion::NoStream, vec![event("X")]),
        (sid(3), ExpectedVersion::StreamExists, vec![event("X")]),
        (
            sid(4),
            ExpectedVersion::Any,
            vec![event("X"), event("Y"), event("Z")],
        ),
        (
            sid(5),
            ExpectedVersion::NoStream,
            vec![a.clone(), b.clone(), c.clone()],
        ),
        (sid(6), ExpectedVersion::Any, vec![b.clone(), c.clone()]),
        (sid(7), exact(0), vec![b.clone()]),
        (sid(8), exact(2), vec![event("X"), a.clone()]),
        (sid(9), ExpectedVersion::Any, vec![c.clone(), b.clone()]),
        (sid(10), exact(0), vec![b.clone(), event("X")]),
        (sid(11), exact(9), vec![event("X")]),
        (fresh(0), ExpectedVersion::NoStream, vec![event("X")]),
        (fresh(1), ExpectedVersion::Any, vec![event("X"), event("Y")]),
        (fresh(2), ExpectedVersion::StreamExists, vec![event("X")]),
        (fresh(3), exact(0), vec![event("X")]),
    ];
    let expected: Vec<String> = {
        let mut out = Vec::new();
        for (s, e, evs) in &cases {
            out.push(shape(&memory.append(s, *e, evs.clone()).await));
        }
        out
    };
    let barrier = Arc::new(Barrier::new(cases.len()));
    let tasks: Vec<_> = cases
        .into_iter()
        .map(|(s, e, evs)| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                shape(&store.append(&s, e, evs).await)
            })
        })
        .collect();
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_to_one_stream_in_one_group_see_each_other() {
    let db = TestDb::new("group_same").await;
    let store = db.builder().writers(1).build().await.unwrap();
    let s = StreamId::new("cart-1").unwrap();
    let barrier = Arc::new(Barrier::new(40));
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (store, barrier, s) = (store.clone(), barrier.clone(), s.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let expected = if i % 2 == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Any
                };
                store.append(&s, expected, vec![event("Added")]).await
            })
        })
        .collect();
    let mut ok = 0;
    let mut versions = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(o) => {
                ok += 1;
                versions.push(o.version.0);
            }
            Err(StoreError::WrongExpectedVersion { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    // Every Any lands; a NoStream only if it ran before everything else.
    assert!(ok == 20 || ok == 21, "{ok} appends landed");
    versions.sort_unstable();
    assert_eq!(versions, (0..ok).collect::<Vec<_>>());
    let stored = store.read_stream(&s, ReadStream::forward()).await.unwrap();
    assert_eq!(stored.len(), usize::try_from(ok).unwrap());
}

/// Tasks appending the very same batch at one moment: retries of one append in flight
/// together (a client that timed out and retried while its first attempt still ran).
const RETRIES: usize = 8;
/// Races of each kind, so the copies meet in the arrangements the group path has: run
/// side by side on the two append connections, or queued behind each other, alone or
/// in a group statement with appends to other streams.
const ROUNDS: usize = 20;

type Outcome = Result<AppendOutcome, StoreError>;

/// A store with the default two append connections and one with a single connection.
async fn two_stores(db: &TestDb) -> [PostgresStore; 2] {
    [
        db.store().await,
        db.builder().writers(1).build().await.unwrap(),
    ]
}

/// `RETRIES` tasks append `batch` to `stream` with `expected` at one moment, beside as
/// many appends to other streams (so the copies also go out in group statements, not
/// only alone); returns the copies' results, after checking the others landed.
async fn race_identical(
    store: &PostgresStore,
    stream: &StreamId,
    expected: ExpectedVersion,
    batch: &[NewEvent],
    what: &str,
) -> Vec<Outcome> {
    let barrier = Arc::new(Barrier::new(2 * RETRIES));
    let copies: Vec<_> = (0..RETRIES)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            let (stream, batch) = (stream.clone(), batch.to_vec());
            tokio::spawn(async move {
                barrier.wait().await;
                store.append(&stream, expected, batch).await
            })
        })
        .collect();
    let others: Vec<_> = (0..RETRIES)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            let other = StreamId::new(format!("other-{i}")).unwrap();
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .append(&other, ExpectedVersion::Any, vec![event("Other")])
                    .await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(RETRIES);
    for task in copies {
        results.push(task.await.unwrap());
    }
    for task in others {
        let result = task.await.unwrap();
        assert!(
            result.is_ok(),
            "{what}: an append to another stream: {result:?}"
        );
    }
    results
}

/// Checks that every copy succeeded with one and the same outcome, and that the batch is
/// stored once, right after the `before` events the stream held, with no hole.
async fn assert_landed_once(
    store: &PostgresStore,
    raw: &tokio_postgres::Client,
    db: &TestDb,
    (stream, batch, before): (&StreamId, &[NewEvent], usize),
    results: &[Outcome],
    what: &str,
) -> AppendOutcome {
    let outcome = match &results[0] {
        Ok(o) => *o,
        Err(e) => panic!("{what}: copy 0 of an identical append failed: {e:?}"),
    };
    for (i, result) in results.iter().enumerate() {
        match result {
            Ok(o) => assert_eq!(*o, outcome, "{what}: copy {i} got another outcome"),
            Err(e) => panic!("{what}: copy {i} of an identical append failed: {e:?}"),
        }
    }
    let n = batch.len();
    let (first, last) = (before as u64, (before + n - 1) as u64);
    assert_eq!(
        (outcome.first_version, outcome.version),
        (Version(first), Version(last)),
        "{what}: versions of the batch"
    );
    let stored = store
        .read_stream(stream, ReadStream::forward())
        .await
        .unwrap();
    assert_eq!(stored.len(), before + n, "{what}: events in the stream");
    assert!(
        stored
            .iter()
            .enumerate()
            .all(|(i, e)| e.version.0 == i as u64),
        "{what}: versions with a hole: {:?}",
        stored.iter().map(|e| e.version.0).collect::<Vec<_>>()
    );
    let ids: Vec<EventId> = stored[before..].iter().map(|e| e.id).collect();
    let sent: Vec<EventId> = batch.iter().map(|e| e.id).collect();
    assert_eq!(ids, sent, "{what}: the batch as stored");
    assert_eq!(
        stored[before + n - 1].position,
        outcome.position,
        "{what}: the outcome's position is not the batch's last event"
    );
    let rows = count_rows(raw, db, stream.as_str()).await;
    assert_eq!(
        rows,
        i64::try_from(before + n).unwrap(),
        "{what}: rows in the events table"
    );
    assert_eq!(
        store.stream_version(stream).await.unwrap(),
        Some(Version(last)),
        "{what}: the stream's version"
    );
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_appends_in_flight_together_with_exact_land_once() {
    let db = TestDb::new("same_exact").await;
    let stores = two_stores(&db).await;
    let raw = raw_client().await;
    for n in [1, 3] {
        let stream = StreamId::new(format!("cart-{n}")).unwrap();
        stores[0]
            .append(&stream, ExpectedVersion::NoStream, vec![event("Opened")])
            .await
            .unwrap();
        let mut before = 1;
        for round in 0..ROUNDS {
            let what = format!("{n} events, round {round}, Exact({})", before - 1);
            let store = &stores[round % 2];
            let batch: Vec<_> = (0..n).map(|_| event("Added")).collect();
            let expected = ExpectedVersion::Exact(Version(before as u64 - 1));
            let results = race_identical(store, &stream, expected, &batch, &what).await;
            let shape = (&stream, &batch[..], before);
            assert_landed_once(store, &raw, &db, shape, &results, &what).await;
            before += n;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_appends_in_flight_together_with_any_land_once() {
    let db = TestDb::new("same_any").await;
    let stores = two_stores(&db).await;
    let raw = raw_client().await;
    for n in [1, 3] {
        // The first round creates the stream.
        let stream = StreamId::new(format!("cart-{n}")).unwrap();
        let mut before = 0;
        for round in 0..ROUNDS {
            let what = format!("{n} events, round {round}, Any");
            let store = &stores[round % 2];
            let batch: Vec<_> = (0..n).map(|_| event("Added")).collect();
            let results = race_identical(store, &stream, ExpectedVersion::Any, &batch, &what).await;
            let shape = (&stream, &batch[..], before);
            assert_landed_once(store, &raw, &db, shape, &results, &what).await;
            before += n;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_appends_in_flight_together_with_no_stream_land_once() {
    let db = TestDb::new("same_no_stream").await;
    let stores = two_stores(&db).await;
    let raw = raw_client().await;
    for n in [1, 3] {
        for round in 0..ROUNDS {
            let what = format!("{n} events, round {round}, NoStream");
            let stream = StreamId::new(format!("cart-{n}-{round}")).unwrap();
            let store = &stores[round % 2];
            let batch: Vec<_> = (0..n).map(|_| event("Opened")).collect();
            let results =
                race_identical(store, &stream, ExpectedVersion::NoStream, &batch, &what).await;
            let shape = (&stream, &batch[..], 0);
            assert_landed_once(store, &raw, &db, shape, &results, &what).await;
        }
    }
}

/// Runs `appends` as one group on `store`, which must have a single append connection
/// ([`tessera_postgres::Builder::writers`]`(1)`) and `db`'s application name: while they
/// queue, that connection is busy with an append blocked on a stream row a foreign
/// transaction holds; then the lock goes and the next leader takes them all at once
/// (one per stream). Returns their results in order.
pub async fn in_one_group(
    db: &TestDb,
    store: &PostgresStore,
    appends: Vec<(StreamId, ExpectedVersion, Vec<NewEvent>)>,
) -> Vec<Outcome> {
    let held = StreamId::new(format!("held-{}", fastrand::u32(..))).unwrap();
    store
        .append(&held, ExpectedVersion::NoStream, vec![event("Held")])
        .await
        .unwrap();
    let lock = lock_stream_row(db, held.as_str()).await;
    let blocked = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .append(
                    &held,
                    ExpectedVersion::Exact(Version(0)),
                    vec![event("Blocked")],
                )
                .await
        }
    });
    wait_for_lock_wait(&raw_client().await, &db.app).await;
    let tasks: Vec<_> = appends
        .into_iter()
        .map(|(stream, expected, batch)| {
            let store = store.clone();
            tokio::spawn(async move { store.append(&stream, expected, batch).await })
        })
        .collect();
    // Let every append queue behind the blocked one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    lock.batch_execute("ROLLBACK").await.unwrap();
    blocked.await.unwrap().expect("the blocked append lands");
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// What an append in [`colliding_batches_in_one_group_change_nothing`] must give.
#[derive(Debug)]
enum Want {
    Ok(u64, u64),
    Repeat(AppendOutcome),
    /// `DuplicateEventId` naming one of these stored ids and its version.
    Duplicate(Vec<(EventId, u64)>),
    /// `WrongExpectedVersion` with the stream at version 3.
    Wrong,
    DuplicateInBatch(EventId),
}

type Case = (StreamId, ExpectedVersion, Vec<NewEvent>, Want);

/// Runs `cases` in one group and checks each result against what it must give.
async fn run_cases(db: &TestDb, store: &PostgresStore, cases: Vec<Case>, phase: &str) {
    let (appends, wants): (Vec<_>, Vec<_>) = cases
        .into_iter()
        .map(|(s, e, b, want)| ((s.clone(), e, b), (s, e, want)))
        .unzip();
    let results = in_one_group(db, store, appends).await;
    for (result, (stream, expected, want)) in results.iter().zip(&wants) {
        let what = format!("{phase}: {stream} with {expected:?} must give {want:?}");
        match (want, result) {
            (Want::Ok(first, last), Ok(o)) => {
                assert_eq!((o.first_version.0, o.version.0), (*first, *last), "{what}");
            }
            (Want::Repeat(original), Ok(o)) => assert_eq!(o, original, "{what}"),
            (
                Want::Duplicate(stored),
                Err(StoreError::DuplicateEventId {
                    stream: s,
                    event_id,
                    version,
                }),
            ) => {
                assert_eq!(s, stream, "{what}");
                assert!(
                    stored.contains(&(*event_id, version.0)),
                    "{what}: got {event_id} at {version}"
                );
            }
            (
                Want::Wrong,
                Err(StoreError::WrongExpectedVersion {
                    stream: s,
                    expected: e,
                    actual,
                }),
            ) => {
                assert_eq!(
                    (s, e, *actual),
                    (stream, expected, Some(Version(3))),
                    "{what}"
                );
            }
            (Want::DuplicateInBatch(id), Err(StoreError::DuplicateIdInBatch { event_id, .. })) => {
                assert_eq!(event_id, id, "{what}");
            }
            (_, other) => panic!("{what}: got {other:?}"),
        }
    }
}

/// Batches that reuse ids stored at other versions of their stream, in one group
/// statement with appends that land: each gets its own typed error, never success, and
/// nothing stored changes. Twice: once with collisions the unique keys catch (the group
/// statement fails; each append is then decided alone), once with only collisions the
/// compare-and-set refuses (the group commits; its refused appends are settled from
/// it). The single-append path is the conformance suite's `idempotency_conflicts`
/// (stored ids) and `rejected_batches` (an id twice in a batch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colliding_batches_in_one_group_change_nothing() {
    let db = TestDb::new("group_collide").await;
    let store = db.builder().writers(1).build().await.unwrap();
    let raw = raw_client().await;
    // Every stream holds a0 (alone), b1 b2 (one batch), c3 (alone): the same ids in
    // each, which is allowed (idempotency is per stream).
    let fixture: Vec<NewEvent> = ["A", "B", "B", "C"].map(event).to_vec();
    let (a, b1, b2, c) = (&fixture[0], &fixture[1], &fixture[2], &fixture[3]);
    let sid = |i: usize| StreamId::new(format!("acct-{i}")).unwrap();
    // Where each stream's a0 and b1 b2 landed.
    let mut original = Vec::new();
    for i in 0..12 {
        let s = sid(i);
        let out_a = store
            .append(&s, ExpectedVersion::NoStream, vec![a.clone()])
            .await
            .unwrap();
        let out_b = store
            .append(
                &s,
                ExpectedVersion::Exact(Version(0)),
                vec![b1.clone(), b2.clone()],
            )
            .await
            .unwrap();
        store
            .append(&s, ExpectedVersion::Exact(Version(2)), vec![c.clone()])
            .await
            .unwrap();
        original.push((out_a, out_b));
    }
    let mut before = Vec::new();
    for i in 0..12 {
        let events = store.read_stream(&sid(i), ReadStream::forward()).await;
        before.push(events.unwrap());
    }
    let new: Vec<NewEvent> = (0..4).map(|_| event("New")).collect();
    let exact = |v| ExpectedVersion::Exact(Version(v));
    let at = |e: &NewEvent, v| (e.id, v);
    let (fresh, fresh2) = (sid(100), sid(101));
    use ExpectedVersion::{Any, NoStream, StreamExists};
    #[rustfmt::skip]
    let caught_by_keys: Vec<Case> = vec![
        (sid(0), exact(3), vec![new[0].clone(), a.clone()], Want::Duplicate(vec![at(a, 0)])),
        (sid(1), Any, vec![b2.clone(), b1.clone()], Want::Duplicate(vec![at(b1, 1), at(b2, 2)])),
        (sid(2), StreamExists, vec![new[0].clone(), c.clone()], Want::Duplicate(vec![at(c, 3)])),
        (sid(3), exact(0), vec![c.clone()], Want::Wrong),
        (sid(4), exact(1), vec![b1.clone(), b2.clone()], Want::Wrong),
        (sid(5), NoStream, vec![a.clone(), new[0].clone()], Want::Wrong),
        (sid(6), exact(0), vec![b1.clone(), b2.clone()], Want::Repeat(original[6].1)),
        (sid(7), Any, vec![b1.clone(), b2.clone()], Want::Repeat(original[7].1)),
        (sid(8), exact(3), vec![new[1].clone()], Want::Ok(4, 4)),
        (fresh.clone(), NoStream, vec![a.clone(), b1.clone()], Want::Ok(0, 1)),
        (sid(10), exact(0), vec![b1.clone(), b2.clone(), b1.clone()], Want::DuplicateInBatch(b1.id)),
    ];
    run_cases(&db, &store, caught_by_keys, "the unique keys").await;
    #[rustfmt::skip]
    let refused_by_cas: Vec<Case> = vec![
        (sid(3), exact(0), vec![c.clone()], Want::Wrong),
        (sid(4), exact(1), vec![b1.clone(), b2.clone()], Want::Wrong),
        (sid(5), NoStream, vec![a.clone(), new[0].clone()], Want::Wrong),
        (sid(9), exact(0), vec![b2.clone(), b1.clone()], Want::Wrong),
        (sid(10), exact(2), vec![c.clone(), new[0].clone()], Want::Wrong),
        (sid(6), exact(0), vec![b1.clone(), b2.clone()], Want::Repeat(original[6].1)),
        (sid(11), NoStream, vec![a.clone()], Want::Repeat(original[11].0)),
        (sid(8), exact(4), vec![new[2].clone()], Want::Ok(5, 5)),
        (fresh2.clone(), NoStream, vec![new[3].clone()], Want::Ok(0, 0)),
    ];
    run_cases(&db, &store, refused_by_cas, "the compare-and-set").await;

    // Only the appends that landed changed anything.
    for (i, before) in before.iter().enumerate() {
        let after = store.read_stream(&sid(i), ReadStream::forward()).await;
        let after = after.unwrap();
        if i == 8 {
            assert_eq!(after[..4], before[..], "acct-8's first events changed");
            let ids: Vec<EventId> = after[4..].iter().map(|e| e.id).collect();
            assert_eq!(ids, [new[1].id, new[2].id], "acct-8's new events");
        } else {
            assert_eq!(&after, before, "acct-{i} changed");
        }
    }
    for (stream, ids) in [(&fresh, vec![a.id, b1.id]), (&fresh2, vec![new[3].id])] {
        let stored = store.read_stream(stream, ReadStream::forward()).await;
        let stored: Vec<EventId> = stored.unwrap().iter().map(|e| e.id).collect();
        assert_eq!(stored, ids, "{stream}");
    }
    let total: i64 = raw
        .query_one(&format!("SELECT count(*) FROM {}", db.table("events")), &[])
        .await
        .unwrap()
        .get(0);
    // 12 fixture streams of 4, acct-8's 2 new events, the new streams' 2 and 1, and
    // 2 in each group's held stream.
    assert_eq!(
        total,
        12 * 4 + 2 + 2 + 1 + 2 * 2,
        "rows in the events table"
    );
}

/// Writes the same starting state to either store.
trait Setup: Sync {
    fn setup<'a>(
        &'a self,
        s: &'a StreamId,
        events: Vec<NewEvent>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;
}

impl<T: EventAppender> Setup for T {
    fn setup<'a>(
        &'a self,
        s: &'a StreamId,
        events: Vec<NewEvent>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            self.append(s, ExpectedVersion::NoStream, events[..1].to_vec())
                .await
                .unwrap();
            self.append(s, ExpectedVersion::Exact(Version(0)), events[1..].to_vec())
                .await
                .unwrap();
        })
    }
}

/// Two groups never hold one stream: while a group on one connection waits for a
/// stream's row, a later append to that stream waits in the queue, not on the other
/// connection (where it would queue on the same row lock, and two groups locking rows
/// in opposite orders could deadlock), and that connection meanwhile commits appends
/// to other streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_to_a_stream_another_group_holds_waits_in_the_queue() {
    let db = TestDb::new("held_stream").await;
    let store = db.builder().writers(2).build().await.unwrap();
    let held = StreamId::new("order-held").unwrap();
    store
        .append(&held, ExpectedVersion::NoStream, vec![event("A")])
        .await
        .unwrap();
    let lock = lock_stream_row(&db, held.as_str()).await;
    let raw = raw_client().await;
    let append_to_held = |ty: &'static str| {
        let (store, held) = (store.clone(), held.clone());
        tokio::spawn(async move {
            store
                .append(&held, ExpectedVersion::Any, vec![event(ty)])
                .await
        })
    };
    let first = append_to_held("B");
    wait_for_lock_wait(&raw, &db.app).await;
    let second = append_to_held("C");
    for i in 0..5 {
        let free = StreamId::new(format!("order-free-{i}")).unwrap();
        let append = store.append(&free, ExpectedVersion::NoStream, vec![event("F")]);
        tokio::time::timeout(Duration::from_secs(5), append)
            .await
            .expect("the other connection is not stuck behind the held stream's lock")
            .expect("the other connection keeps committing");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting: i64 = raw
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
             AND wait_event_type = 'Lock'",
            &[&db.app],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        waiting, 1,
        "the second append to the held stream was sent on the other connection"
    );
    lock.batch_execute("ROLLBACK").await.unwrap();
    let (first, second) = (
        first.await.unwrap().unwrap(),
        second.await.unwrap().unwrap(),
    );
    assert_eq!(
        (first.version, second.version),
        (Version(1), Version(2)),
        "in the order they were made"
    );
    assert_eq!(count_rows(&raw, &db, held.as_str()).await, 3);
}
