//! Bad input: schema names, unreachable servers, corrupt rows.

use std::time::{Duration, Instant};

use tessera_core::{
    EventAppender, EventReader, ExpectedVersion, Position, ReadAll, ReadStream, StoreError,
    StreamId,
};
use tessera_postgres::{PostgresStore, SchemaName};

use crate::common::{event, raw_client, wait_settled, TestDb};

#[test]
fn invalid_schema_names_are_rejected() {
    for bad in [
        "",
        "Upper",
        "has space",
        "semi;colon",
        "quo\"te",
        "pg_toast",
        "9lives",
    ] {
        let err = SchemaName::new(bad).unwrap_err();
        assert_eq!(err.name, bad);
        assert!(err.to_string().contains("invalid schema name"), "{err}");
    }
}

#[tokio::test]
async fn an_unreachable_database_fails_fast_naming_host_and_port() {
    // Port 1 on loopback: nothing listens there, so the connection is refused.
    let started = Instant::now();
    let result = PostgresStore::builder("postgres://postgres@127.0.0.1:1/test")
        .connect_timeout(Duration::from_secs(2))
        .build()
        .await;
    let err = result.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    let err = PostgresStore::builder("postgres://postgres@127.0.0.1:1/test?port=x")
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_fails_within_the_connect_timeout() {
    // Accepts connections on loopback and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let err = PostgresStore::builder(format!("postgres://postgres@127.0.0.1:{port}/test"))
        .connect_timeout(Duration::from_secs(1))
        .build()
        .await
        .unwrap_err();
    let took = started.elapsed();
    silent.abort();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn malformed_stored_rows_are_corrupt_naming_stream_and_version() {
    let db = TestDb::new("corrupt").await;
    let store = db.store().await;
    let s = StreamId::new("order-7").unwrap();
    store
        .append(&s, ExpectedVersion::NoStream, vec![event("Good")])
        .await
        .unwrap();
    let raw = raw_client().await;
    let insert = |version: i64, metadata: &str, schema_version: i64| {
        format!(
            "INSERT INTO {} (stream_id, version, event_id, event_type, schema_version, data, metadata) \
             VALUES ('order-7', {version}, gen_random_uuid(), 'Bad', {schema_version}, '{{}}', '{metadata}')",
            db.table("events")
        )
    };
    raw.batch_execute(&insert(1, r#"{"correlation_id": 42}"#, 1))
        .await
        .unwrap();
    raw.batch_execute(&insert(2, "{}", -1)).await.unwrap();
    wait_settled(&store).await;

    let expect_corrupt = |result: Result<Vec<tessera_core::RecordedEvent>, StoreError>,
                          version: u64| {
        match result.unwrap_err() {
            StoreError::Corrupt {
                stream,
                version: v,
                reason,
            } => {
                assert_eq!((stream.as_str(), v), ("order-7", version), "{reason}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    };
    expect_corrupt(store.read_stream(&s, ReadStream::forward()).await, 1);
    expect_corrupt(
        store
            .read_stream(&s, ReadStream::forward().from(tessera_core::Version(2)))
            .await,
        2,
    );
    // The log reads up to the first bad row, then reports it.
    let before = store
        .read_all(ReadAll::after(Position::START, 10))
        .await
        .expect("the events before the bad row");
    assert_eq!(
        before
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
        ["Good"]
    );
    expect_corrupt(
        store.read_all(ReadAll::after(before[0].position, 10)).await,
        1,
    );
    // The good event before them still reads.
    let good = store
        .read_stream(&s, ReadStream::forward().limit(1))
        .await
        .unwrap();
    assert_eq!(good[0].event_type, "Good");
}
