//! Catch-up subscriptions: exactly once, in order, across the catch-up/live hand-over.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tessera_core::{EventFilter, EventId, EventStore, ExpectedVersion, Position, RecordedEvent};

use crate::support::{
    append_ok, assert_empty_store, assert_quiet, collect, evs, join, next_event, read_all_pages,
    sid, wait_visible, within,
};

const WRITERS: u64 = 16;
const APPENDS_PER_WRITER: u64 = 15;

/// Panics unless `got` is exactly `log` (same events, same order).
fn assert_same_order(got: &[RecordedEvent], log: &[RecordedEvent], what: &str) {
    let got: Vec<(EventId, Position)> = got.iter().map(|e| (e.id, e.position)).collect();
    let log: Vec<(EventId, Position)> = log.iter().map(|e| (e.id, e.position)).collect();
    assert_eq!(
        got, log,
        "{what}: the subscription must deliver the log in order"
    );
}

/// Subscribers started before, during and after a burst of 16 concurrent writers each
/// receive every event exactly once, in strictly increasing position order, and nothing
/// else.
pub async fn subscribers_see_a_concurrent_burst_once<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let mut before = store.subscribe(Position::START, EventFilter::all());
    let appended = Arc::new(AtomicUsize::new(0));
    let sizes = |w: u64, i: u64| 1 + (w + i) % 2;
    let total: u64 = (0..WRITERS)
        .flat_map(|w| (0..APPENDS_PER_WRITER).map(move |i| sizes(w, i)))
        .sum();
    let total = usize::try_from(total).expect("small");
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, appended) = (store.clone(), Arc::clone(&appended));
            tokio::spawn(async move {
                let stream = sid(&format!("burst-{w}"));
                let mut ids = Vec::new();
                for i in 0..APPENDS_PER_WRITER {
                    let batch = evs("Burst", i, sizes(w, i));
                    ids.extend(batch.iter().map(|e| e.id));
                    let n = batch.len();
                    append_ok(&store, &stream, ExpectedVersion::Any, batch).await;
                    appended.fetch_add(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                ids
            })
        })
        .collect();
    within("a third of the burst to be appended", async {
        while appended.load(Ordering::SeqCst) < total / 3 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    let mut during = store.subscribe(Position::START, EventFilter::all());
    let mut sent: HashSet<EventId> = HashSet::new();
    for w in writers {
        sent.extend(join(w, "a burst writer").await);
    }
    let mut after = store.subscribe(Position::START, EventFilter::all());

    let head = store
        .head()
        .await
        .ok()
        .flatten()
        .expect("the burst wrote events");
    wait_visible(&store, head).await;
    let log = read_all_pages(&store, Position::START, &EventFilter::all(), 500).await;
    assert_eq!(log.len(), total, "read_all after the burst");
    for (name, sub) in [
        ("subscriber started before the burst", &mut before),
        ("subscriber started during the burst", &mut during),
        ("subscriber started after the burst", &mut after),
    ] {
        let got = collect(sub, total, name).await;
        let ids: HashSet<EventId> = got.iter().map(|e| e.id).collect();
        assert!(
            ids == sent,
            "{name}: did not receive exactly the appended events"
        );
        assert_same_order(&got, &log, name);
        assert_quiet(sub, name).await;
    }
}

/// A subscription from the start over existing events keeps going live: events appended
/// while it is still catching up and after it caught up all arrive once, in order.
pub async fn subscription_hands_over_from_catch_up_to_live<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let (one, two) = (sid("hand-1"), sid("hand-2"));
    for i in 0..5 {
        append_ok(&store, &one, ExpectedVersion::Any, evs("Old", i * 2, 1)).await;
        append_ok(&store, &two, ExpectedVersion::Any, evs("Old", i * 2 + 1, 1)).await;
    }
    let mut sub = store.subscribe(Position::START, EventFilter::all());
    let mut got = collect(&mut sub, 5, "catch-up, first half").await;
    // Appended while the subscription is still catching up.
    append_ok(&store, &one, ExpectedVersion::Any, evs("Mid", 0, 3)).await;
    append_ok(&store, &two, ExpectedVersion::Any, evs("Mid", 3, 7)).await;
    got.extend(collect(&mut sub, 15, "catch-up, rest").await);
    // Appended once it is live.
    for i in 0..4 {
        append_ok(&store, &two, ExpectedVersion::Any, evs("Live", i, 1)).await;
        got.push(next_event(&mut sub, "a live event").await);
    }
    let last = got.last().expect("events").position;
    wait_visible(&store, last).await;
    let log = read_all_pages(&store, Position::START, &EventFilter::all(), 100).await;
    assert_eq!(log.len(), 24, "read_all after the hand-over");
    assert_same_order(&got, &log, "catch-up then live");
    assert_quiet(&mut sub, "after the hand-over").await;
}
