//! Helpers shared by the cases: event builders, bounded store calls, assertions.

mod check;
mod ops;
mod optional;
mod sub;

use serde_json::json;
use tessera_core::{EventId, NewEvent, StreamId};

pub(crate) use check::{
    assert_invalid_input, assert_nothing_written, assert_same_event, assert_strictly_increasing,
    assert_unique, assert_wrong_version, json_of,
};
pub(crate) use ops::{
    append_ok, assert_empty_store, join, ok, read_all, read_all_pages, read_stream, version_of,
    wait_visible, within,
};
pub(crate) use optional::{answer, first_answer};
pub(crate) use sub::{assert_quiet, collect, next_event};

/// A valid stream id (panics on a typo in a case).
pub(crate) fn sid(value: &str) -> StreamId {
    StreamId::new(value).unwrap_or_else(|e| panic!("test stream id {value:?} is invalid: {e}"))
}

/// An event of type `event_type` with data `{"n": n}` and a random id.
pub(crate) fn ev(event_type: &str, n: u64) -> NewEvent {
    NewEvent::json(event_type, &json!({ "n": n })).expect("a JSON object serializes")
}

/// `count` events of type `event_type` numbered from `first`.
pub(crate) fn evs(event_type: &str, first: u64, count: u64) -> Vec<NewEvent> {
    (first..first + count).map(|n| ev(event_type, n)).collect()
}

/// The ids of `events`.
pub(crate) fn ids(events: &[NewEvent]) -> Vec<EventId> {
    events.iter().map(|e| e.id).collect()
}
