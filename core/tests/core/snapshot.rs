//! Snapshots: taken by policy, used on load (only the tail is read), and never a reason
//! to fail: unreadable, foreign-version or unavailable snapshots fall back to the stream.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde_json::json;
use tessera_core::{
    CommandHandler, EventData, MemoryStore, Snapshot, SnapshotPolicy, SnapshotStore, Version,
};

use crate::doubles::BrokenSnapshots;
use crate::tally::{stream, Cmd, Tally};

fn handler(store: &MemoryStore, every: u64) -> CommandHandler<Tally, MemoryStore> {
    CommandHandler::new(store.clone(), ())
        .with_snapshots(store.clone(), SnapshotPolicy::EveryNEvents(every))
}

async fn snapshot_of(store: &MemoryStore, id: &str) -> Option<Snapshot> {
    store.load_snapshot(&stream(id)).await.unwrap()
}

fn snapshot(id: &str, version: u64, schema_version: u32, data: serde_json::Value) -> Snapshot {
    Snapshot {
        stream_id: stream(id),
        version: Version(version),
        schema_version,
        data: EventData::to_json(&data).unwrap(),
        taken_at: SystemTime::now(),
    }
}

#[tokio::test]
async fn every_n_events_saves_a_snapshot() {
    let store = MemoryStore::new();
    let tally = handler(&store, 3);
    tally.handle("s1", &Cmd::Add(1)).await.unwrap();
    tally.handle("s1", &Cmd::Add(2)).await.unwrap();
    assert!(
        snapshot_of(&store, "s1").await.is_none(),
        "2 events: not due yet"
    );
    tally.handle("s1", &Cmd::Add(3)).await.unwrap();
    let snap = snapshot_of(&store, "s1").await.expect("due after 3 events");
    assert_eq!((snap.version, snap.schema_version), (Version(2), 1));
    let state: Tally = snap.data.decode().unwrap();
    assert_eq!((state.total, state.adds), (6, 3));

    tally.handle("s1", &Cmd::Add(4)).await.unwrap();
    tally.handle("s1", &Cmd::Add(5)).await.unwrap();
    assert_eq!(
        snapshot_of(&store, "s1").await.unwrap().version,
        Version(2),
        "2 since the last"
    );
    tally.handle("s1", &Cmd::AddTwice(1)).await.unwrap();
    let snap = snapshot_of(&store, "s1").await.unwrap();
    assert_eq!(snap.version, Version(6));
    assert_eq!(snap.data.decode::<Tally>().unwrap().total, 17);
}

#[tokio::test]
async fn load_starts_from_the_snapshot_and_reads_only_the_tail() {
    let store = MemoryStore::new();
    let tally = handler(&store, 3);
    for n in 1..=5 {
        tally.handle("s2", &Cmd::Add(n)).await.unwrap();
    }
    let loaded = tally.load("s2").await.unwrap();
    assert_eq!((loaded.state.total, loaded.version), (15, Some(Version(4))));
    assert_eq!(
        loaded.events_since_snapshot, 2,
        "snapshot at version 2, tail 3..=4"
    );

    // A snapshot that differs from the stream (but decodes) shows it is really used.
    let planted = json!({"total": 1000, "adds": 0, "label": "from the snapshot"});
    store
        .save_snapshot(snapshot("s2", 4, 1, planted))
        .await
        .unwrap();
    let loaded = tally.load("s2").await.unwrap();
    assert_eq!(
        (loaded.state.total, loaded.state.label.as_str()),
        (1000, "from the snapshot")
    );
    assert_eq!(loaded.events_since_snapshot, 0);
    tally.handle("s2", &Cmd::Add(1)).await.unwrap();
    let loaded = tally.load("s2").await.unwrap();
    assert_eq!(
        (loaded.state.total, loaded.events_since_snapshot),
        (1001, 1),
        "tail on top"
    );

    // Without snapshots the same stream folds from the start.
    let plain = CommandHandler::<Tally, _>::new(store.clone(), ());
    let full = plain.load("s2").await.unwrap();
    assert_eq!((full.state.total, full.events_since_snapshot), (16, 6));
}

#[tokio::test]
async fn an_unusable_snapshot_falls_back_to_the_full_stream() {
    let cases = [
        ("wrong JSON shape", 1, json!({"nope": true})),
        ("not an object", 1, json!([1, 2, 3])),
        (
            "wrong field type",
            1,
            json!({"total": "many", "adds": 1, "label": ""}),
        ),
        (
            "another state version",
            99,
            json!({"total": 1000, "adds": 0, "label": "old"}),
        ),
    ];
    for (what, schema_version, data) in cases {
        let store = MemoryStore::new();
        let tally = handler(&store, 3);
        for n in 1..=4 {
            tally.handle("s3", &Cmd::Add(n)).await.unwrap();
        }
        store
            .save_snapshot(snapshot("s3", 3, schema_version, data))
            .await
            .unwrap();
        let loaded = tally
            .load("s3")
            .await
            .unwrap_or_else(|e| panic!("{what}: a bad snapshot must not be an error: {e}"));
        assert_eq!(loaded.state.total, 10, "{what}: state from the full stream");
        assert_eq!(
            loaded.events_since_snapshot, 4,
            "{what}: the whole stream was read"
        );
        assert_eq!(loaded.version, Some(Version(3)), "{what}");

        let out = tally.handle("s3", &Cmd::Add(5)).await.unwrap();
        assert_eq!(out.version, Some(Version(4)), "{what}: commands still work");
        let snap = snapshot_of(&store, "s3").await.unwrap();
        assert_eq!(
            (snap.version, snap.schema_version),
            (Version(4), 1),
            "{what}: replaced"
        );
        assert_eq!(snap.data.decode::<Tally>().unwrap().total, 15, "{what}");
    }
}

#[tokio::test]
async fn an_unavailable_snapshot_store_is_not_an_error() {
    let store = MemoryStore::new();
    let broken = BrokenSnapshots::default();
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ())
        .with_snapshots(broken.clone(), SnapshotPolicy::EveryNEvents(1));
    for n in 1..=3 {
        tally.handle("s4", &Cmd::Add(n)).await.unwrap();
    }
    let loaded = tally.load("s4").await.unwrap();
    assert_eq!((loaded.state.total, loaded.events_since_snapshot), (6, 3));
    assert!(
        broken.calls.load(Ordering::SeqCst) >= 7,
        "loads and saves were attempted"
    );
}

#[tokio::test]
async fn never_takes_no_snapshot() {
    let store = MemoryStore::new();
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ())
        .with_snapshots(store.clone(), SnapshotPolicy::Never);
    for n in 1..=5 {
        tally.handle("s5", &Cmd::Add(n)).await.unwrap();
    }
    assert!(snapshot_of(&store, "s5").await.is_none());
}
