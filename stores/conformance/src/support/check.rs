//! Assertions on recorded events and store errors.

use std::collections::HashSet;
use std::fmt::Debug;

use serde_json::Value;
use tessera_core::{
    EventId, EventReader, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamId, Version,
};

use super::{ok, read_stream, version_of, within};

/// Panics unless positions strictly increase.
pub(crate) fn assert_strictly_increasing(events: &[RecordedEvent], what: &str) {
    for pair in events.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "{what}: positions must strictly increase, but {}@{} at {} is followed by {}@{} at {}",
            pair[0].stream_id,
            pair[0].version,
            pair[0].position,
            pair[1].stream_id,
            pair[1].version,
            pair[1].position
        );
    }
}

/// Panics unless every event id appears once.
pub(crate) fn assert_unique(events: &[RecordedEvent], what: &str) {
    let mut seen = HashSet::with_capacity(events.len());
    for e in events {
        assert!(
            seen.insert((e.stream_id.clone(), e.id)),
            "{what}: event {} of {} delivered twice",
            e.id,
            e.stream_id
        );
    }
}

/// Panics unless `result` is `WrongExpectedVersion` with exactly these fields.
#[track_caller]
pub(crate) fn assert_wrong_version<T: Debug>(
    result: &Result<T, StoreError>,
    stream: &StreamId,
    expected: ExpectedVersion,
    actual: Option<Version>,
    what: &str,
) {
    match result {
        Err(StoreError::WrongExpectedVersion {
            stream: s,
            expected: e,
            actual: a,
        }) => {
            assert_eq!(s, stream, "{what}: WrongExpectedVersion names the wrong stream");
            assert_eq!(*e, expected, "{what}: WrongExpectedVersion.expected");
            assert_eq!(*a, actual, "{what}: WrongExpectedVersion.actual");
        }
        other => panic!(
            "{what}: expected WrongExpectedVersion {{ expected: {expected:?}, actual: {actual:?} }}, got {other:?}"
        ),
    }
}

/// Panics unless the stream still has `version` and `len` events, and none of `absent` ids.
pub(crate) async fn assert_nothing_written<S: EventReader>(
    store: &S,
    stream: &StreamId,
    version: Option<Version>,
    absent: &[EventId],
    what: &str,
) {
    assert_eq!(
        version_of(store, stream).await,
        version,
        "{what}: a failed append changed the stream version"
    );
    let stored = read_stream(store, stream).await;
    let expected_len = version.map_or(0, |v| v.0 + 1);
    assert_eq!(
        stored.len() as u64,
        expected_len,
        "{what}: a failed append changed the number of events in the stream"
    );
    for id in absent {
        let found = ok(
            "find_event",
            within("find_event", store.find_event(stream, *id)).await,
        );
        assert!(
            found.is_none(),
            "{what}: event {id} of a failed append was stored: {found:?}"
        );
    }
}

/// Panics unless `recorded` holds what `sent` carried (data compared as parsed JSON).
#[track_caller]
pub(crate) fn assert_same_event(recorded: &RecordedEvent, sent: &NewEvent, what: &str) {
    assert_eq!(recorded.id, sent.id, "{what}: event id");
    assert_eq!(recorded.event_type, sent.event_type, "{what}: event type");
    assert_eq!(
        recorded.schema_version, sent.schema_version,
        "{what}: schema version"
    );
    assert_eq!(
        json_of(recorded),
        sent.data
            .to_value()
            .unwrap_or_else(|e| panic!("{what}: sent data is not JSON: {e}")),
        "{what}: data differs (compared as parsed JSON)"
    );
    assert_eq!(recorded.metadata, sent.metadata, "{what}: metadata");
}

/// The recorded event's data as a JSON value.
#[track_caller]
pub(crate) fn json_of(recorded: &RecordedEvent) -> Value {
    recorded.data.to_value().unwrap_or_else(|e| {
        panic!(
            "stored data of {}@{} is not JSON: {e}",
            recorded.stream_id, recorded.version
        )
    })
}

/// Panics unless `result` is `InvalidInput`.
#[track_caller]
pub(crate) fn assert_invalid_input<T: Debug>(result: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::InvalidInput(_))),
        "{what}: expected InvalidInput, got {result:?}"
    );
}
