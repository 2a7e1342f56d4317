//! Many concurrent writers with a subscriber running throughout.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tessera_core::{
    EventAppender, EventFilter, EventReader, ExpectedVersion, Position, RecordedEvent, StoreError,
    StreamId,
};
use tessera_postgres::PostgresStore;

use crate::common::{event, raw_client, take, TestDb};

const WRITERS: usize = 32;
const APPENDS_PER_WRITER: usize = 100;
const HOT_STREAMS: usize = 4;

/// One writer: appends to hot streams shared by everyone and to cold streams of its
/// own, reloading the version after a conflict. Returns how many events it appended.
async fn writer(store: PostgresStore, w: usize) -> usize {
    let mut appended = 0;
    let mut cold: HashMap<StreamId, Option<tessera_core::Version>> = HashMap::new();
    for i in 0..APPENDS_PER_WRITER {
        let n = 1 + fastrand::usize(..3);
        let batch: Vec<_> = (0..n).map(|_| event("Load")).collect();
        if i % 3 == 0 {
            let stream = StreamId::new(format!("hot-{}", fastrand::usize(..HOT_STREAMS))).unwrap();
            loop {
                let current = store.stream_version(&stream).await.unwrap();
                match store
                    .append(
                        &stream,
                        ExpectedVersion::from_current(current),
                        batch.clone(),
                    )
                    .await
                {
                    Ok(_) => break,
                    Err(StoreError::WrongExpectedVersion { .. }) => tokio::task::yield_now().await,
                    Err(e) => panic!("append failed: {e}"),
                }
            }
        } else {
            let stream = StreamId::new(format!("cold-{w}-{}", i % 7)).unwrap();
            let current = cold.get(&stream).copied().flatten();
            let out = store
                .append(&stream, ExpectedVersion::from_current(current), batch)
                .await
                .unwrap_or_else(|e| panic!("append to an own stream failed: {e}"));
            cold.insert(stream, Some(out.version));
        }
        appended += n;
    }
    appended
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_a_subscriber_agree_with_the_table() {
    let db = TestDb::new("load").await;
    let store = db.builder().pool_size(12).build().await.unwrap();
    let mut sub = store.subscribe(Position::START, EventFilter::all());
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(store.clone(), w)))
        .collect();
    // Read while the writers run, so delivery interleaves with appends.
    let reader = tokio::spawn(async move {
        let mut got: Vec<RecordedEvent> = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(3), sub.next()).await {
                Ok(Some(Ok(e))) => got.push(e),
                Ok(other) => panic!("subscription ended: {other:?}"),
                Err(_) => return (got, sub),
            }
        }
    });
    let mut total = 0;
    for w in writers {
        total += w.await.unwrap();
    }
    let (mut delivered, mut sub) = reader.await.unwrap();
    if delivered.len() < total {
        delivered.extend(take(&mut sub, total - delivered.len(), Duration::from_secs(10)).await);
    }
    assert_eq!(delivered.len(), total, "delivered every appended event");

    let raw = raw_client().await;
    let rows = raw
        .query(
            &format!(
                "SELECT event_id FROM {} ORDER BY tx_id, global_position",
                db.table("events")
            ),
            &[],
        )
        .await
        .unwrap();
    let table: Vec<uuid::Uuid> = rows.iter().map(|r| r.get(0)).collect();
    let ids: Vec<uuid::Uuid> = delivered.iter().map(|e| e.id.0).collect();
    assert_eq!(ids, table, "delivered exactly the table, in its order");
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "no duplicate"
    );
    assert!(delivered.windows(2).all(|w| w[0].position < w[1].position));
    let mut next: HashMap<&StreamId, u64> = HashMap::new();
    for e in &delivered {
        let expected = next.entry(&e.stream_id).or_insert(0);
        assert_eq!(e.version.0, *expected, "no hole in {}", e.stream_id);
        *expected += 1;
    }
    for (stream, n) in next {
        assert_eq!(
            store.stream_version(stream).await.unwrap().map(|v| v.0 + 1),
            Some(n)
        );
    }
}
