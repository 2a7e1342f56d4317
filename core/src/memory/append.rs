//! Append with the idempotency rules, under the store's lock.

use std::time::SystemTime;

use super::{position_of, State, StreamState};
use crate::{
    AppendOutcome, ExpectedVersion, Landing, NewEvent, RecordedEvent, StoreError, StreamId, Version,
};

pub(super) fn append_locked(
    state: &mut State,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
    now: SystemTime,
) -> Result<(AppendOutcome, Landing), StoreError> {
    let existing = state.streams.get(stream);
    let current = existing.and_then(StreamState::current);
    if let Some(s) = existing {
        if let Some(outcome) = repeat_of_stored(s, expected, current, &events) {
            return Ok((outcome, Landing::Repeat));
        }
        if expected.is_met_by(current) {
            if let Some((id, version)) = events
                .iter()
                .find_map(|e| s.version_of(e.id).map(|v| (e.id, v)))
            {
                return Err(StoreError::DuplicateEventId {
                    stream: stream.clone(),
                    event_id: id,
                    version,
                });
            }
        }
    }
    if !expected.is_met_by(current) {
        return Err(StoreError::WrongExpectedVersion {
            stream: stream.clone(),
            expected,
            actual: current,
        });
    }
    let first_version = current.map_or(Version::FIRST, Version::next);
    let first_index = state.log.len();
    let s = state.streams.entry(stream.clone()).or_default();
    let n = events.len();
    s.entries.reserve(n);
    state.log.reserve(n);
    for (i, e) in events.into_iter().enumerate() {
        let index = first_index + i;
        let version = Version(first_version.0 + i as u64);
        s.push(index, e.id);
        state.log.push(RecordedEvent {
            id: e.id,
            stream_id: stream.clone(),
            version,
            position: position_of(index),
            event_type: e.event_type,
            schema_version: e.schema_version,
            data: e.data,
            metadata: e.metadata,
            recorded_at: now,
        });
    }
    Ok((
        AppendOutcome {
            first_version,
            version: Version(first_version.0 + n as u64 - 1),
            position: position_of(first_index + n - 1),
        },
        Landing::Written,
    ))
}

/// The original outcome when `events` are exactly events already stored where the
/// expectation puts them (anywhere, for `Any` and `StreamExists`).
fn repeat_of_stored(
    s: &StreamState,
    expected: ExpectedVersion,
    current: Option<Version>,
    events: &[NewEvent],
) -> Option<AppendOutcome> {
    let start = match expected.first_version() {
        // Already-current expectations have nothing stored where the batch would go.
        Some(v) if current.is_some_and(|c| v <= c) => v,
        Some(_) => return None,
        None => s.version_of(events[0].id)?,
    };
    let mut last = None;
    for (i, e) in events.iter().enumerate() {
        let version = Version(start.0 + i as u64);
        if s.version_of(e.id) != Some(version) {
            return None;
        }
        last = s.index_of(version);
    }
    Some(AppendOutcome {
        first_version: start,
        version: Version(start.0 + events.len() as u64 - 1),
        position: position_of(last?),
    })
}
