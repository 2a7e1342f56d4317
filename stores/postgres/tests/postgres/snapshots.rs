//! Snapshots: load what was saved, never replace a newer one.

use std::time::SystemTime;

use tessera_core::{EventData, Snapshot, SnapshotStore, StreamId, Version};

use crate::common::TestDb;

fn snapshot(stream: &StreamId, version: u64, n: u32) -> Snapshot {
    Snapshot {
        stream_id: stream.clone(),
        version: Version(version),
        schema_version: 2,
        data: EventData::to_json(&serde_json::json!({ "n": n })).unwrap(),
        taken_at: SystemTime::now(),
    }
}

#[tokio::test]
async fn snapshots_keep_the_newest() {
    let db = TestDb::new("snapshots").await;
    let store = db.store().await;
    let s = StreamId::new("account-1").unwrap();
    assert_eq!(store.load_snapshot(&s).await.unwrap(), None);
    store.save_snapshot(snapshot(&s, 10, 1)).await.unwrap();
    store.save_snapshot(snapshot(&s, 5, 2)).await.unwrap();
    let got = store.load_snapshot(&s).await.unwrap().unwrap();
    assert_eq!((got.version, got.schema_version), (Version(10), 2));
    assert_eq!(got.data.to_value().unwrap(), serde_json::json!({ "n": 1 }));
    store.save_snapshot(snapshot(&s, 12, 3)).await.unwrap();
    let got = store.load_snapshot(&s).await.unwrap().unwrap();
    assert_eq!(got.version, Version(12));
    assert_eq!(got.data.to_value().unwrap(), serde_json::json!({ "n": 3 }));
}
