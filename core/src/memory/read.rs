//! Reads of the in-memory log.

use super::State;
use crate::{
    Direction, EventFilter, Position, ReadAll, ReadStream, RecordedEvent, StoreError, StreamId,
};

pub(super) fn check_limit(limit: usize) -> Result<(), StoreError> {
    if limit == 0 {
        return Err(StoreError::InvalidInput(
            "read limit must be at least 1".into(),
        ));
    }
    Ok(())
}

pub(super) fn stream(state: &State, stream: &StreamId, read: ReadStream) -> Vec<RecordedEvent> {
    let Some(s) = state.streams.get(stream) else {
        return Vec::new();
    };
    let len = s.entries.len();
    let entries: Box<dyn Iterator<Item = &usize>> = match read.direction {
        Direction::Forward => {
            let from = read
                .from
                .map_or(0, |v| usize::try_from(v.0).unwrap_or(usize::MAX));
            Box::new(s.entries.iter().skip(from))
        }
        Direction::Backward => {
            let last = read.from.map_or(len, |v| {
                usize::try_from(v.0).map_or(len, |v| v.saturating_add(1).min(len))
            });
            Box::new(s.entries[..last].iter().rev())
        }
    };
    entries
        .take(read.limit)
        .map(|&i| state.log[i].clone())
        .collect()
}

pub(super) fn all(state: &State, read: &ReadAll) -> Vec<RecordedEvent> {
    let start = state.log.partition_point(|e| e.position <= read.after);
    let candidates = state.log[start..].iter();
    if read.filter.is_all() {
        candidates.take(read.limit).cloned().collect()
    } else {
        candidates
            .filter(|e| read.filter.matches(e))
            .take(read.limit)
            .cloned()
            .collect()
    }
}

pub(super) fn count(state: &State, after: Position, up_to: Position, filter: &EventFilter) -> u64 {
    let start = state.log.partition_point(|e| e.position <= after);
    let end = state
        .log
        .partition_point(|e| e.position <= up_to)
        .max(start);
    let events = &state.log[start..end];
    if filter.is_all() {
        events.len() as u64
    } else {
        events.iter().filter(|e| filter.matches(e)).count() as u64
    }
}
