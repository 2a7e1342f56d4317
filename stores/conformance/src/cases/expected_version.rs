//! The expected-version matrix: every variant against a missing and an existing stream.

use tessera_core::{AppendOutcome, EventStore, ExpectedVersion, NewEvent, Position, Version};

use crate::support::{
    append_ok, assert_empty_store, assert_nothing_written, assert_same_event,
    assert_strictly_increasing, assert_wrong_version, evs, ids, read_stream, sid, version_of,
    within,
};

/// Appends to streams that do not exist: `Any` and `NoStream` create the stream at
/// version 0; `StreamExists` and `Exact(_)` fail with `WrongExpectedVersion { actual:
/// None }` and write nothing (not even an empty stream).
pub async fn expected_version_on_empty_stream<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let mut last_position = Position::START;

    for (name, expected) in [
        ("ev-any", ExpectedVersion::Any),
        ("ev-nostream", ExpectedVersion::NoStream),
    ] {
        let stream = sid(name);
        let batch = evs("Created", 0, 3);
        let out = append_ok(&store, &stream, expected, batch.clone()).await;
        let what = format!("{expected:?} on a missing stream");
        assert_eq!(out.first_version, Version(0), "{what}: first_version");
        assert_eq!(out.version, Version(2), "{what}: version");
        assert!(
            out.position > last_position,
            "{what}: position {} is not after the previous append's {last_position}",
            out.position
        );
        last_position = out.position;
        check_stored(&store, &stream, &batch, &[out], &what).await;
    }

    for (name, expected) in [
        ("ev-exists", ExpectedVersion::StreamExists),
        ("ev-exact0", ExpectedVersion::Exact(Version(0))),
        ("ev-exact7", ExpectedVersion::Exact(Version(7))),
    ] {
        let stream = sid(name);
        let what = format!("{expected:?} on a missing stream");
        let batch = evs("Created", 0, 2);
        let result = within(&what, store.append(&stream, expected, batch.clone())).await;
        assert_wrong_version(&result, &stream, expected, None, &what);
        assert_nothing_written(&store, &stream, None, &ids(&batch), &what).await;
        // The failed append left no trace: the stream can still be created.
        let out = append_ok(
            &store,
            &stream,
            ExpectedVersion::NoStream,
            evs("Created", 9, 1),
        )
        .await;
        assert_eq!(
            out.version,
            Version(0),
            "{what}: NoStream after the failure must create the stream at version 0"
        );
    }
}

/// Appends to a stream at version 2: `NoStream`, `Exact` of a lower, the next or a far
/// version fail with `actual: Some(2)` and write nothing; `Exact(2)`, `StreamExists` and
/// `Any` append at the next versions.
pub async fn expected_version_on_existing_stream<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let stream = sid("evx-1");
    let other = sid("evx-2");
    let mut sent: Vec<NewEvent> = evs("Step", 0, 3);
    let mut outcomes =
        vec![append_ok(&store, &stream, ExpectedVersion::NoStream, sent.clone()).await];
    // Another stream's events in between must not count toward this stream's version.
    append_ok(&store, &other, ExpectedVersion::NoStream, evs("Step", 0, 4)).await;

    let current = Some(Version(2));
    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(Version(0)),
        ExpectedVersion::Exact(Version(1)),
        ExpectedVersion::Exact(Version(3)),
        ExpectedVersion::Exact(Version(100)),
    ] {
        let what = format!("{expected:?} on a stream at version 2");
        let batch = evs("Step", 50, 2);
        let result = within(&what, store.append(&stream, expected, batch.clone())).await;
        assert_wrong_version(&result, &stream, expected, current, &what);
        assert_nothing_written(&store, &stream, current, &ids(&batch), &what).await;
    }

    let mut next = 3;
    for (expected, count) in [
        (ExpectedVersion::Exact(Version(2)), 1),
        (ExpectedVersion::StreamExists, 2),
        (ExpectedVersion::Any, 1),
    ] {
        let what = format!("{expected:?} on a stream at version {}", next - 1);
        let batch = evs("Step", next, count);
        let out = append_ok(&store, &stream, expected, batch.clone()).await;
        assert_eq!(out.first_version, Version(next), "{what}: first_version");
        assert_eq!(out.version, Version(next + count - 1), "{what}: version");
        let previous = outcomes.last().map_or(Position::START, |o| o.position);
        assert!(
            out.position > previous,
            "{what}: position {} is not after the previous append's {previous}",
            out.position
        );
        next += count;
        sent.extend(batch);
        outcomes.push(out);
    }
    check_stored(&store, &stream, &sent, &outcomes, "after the matrix").await;
    assert_eq!(version_of(&store, &other).await, Some(Version(3)));
}

/// The stream holds exactly `sent`, at versions 0.., and each outcome's position is the
/// recorded position of its last event.
async fn check_stored<S: EventStore>(
    store: &S,
    stream: &tessera_core::StreamId,
    sent: &[NewEvent],
    outcomes: &[AppendOutcome],
    what: &str,
) {
    let stored = read_stream(store, stream).await;
    assert_eq!(stored.len(), sent.len(), "{what}: events in {stream}");
    for (i, (r, s)) in stored.iter().zip(sent).enumerate() {
        assert_eq!(
            r.version,
            Version(i as u64),
            "{what}: versions must be 0.. with no hole"
        );
        assert_eq!(
            &r.stream_id, stream,
            "{what}: stream id of a recorded event"
        );
        assert_same_event(r, s, what);
    }
    assert_strictly_increasing(&stored, what);
    for out in outcomes {
        let last = usize::try_from(out.version.0).expect("small version");
        assert_eq!(
            stored[last].position, out.position,
            "{what}: AppendOutcome.position must be the position of the batch's last event"
        );
    }
    assert_eq!(
        version_of(store, stream).await,
        Some(Version(sent.len() as u64 - 1)),
        "{what}: stream_version"
    );
}
