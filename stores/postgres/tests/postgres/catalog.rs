//! Browsing the store (categories, streams, correlated events) and the hidden-events
//! rule: `correlated` returns only what `read_all` would, while the listings may name
//! a stream whose newest events readers cannot see yet (as documented).

use tessera_conformance::{cases, Browsing};
use tessera_core::{
    EventAppender, EventReader, ExpectedVersion, ListStreams, Metadata, Position, ReadStream,
    StreamId,
};
use uuid::Uuid;

use crate::common::{event, raw_client, wait_visible, TestDb};

/// The listings page in byte order whatever the collation of the columns they compare:
/// the conformance cases again, on a schema whose `events.category` and
/// `streams.stream_id` are in ICU's root collation (`und-x-icu`: `_-1` < `-x` < `a-1`
/// < `b-1` < `B-1`), where the test database's `C.UTF-8` would sort as bytes anyway.
/// Skipped, saying so on stderr, on a server without ICU.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_are_in_byte_order_whatever_the_collation() {
    let raw = raw_client().await;
    let icu = "SELECT count(*) FROM pg_collation WHERE collname = 'und-x-icu'";
    if raw.query_one(icu, &[]).await.unwrap().get::<_, i64>(0) == 0 {
        use std::io::Write;
        let line = "SKIPPED listings_are_in_byte_order_whatever_the_collation: no ICU";
        let _ = writeln!(std::io::stderr(), "{line}");
        return;
    }
    for case in ["categories", "streams"] {
        let db = TestDb::new(&format!("collation_{case}")).await;
        let store = db.store().await;
        raw.batch_execute(&format!(
            "ALTER TABLE {events} ALTER COLUMN category TYPE text COLLATE \"und-x-icu\";
             ALTER TABLE {streams} ALTER COLUMN stream_id TYPE text COLLATE \"und-x-icu\";",
            events = db.table("events"),
            streams = db.table("streams"),
        ))
        .await
        .unwrap();
        if case == "categories" {
            cases::categories_in_byte_order(store, Browsing::Answers).await;
        } else {
            cases::streams_in_byte_order(store, Browsing::Answers).await;
        }
    }
}

/// A transaction that began first and wrote an event of the correlation, still open,
/// hides a later committed event of the same correlation from `correlated` (A can
/// still commit below it), exactly as `read_all` is held back; once A commits both
/// come, in position order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correlated_does_not_return_events_behind_an_open_transaction() {
    let db = TestDb::new("correlated_hidden").await;
    let store = db.store().await;
    let correlation = Uuid::new_v4();
    let raw = raw_client().await;
    // A: open, holding the lower global position, writing an event of the correlation
    // the way the store does (stream row first, then the event).
    let metadata = format!(r#"{{"correlation_id": "{correlation}"}}"#);
    crate::ordering::open_writer(&raw, &db, "trip-a", &metadata).await;
    // B: committed through the store after A began.
    let b_stream = StreamId::new("trip-b").unwrap();
    let b_event = event("B").with_metadata(Metadata::correlated(correlation));
    let b = store
        .append(&b_stream, ExpectedVersion::NoStream, vec![b_event])
        .await
        .unwrap();

    let hidden = store.correlated(correlation, Position::START, 10).await;
    let hidden = hidden.unwrap().expect("the PostgreSQL store searches");
    assert!(
        hidden.is_empty(),
        "correlated returned events behind an open transaction: {hidden:?}"
    );
    let log = store
        .read_all(tessera_core::ReadAll::after(Position::START, 10))
        .await
        .unwrap();
    assert!(log.is_empty(), "read_all is held back too: {log:?}");
    // The listings are not held back (documented): B's stream is listed with its
    // version, and read_stream returns its event; A's uncommitted stream is not listed.
    let streams = store.streams(ListStreams::all(10)).await.unwrap().unwrap();
    let listed: Vec<_> = streams
        .iter()
        .map(|s| (s.stream_id.as_str(), s.version.0))
        .collect();
    assert_eq!(listed, [("trip-b", 0)]);
    let categories = store.categories(None, 10).await.unwrap().unwrap();
    assert_eq!(categories, ["trip"]);
    let b_read = store
        .read_stream(&b_stream, ReadStream::forward())
        .await
        .unwrap();
    assert_eq!(b_read.len(), 1);

    raw.batch_execute("COMMIT").await.unwrap();
    wait_visible(&store, b.position).await;
    let got = store.correlated(correlation, Position::START, 10).await;
    let got = got.unwrap().expect("the PostgreSQL store searches");
    let streams: Vec<&str> = got.iter().map(|e| e.stream_id.as_str()).collect();
    assert_eq!(streams, ["trip-a", "trip-b"], "both, in position order");
    assert!(got[0].position < got[1].position);
    assert_eq!(got[1].position, b.position);
}
