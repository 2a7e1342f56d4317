//! Mappings that only a round trip through the client and a server shows, against the
//! fake server: conflicts as the server reports them, replayed ids, error statuses,
//! and subscriptions that see appends made after they started.

use std::time::Duration;

use tessera_core::{
    EventAppender, EventFilter, EventReader, ExpectedVersion, NewEvent, Position, ReadStream,
    StoreError, StreamId, Version,
};
use tessera_eventstoredb::EventStoreDbStore;

use tessera_eventstoredb_fake::FakeServer;

const WAIT: Duration = Duration::from_secs(20);

async fn store() -> (FakeServer, EventStoreDbStore) {
    let fake = FakeServer::start().await;
    let store = EventStoreDbStore::connect_with_prefix(&fake.url(), "app_").expect("client");
    (fake, store)
}

fn sid(s: &str) -> StreamId {
    StreamId::new(s).expect("valid")
}

fn ev(n: u64) -> NewEvent {
    NewEvent::json("Step", &serde_json::json!({ "n": n })).expect("json")
}

#[tokio::test]
async fn a_conflict_carries_the_expected_and_the_servers_actual_revision() {
    let (fake, store) = store().await;
    let stream = sid("order-1");
    store
        .append(&stream, ExpectedVersion::NoStream, vec![ev(0), ev(1)])
        .await
        .expect("created");
    let err = store
        .append(&stream, ExpectedVersion::Exact(Version(0)), vec![ev(2)])
        .await
        .expect_err("stale");
    match err {
        StoreError::WrongExpectedVersion {
            stream: s,
            expected,
            actual,
        } => {
            assert_eq!(s, stream);
            assert_eq!(expected, ExpectedVersion::Exact(Version(0)));
            assert_eq!(actual, Some(Version(1)), "the server's current revision");
        }
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
    let missing = store
        .append(&sid("order-2"), ExpectedVersion::StreamExists, vec![ev(0)])
        .await;
    assert!(
        matches!(
            missing,
            Err(StoreError::WrongExpectedVersion { actual: None, .. })
        ),
        "{missing:?}"
    );
    assert_eq!(fake.stored_ids("app_order-1").len(), 2, "nothing written");
    assert!(fake.stored_ids("app_order-2").is_empty());
}

#[tokio::test]
async fn a_replayed_batch_lands_once() {
    let (fake, store) = store().await;
    let stream = sid("order-1");
    let batch = vec![ev(0), ev(1)];
    let first = store
        .append(&stream, ExpectedVersion::NoStream, batch.clone())
        .await
        .expect("written");
    for expected in [ExpectedVersion::NoStream, ExpectedVersion::Any] {
        let again = store
            .append(&stream, expected, batch.clone())
            .await
            .expect("a replay succeeds");
        assert_eq!(again, first, "{expected:?}: the original outcome");
    }
    let stored = fake.stored_ids("app_order-1");
    let ids: Vec<_> = batch.iter().map(|e| e.id.0).collect();
    assert_eq!(stored, vec![(0, ids[0]), (1, ids[1])], "each event once");
}

#[tokio::test]
async fn server_error_statuses_map_by_kind() {
    let (fake, store) = store().await;
    let stream = sid("order-1");
    for code in [tonic::Code::Unavailable, tonic::Code::DeadlineExceeded] {
        fake.refuse_next(1, code);
        let err = store
            .append(&stream, ExpectedVersion::Any, vec![ev(0)])
            .await
            .expect_err("refused");
        assert!(
            err.is_transient(),
            "{code:?} must be transient, got {err:?}"
        );
        fake.refuse_next(1, code);
        let err = store
            .read_stream(&stream, ReadStream::forward())
            .await
            .expect_err("refused");
        assert!(
            err.is_transient(),
            "{code:?} on a read must be transient, got {err:?}"
        );
    }
    fake.refuse_next(1, tonic::Code::PermissionDenied);
    let err = store
        .append(&stream, ExpectedVersion::Any, vec![ev(0)])
        .await
        .expect_err("refused");
    assert!(
        matches!(err, StoreError::Backend { .. }),
        "access denied is not transient: {err:?}"
    );
    // The client reconnects after the failures, and nothing was written by them.
    store
        .append(&stream, ExpectedVersion::NoStream, vec![ev(0)])
        .await
        .expect("served again");
    assert_eq!(fake.stored_ids("app_order-1").len(), 1);
}

#[tokio::test]
async fn subscriptions_deliver_events_appended_after_they_start() {
    let (fake, store) = store().await;
    store
        .append(&sid("order-0"), ExpectedVersion::NoStream, vec![ev(0)])
        .await
        .expect("before");
    let mut all = store.subscribe(Position::START, EventFilter::all());
    let mut orders = store.subscribe(Position::START, EventFilter::category("order"));
    let first = tokio::time::timeout(WAIT, all.next())
        .await
        .expect("catch-up")
        .expect("open")
        .expect("event");
    assert_eq!(first.stream_id, sid("order-0"));
    let first_order = tokio::time::timeout(WAIT, orders.next())
        .await
        .expect("catch-up")
        .expect("open")
        .expect("event");
    assert_eq!(first_order.stream_id, sid("order-0"));
    // Appends after the subscriptions caught up, with foreign events in between.
    fake.write_raw("other-app-1", "Foreign", b"\x00binary");
    for (stream, n) in [("payment-1", 1), ("order-1", 2), ("order-2", 3)] {
        store
            .append(&sid(stream), ExpectedVersion::NoStream, vec![ev(n)])
            .await
            .expect("after");
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        let e = tokio::time::timeout(WAIT, all.next())
            .await
            .expect("live event")
            .expect("open")
            .expect("event");
        seen.push(e.stream_id.to_string());
    }
    assert_eq!(seen, ["payment-1", "order-1", "order-2"]);
    let mut seen = Vec::new();
    for _ in 0..2 {
        let e = tokio::time::timeout(WAIT, orders.next())
            .await
            .expect("live event")
            .expect("open")
            .expect("event");
        seen.push(e.stream_id.to_string());
    }
    assert_eq!(seen, ["order-1", "order-2"], "the category only");
}

/// The same appends through the raw client on one stream and through the store on
/// another: the store passes the ids through, so the server's idempotency rules
/// (`IndexWriter.CheckCommit`) decide both alike, stored ids included. Each stream gets
/// its own ids: the server's id cache is global (an id maps to the stream it was last
/// written to), so shared ids would make the two runs interfere.
#[tokio::test]
async fn the_store_passes_ids_through_and_gets_the_servers_idempotency() {
    use eventstore::ExpectedRevision as R;
    use ExpectedVersion::{Any, Exact, NoStream};
    let (fake, store) = store().await;
    let raw_events = [ev(0), ev(1)];
    let store_events = [ev(0), ev(1)];
    // The server's answer: the last revision written or found, or a refusal naming the
    // stream's current revision.
    type Answer = Result<u64, Option<u64>>;
    // Batches name events by index: 0 is `a`, 1 is `b`.
    #[rustfmt::skip]
    let steps: [(&str, ExpectedVersion, R, &[usize], Answer); 5] = [
        ("a creates the stream",                         NoStream,          R::NoStream, &[0],    Ok(0)),
        ("a again with Exact(current) is appended",      Exact(Version(0)), R::Exact(0), &[0],    Ok(1)),
        ("stored a, then new b, with Any is refused",    Any,               R::Any,      &[0, 1], Err(Some(1))),
        ("new b, then stored a, with Any is appended",   Any,               R::Any,      &[1, 0], Ok(3)),
        ("a b, both stored, with Any: a repeat up to b", Any,               R::Any,      &[0, 1], Ok(2)),
    ];
    let stream = sid("order-1");
    for (what, expected, revision, batch, want) in steps {
        let data: Vec<_> = batch
            .iter()
            .map(|&i| {
                eventstore::EventData::json("Step", &serde_json::json!({}))
                    .expect("json")
                    .id(raw_events[i].id.0)
            })
            .collect();
        let options = eventstore::AppendToStreamOptions::default().expected_revision(revision);
        let raw = store
            .client()
            .append_to_stream("raw-1", &options, data)
            .await;
        let raw = raw.map(|w| w.next_expected_version).map_err(|e| match e {
            eventstore::Error::WrongExpectedVersion { current, .. } => {
                tessera_eventstoredb::mapping::current_version(current).map(|v| v.0)
            }
            other => panic!("{what}: raw client: {other:?}"),
        });
        assert_eq!(raw, want, "{what}: the raw client");
        let events: Vec<_> = batch.iter().map(|&i| store_events[i].clone()).collect();
        let got = store.append(&stream, expected, events).await;
        match (got, want) {
            (Ok(out), Ok(last)) => {
                assert_eq!(out.version, Version(last), "{what}: the store's version");
                let n = batch.len() as u64;
                assert_eq!(
                    out.first_version,
                    Version((last + 1).saturating_sub(n)),
                    "{what}"
                );
            }
            (
                Err(StoreError::WrongExpectedVersion {
                    expected: e,
                    actual,
                    ..
                }),
                Err(current),
            ) => {
                assert_eq!(e, expected, "{what}");
                assert_eq!(
                    actual,
                    current.map(Version),
                    "{what}: the server's revision"
                );
            }
            (other, _) => panic!("{what}: the store answered {other:?}, the server {want:?}"),
        }
    }
    let ids = |[a, b]: &[NewEvent; 2]| vec![(0, a.id.0), (1, a.id.0), (2, b.id.0), (3, a.id.0)];
    assert_eq!(fake.stored_ids("raw-1"), ids(&raw_events), "the raw client");
    assert_eq!(
        fake.stored_ids("app_order-1"),
        ids(&store_events),
        "the store"
    );
}
