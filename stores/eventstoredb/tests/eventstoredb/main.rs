//! Tests of the EventStoreDB store. Without a server: connection handling against a
//! closed port. With `--features live-server` and `EVENTSTOREDB_URL`: the conformance
//! suite, each case under its own stream prefix.
#![allow(missing_docs)]

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

#[cfg(feature = "live-server")]
mod live {
    use tessera_conformance::StoreFactory;
    use tessera_eventstoredb::EventStoreDbStore;

    pub struct Live;

    impl StoreFactory for Live {
        type Store = EventStoreDbStore;
        async fn create(&self, test_name: &'static str) -> EventStoreDbStore {
            let url = std::env::var("EVENTSTOREDB_URL").expect(
                "EVENTSTOREDB_URL must name a running EventStoreDB (e.g. esdb://127.0.0.1:2113?tls=false)",
            );
            let prefix = format!(
                "t{}_{test_name}_",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            );
            EventStoreDbStore::connect_with_prefix(&url, &prefix).expect("connect")
        }
    }

    tessera_conformance::conformance_suite!(Live);
}
