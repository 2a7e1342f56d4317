//! Mappings that only a round trip through the client and a server shows, against the
//! fake server: conflicts as the server reports them, replayed ids, error statuses,
//! and subscriptions that see appends made after they started.

use std::time::Duration;

use tessera_core::{
    EventAppender, EventFilter, EventReader, ExpectedVersion, NewEvent, Position, ReadStream,
    StoreError, StreamId, Version,
};
use tessera_eventstoredb::EventStoreDbStore;

use crate::fake::FakeServer;

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

#[tokio::test]
async fn a_stored_id_is_refused_by_the_store_where_the_server_would_append_it() {
    let (fake, store) = store().await;
    let stream = sid("order-1");
    let a = ev(0);
    store
        .append(&stream, ExpectedVersion::NoStream, vec![a.clone()])
        .await
        .expect("written");
    // The server's own rule: an exact, current expectation appends whatever the ids.
    let raw = tessera_eventstoredb::mapping::to_esdb_metadata(&a.metadata, 1);
    let again = eventstore::EventData::json("Step", &serde_json::json!({ "n": 0 }))
        .expect("json")
        .id(a.id.0)
        .metadata(serde_json::to_vec(&raw).expect("json").into());
    let options = eventstore::AppendToStreamOptions::default()
        .expected_revision(eventstore::ExpectedRevision::Exact(0));
    store
        .client()
        .append_to_stream("app_order-1", &options, again)
        .await
        .expect("the server appends a stored id again");
    assert_eq!(
        fake.stored_ids("app_order-1"),
        vec![(0, a.id.0), (1, a.id.0)]
    );
    // The store checks first: the contract's DuplicateEventId, nothing written.
    let err = store
        .append(&stream, ExpectedVersion::Exact(Version(1)), vec![a.clone()])
        .await
        .expect_err("duplicate");
    assert!(
        matches!(err, StoreError::DuplicateEventId { version: Version(0), event_id, .. } if event_id == a.id),
        "{err:?}"
    );
    assert_eq!(fake.stored_ids("app_order-1").len(), 2);
}
