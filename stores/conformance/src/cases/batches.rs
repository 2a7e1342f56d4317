//! Batch-level rules: batches rejected whatever the stream holds, and large batches.

use tessera_core::{
    EventStore, ExpectedVersion, Position, ReadAll, ReadStream, StoreError, Version,
};

use crate::support::{
    append_ok, assert_empty_store, assert_nothing_written, assert_same_event,
    assert_strictly_increasing, ev, evs, ok, read_all, read_stream, sid, wait_visible, within,
};

/// Batches that are wrong whatever the stream holds: the same id twice
/// (`DuplicateIdInBatch`) and no event at all (`EmptyAppend`), on a missing and on an
/// existing stream, with any expectation; nothing written.
pub async fn rejected_batches<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let missing = sid("bad-1");
    let existing = sid("bad-2");
    append_ok(&store, &existing, ExpectedVersion::NoStream, evs("E", 0, 2)).await;

    for (stream, current) in [(&missing, None), (&existing, Some(Version(1)))] {
        for expected in [
            ExpectedVersion::Any,
            ExpectedVersion::from_current(current),
            ExpectedVersion::Exact(Version(40)),
        ] {
            let (x, y) = (ev("E", 1), ev("E", 2));
            let twice = vec![x.clone(), y.clone(), x.clone().with_schema_version(2)];
            let what = format!("same id twice in a batch to {stream} with {expected:?}");
            match within(&what, store.append(stream, expected, twice)).await {
                Err(StoreError::DuplicateIdInBatch {
                    stream: s,
                    event_id,
                }) => {
                    assert_eq!(&s, stream, "{what}: DuplicateIdInBatch.stream");
                    assert_eq!(event_id, x.id, "{what}: DuplicateIdInBatch.event_id");
                }
                other => panic!("{what}: expected DuplicateIdInBatch, got {other:?}"),
            }
            assert_nothing_written(&store, stream, current, &[x.id, y.id], &what).await;

            let what = format!("empty batch to {stream} with {expected:?}");
            match within(&what, store.append(stream, expected, Vec::new())).await {
                Err(StoreError::EmptyAppend { stream: s }) => {
                    assert_eq!(&s, stream, "{what}: EmptyAppend.stream");
                }
                other => panic!("{what}: expected EmptyAppend, got {other:?}"),
            }
            assert_nothing_written(&store, stream, current, &[], &what).await;
        }
    }
}

/// One append of 1000 events lands whole at versions 0..999 with increasing positions,
/// reads back in both directions, repeats idempotently and is followed by another.
pub async fn large_batch<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let stream = sid("batch-1");
    let batch = evs("Bulk", 0, 1000);
    let out = append_ok(&store, &stream, ExpectedVersion::NoStream, batch.clone()).await;
    assert_eq!((out.first_version, out.version), (Version(0), Version(999)));
    let again = append_ok(&store, &stream, ExpectedVersion::NoStream, batch.clone()).await;
    assert_eq!(
        again, out,
        "repeating a 1000-event batch returns the original outcome"
    );
    let next = evs("Bulk", 1000, 1000);
    let out2 = append_ok(
        &store,
        &stream,
        ExpectedVersion::Exact(Version(999)),
        next.clone(),
    )
    .await;
    assert_eq!(
        (out2.first_version, out2.version),
        (Version(1000), Version(1999))
    );
    wait_visible(&store, out2.position).await;

    let stored = read_stream(&store, &stream).await;
    assert_eq!(stored.len(), 2000, "events stored");
    assert_strictly_increasing(&stored, "a large batch");
    for (i, (r, s)) in stored.iter().zip(batch.iter().chain(&next)).enumerate() {
        assert_eq!(r.version, Version(i as u64), "large batch: version");
        assert_same_event(r, s, "large batch");
    }
    assert_eq!(
        stored[999].position, out.position,
        "first batch outcome position"
    );
    assert_eq!(
        stored[1999].position, out2.position,
        "second batch outcome position"
    );
    let back = ok(
        "read_stream backward",
        store
            .read_stream(&stream, ReadStream::backward().limit(10))
            .await,
    );
    let versions: Vec<u64> = back.iter().map(|e| e.version.0).collect();
    assert_eq!(
        versions,
        (1990..2000).rev().collect::<Vec<_>>(),
        "backward read of a large stream"
    );
    let all = read_all(&store, ReadAll::after(Position::START, 5000)).await;
    assert_eq!(
        all, stored,
        "read_all of a store holding one stream equals read_stream"
    );
}
