//! Browsing the in-memory store: categories, streams, correlated events.
//!
//! The streams live in a hash map, so listing them or their categories visits every
//! stream and sorts what passes: O(streams) per page, fine for the store's sizes. The
//! log is in position order, so a correlation search scans it from `after`.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::{State, StreamState};
use crate::{category_of, ListStreams, Position, RecordedEvent, StreamInfo};

pub(super) fn categories(state: &State, after: Option<&str>, limit: usize) -> Vec<String> {
    let categories: BTreeSet<&str> = state
        .streams
        .keys()
        .map(|s| category_of(s.as_str()))
        .filter(|c| after.is_none_or(|after| *c > after))
        .collect();
    categories
        .into_iter()
        .take(limit)
        .map(str::to_owned)
        .collect()
}

pub(super) fn streams(state: &State, list: &ListStreams) -> Vec<StreamInfo> {
    let mut page: Vec<_> = state
        .streams
        .iter()
        .filter(|(id, _)| list.matches(id))
        .collect();
    if page.len() > list.limit {
        // The `limit` lowest ids, unordered, then sorted: O(n + limit log limit).
        page.select_nth_unstable_by(list.limit, |a, b| a.0.cmp(b.0));
        page.truncate(list.limit);
    }
    page.sort_unstable_by(|a, b| a.0.cmp(b.0));
    page.into_iter()
        .filter_map(|(id, s)| {
            StreamState::current(s).map(|version| StreamInfo {
                stream_id: id.clone(),
                version,
            })
        })
        .collect()
}

pub(super) fn correlated(
    state: &State,
    correlation_id: Uuid,
    after: Position,
    limit: usize,
) -> Vec<RecordedEvent> {
    let start = state.log.partition_point(|e| e.position <= after);
    state.log[start..]
        .iter()
        .filter(|e| e.metadata.correlation_id == Some(correlation_id))
        .take(limit)
        .cloned()
        .collect()
}
