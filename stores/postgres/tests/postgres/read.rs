//! Reads: streams both ways, the global log with filters, head, single events.

use tessera_core::{
    EventAppender, EventFilter, EventReader, ExpectedVersion, Metadata, Position, ReadAll,
    ReadStream, StoreError, StreamId, Version,
};

use crate::common::{event, wait_visible, TestDb};

#[tokio::test]
async fn streams_read_forward_and_backward_with_limits() {
    let db = TestDb::new("read_stream").await;
    let store = db.store().await;
    let s = StreamId::new("order-1").unwrap();
    let meta = Metadata::correlated(uuid::Uuid::new_v4())
        .caused_by(uuid::Uuid::new_v4())
        .with_header("k", "v");
    let first = event("A")
        .with_metadata(meta.clone())
        .with_schema_version(3);
    let events = vec![first.clone(), event("B"), event("C"), event("D")];
    store
        .append(&s, ExpectedVersion::NoStream, events.clone())
        .await
        .unwrap();

    let all = store.read_stream(&s, ReadStream::forward()).await.unwrap();
    assert_eq!(all.len(), 4);
    let got = &all[0];
    assert_eq!(
        (got.id, &got.event_type, got.schema_version),
        (first.id, &first.event_type, 3)
    );
    assert_eq!(got.metadata, meta);
    assert_eq!(got.data.to_value().unwrap(), first.data.to_value().unwrap());
    assert_eq!(got.stream_id, s);
    let v = |r: Vec<tessera_core::RecordedEvent>| r.iter().map(|e| e.version.0).collect::<Vec<_>>();
    assert_eq!(
        v(store
            .read_stream(&s, ReadStream::forward().from(Version(1)).limit(2))
            .await
            .unwrap()),
        [1, 2]
    );
    assert_eq!(
        v(store.read_stream(&s, ReadStream::backward()).await.unwrap()),
        [3, 2, 1, 0]
    );
    assert_eq!(
        v(store
            .read_stream(&s, ReadStream::backward().from(Version(2)).limit(2))
            .await
            .unwrap()),
        [2, 1]
    );
    assert_eq!(
        v(store
            .read_stream(&s, ReadStream::backward().from(Version(99)).limit(1))
            .await
            .unwrap()),
        [3]
    );
    assert!(store
        .read_stream(&s, ReadStream::forward().from(Version(u64::MAX)))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .read_stream(&StreamId::new("none").unwrap(), ReadStream::forward())
        .await
        .unwrap()
        .is_empty());
    let err = store
        .read_stream(&s, ReadStream::forward().limit(0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");

    let found = store.find_event(&s, events[2].id).await.unwrap().unwrap();
    assert_eq!(found.version, Version(2));
    assert!(store
        .find_event(&s, tessera_core::EventId::random())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn the_global_log_reads_in_position_order_with_filters() {
    let db = TestDb::new("read_all").await;
    let store = db.store().await;
    assert_eq!(store.head().await.unwrap(), None);
    let order = StreamId::new("order-1").unwrap();
    let pay = StreamId::new("payment-1").unwrap();
    let plain = StreamId::new("order").unwrap();
    store
        .append(
            &order,
            ExpectedVersion::NoStream,
            vec![event("Placed"), event("Paid")],
        )
        .await
        .unwrap();
    store
        .append(&pay, ExpectedVersion::NoStream, vec![event("Charged")])
        .await
        .unwrap();
    let last = store
        .append(&plain, ExpectedVersion::NoStream, vec![event("Placed")])
        .await
        .unwrap();
    wait_visible(&store, last.position).await;
    assert_eq!(store.head().await.unwrap(), Some(last.position));

    let all = store
        .read_all(ReadAll::after(Position::START, 100))
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    let page = store
        .read_all(ReadAll::after(all[1].position, 1))
        .await
        .unwrap();
    assert_eq!(page[0].id, all[2].id);
    assert!(store
        .read_all(ReadAll::after(last.position, 10))
        .await
        .unwrap()
        .is_empty());

    let ids = |f: EventFilter| {
        let store = store.clone();
        async move {
            store
                .read_all(ReadAll::after(Position::START, 100).filter(f))
                .await
                .unwrap()
                .iter()
                .map(|e| (e.stream_id.to_string(), e.event_type.clone()))
                .collect::<Vec<_>>()
        }
    };
    let o = |s: &str, t: &str| (s.to_owned(), t.to_owned());
    assert_eq!(
        ids(EventFilter::category("order")).await,
        [
            o("order-1", "Placed"),
            o("order-1", "Paid"),
            o("order", "Placed")
        ]
    );
    assert_eq!(
        ids(EventFilter::all().with_types(["Placed", "Charged"])).await,
        [
            o("order-1", "Placed"),
            o("payment-1", "Charged"),
            o("order", "Placed")
        ]
    );
    assert_eq!(
        ids(EventFilter::categories(["payment", "order"]).with_types(["Paid"])).await,
        [o("order-1", "Paid")]
    );
    assert!(ids(EventFilter::category("nothing")).await.is_empty());
    let err = store
        .read_all(ReadAll::after(Position::START, 0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
}

/// A filtered log read runs `BEGIN; SET LOCAL …`, the query and `COMMIT` pipelined in
/// one round trip. Dropped at any point (a caller's timeout), it must never leave its
/// connection inside a transaction: an idle open transaction holds the snapshot xmin
/// back and stalls every reader on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_filtered_read_leaves_no_transaction_open() {
    let db = TestDb::new("dropped_read").await;
    let store = db.builder().pool_size(2).build().await.unwrap();
    let s = StreamId::new("order-1").unwrap();
    let appended = store
        .append(&s, ExpectedVersion::NoStream, vec![event("Placed")])
        .await
        .unwrap();
    wait_visible(&store, appended.position).await;
    let filtered = || ReadAll::after(Position::START, 100).filter(EventFilter::category("order"));
    let raw = crate::common::raw_client().await;
    for i in 0..60u64 {
        let read = store.read_all(filtered());
        let _ = tokio::time::timeout(std::time::Duration::from_micros(i * 40), read).await;
        // Checked before the next read: that one would reuse the connection and end
        // whatever transaction was left open on it.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let open: i64 = raw
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
                &[&db.app],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            open, 0,
            "a read dropped after {i} x 40 µs left a transaction open"
        );
    }
    let got = store.read_all(filtered()).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].stream_id, s);
}
