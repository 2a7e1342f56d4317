//! Tests of the EventStoreDB store: connection handling against a closed port, the
//! conformance suite (`suite`) against an in-process fake server (the
//! `tessera-eventstoredb-fake` crate) or a real one named by `EVENTSTOREDB_URL`, and
//! wire-level mappings against the fake (`wire`).
#![allow(missing_docs)]

mod suite;
mod wire;

use std::time::Duration;

use tessera_core::{EventAppender, EventReader, ExpectedVersion, NewEvent, StoreError, StreamId};
use tessera_eventstoredb::EventStoreDbStore;

/// A port nothing listens on; discovery gives up after one short attempt.
const CLOSED: &str = "esdb://127.0.0.1:9?tls=false&maxDiscoverAttempts=1&discoveryInterval=10&gossipTimeout=200&defaultDeadline=2000";

#[tokio::test]
async fn an_invalid_connection_string_is_a_typed_error() {
    let err = EventStoreDbStore::connect("http://nope").expect_err("rejected");
    assert!(
        matches!(err, StoreError::InvalidInput(ref m) if m.contains("connection string")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_within_bounds() {
    let store = EventStoreDbStore::connect(CLOSED).expect("client");
    let stream = StreamId::new("order-1").expect("valid");
    let event = NewEvent::json("OrderPlaced", &serde_json::json!({})).expect("json");
    let append = tokio::time::timeout(
        Duration::from_secs(30),
        store.append(&stream, ExpectedVersion::Any, vec![event]),
    )
    .await
    .expect("the client gave up within 30 s");
    let err = append.expect_err("no server");
    assert!(err.is_transient(), "expected Unavailable, got {err:?}");
    let read = tokio::time::timeout(Duration::from_secs(30), store.stream_version(&stream))
        .await
        .expect("bounded");
    assert!(read.expect_err("no server").is_transient());
}

#[tokio::test]
async fn empty_and_duplicate_batches_are_rejected_before_any_request() {
    let store = EventStoreDbStore::connect(CLOSED).expect("client");
    let stream = StreamId::new("order-1").expect("valid");
    assert!(matches!(
        store.append(&stream, ExpectedVersion::Any, vec![]).await,
        Err(StoreError::EmptyAppend { .. })
    ));
    let e = NewEvent::json("A", &serde_json::json!({})).expect("json");
    assert!(matches!(
        store
            .append(&stream, ExpectedVersion::Any, vec![e.clone(), e])
            .await,
        Err(StoreError::DuplicateIdInBatch { .. })
    ));
}
