//! Store calls with bounded waits and the checks every call of the kind gets.

use std::future::Future;
use std::time::Duration;

use tessera_core::{
    AppendOutcome, EventFilter, EventReader, EventStore, ExpectedVersion, NewEvent, Position,
    ReadAll, ReadStream, RecordedEvent, StoreError, StreamId, Version,
};

use super::assert_strictly_increasing;
use crate::WAIT;

/// Awaits `fut` for at most [`WAIT`], panicking with `what` when it takes longer.
pub(crate) async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for: {what}"))
}

/// Unwraps a store result, naming the operation on failure.
pub(crate) fn ok<T>(what: &str, result: Result<T, StoreError>) -> T {
    result.unwrap_or_else(|e| panic!("{what}: expected success, the store failed: {e:?}"))
}

/// Appends and expects success.
pub(crate) async fn append_ok<S: EventStore>(
    store: &S,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> AppendOutcome {
    let what = format!("append to {stream} with expected version {expected:?}");
    ok(
        &what,
        within(&what, store.append(stream, expected, events)).await,
    )
}

/// Panics unless the store's log is empty, as a factory must make it.
pub(crate) async fn assert_empty_store<S: EventReader>(store: &S) {
    let head = ok("head of a fresh store", within("head", store.head()).await);
    assert_eq!(
        head, None,
        "StoreFactory::create must return an empty store, but its head is {head:?}"
    );
}

/// Waits until every event up to `position` is visible to readers (`head() >= position`).
pub(crate) async fn wait_visible<S: EventReader>(store: &S, position: Position) {
    let what = format!("head() to reach the last appended position {position}");
    within(&what, async {
        loop {
            let head = ok("head", store.head().await);
            if head.is_some_and(|h| h >= position) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// The stream's events, oldest first.
pub(crate) async fn read_stream<S: EventReader>(
    store: &S,
    stream: &StreamId,
) -> Vec<RecordedEvent> {
    let what = format!("read_stream({stream}) forward");
    ok(
        &what,
        within(&what, store.read_stream(stream, ReadStream::forward())).await,
    )
}

/// The stream's version.
pub(crate) async fn version_of<S: EventReader>(store: &S, stream: &StreamId) -> Option<Version> {
    let what = format!("stream_version({stream})");
    ok(&what, within(&what, store.stream_version(stream)).await)
}

/// One `read_all` call.
pub(crate) async fn read_all<S: EventReader>(store: &S, read: ReadAll) -> Vec<RecordedEvent> {
    let what = format!("read_all({read:?})");
    let events = ok(&what, within(&what, store.read_all(read.clone())).await);
    assert!(
        events.len() <= read.limit,
        "{what} returned {} events, more than the limit",
        events.len()
    );
    assert_strictly_increasing(&events, &what);
    if let Some(first) = events.first() {
        assert!(
            first.position > read.after,
            "{what} returned position {} which is not after {}",
            first.position,
            read.after
        );
    }
    for e in &events {
        assert!(
            read.filter.matches(e),
            "{what} returned {}@{} of type {:?}, which the filter excludes",
            e.stream_id,
            e.version,
            e.event_type
        );
    }
    events
}

/// The whole global log after `after` that passes `filter`, read in pages of `page`.
pub(crate) async fn read_all_pages<S: EventReader>(
    store: &S,
    after: Position,
    filter: &EventFilter,
    page: usize,
) -> Vec<RecordedEvent> {
    let mut out: Vec<RecordedEvent> = Vec::new();
    let mut after = after;
    loop {
        let batch = read_all(store, ReadAll::after(after, page).filter(filter.clone())).await;
        let Some(last) = batch.last() else { break };
        after = last.position;
        let full = batch.len() == page;
        out.extend(batch);
        if !full {
            break;
        }
    }
    assert_strictly_increasing(&out, "read_all in pages");
    out
}

/// Waits for a spawned task, failing the test if it panicked or hangs.
pub(crate) async fn join<T>(handle: tokio::task::JoinHandle<T>, what: &str) -> T {
    match within(what, handle).await {
        Ok(v) => v,
        Err(e) => panic!("{what}: task failed: {e}"),
    }
}
