//! Concurrent writers on many streams: the global log stays gap-free and exactly-once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tessera_core::{
    AppendOutcome, EventFilter, EventId, EventStore, ExpectedVersion, NewEvent, Position, StreamId,
    Version,
};
use tokio::sync::Barrier;

use crate::support::{
    assert_empty_store, assert_same_event, assert_unique, evs, join, ok, read_all_pages, sid,
    wait_visible, within,
};

/// Concurrent writers, one stream each.
const WRITERS: usize = 16;
/// Appends per writer.
const APPENDS_PER_WRITER: u64 = 20;

/// 16 writers, each on its own stream, append batches of 1 to 3 events concurrently (half
/// with exact expectations, half with `Any`). The global log then holds every event
/// exactly once with strictly increasing positions, each stream's versions are 0..n in
/// log order, and every append's outcome position is where its last event is recorded.
pub async fn concurrent_writers_many_streams<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, barrier) = (store.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                let stream = sid(&format!("many-{w}"));
                barrier.wait().await;
                let mut done: Vec<(Vec<NewEvent>, AppendOutcome)> = Vec::new();
                let mut current = None;
                for i in 0..APPENDS_PER_WRITER {
                    let batch = evs("Wrote", i, 1 + (i + w as u64) % 3);
                    let expected = if w % 2 == 0 {
                        ExpectedVersion::from_current(current)
                    } else {
                        ExpectedVersion::Any
                    };
                    let what = format!("writer {w} append {i} with {expected:?}");
                    let out = ok(&what, store.append(&stream, expected, batch.clone()).await);
                    current = Some(out.version);
                    done.push((batch, out));
                }
                (stream, done)
            })
        })
        .collect();
    let mut sent: HashMap<EventId, (StreamId, NewEvent)> = HashMap::new();
    let mut outcomes: Vec<(StreamId, AppendOutcome)> = Vec::new();
    for t in tasks {
        let (stream, done) = join(t, "a writer").await;
        for (batch, out) in done {
            for e in batch {
                sent.insert(e.id, (stream.clone(), e));
            }
            outcomes.push((stream.clone(), out));
        }
    }
    let last = outcomes
        .iter()
        .map(|(_, o)| o.position)
        .max()
        .expect("appends happened");
    wait_visible(&store, last).await;
    assert_eq!(
        ok("head", within("head", store.head()).await),
        Some(last),
        "head must be the highest position any append returned"
    );

    let log = read_all_pages(&store, Position::START, &EventFilter::all(), 37).await;
    assert_unique(&log, "read_all after concurrent writers");
    assert_eq!(
        log.len(),
        sent.len(),
        "read_all must return every appended event"
    );
    let mut next_version: HashMap<StreamId, u64> = HashMap::new();
    let mut by_place: HashMap<(StreamId, Version), Position> = HashMap::new();
    for r in &log {
        let (stream, e) = sent
            .get(&r.id)
            .unwrap_or_else(|| panic!("read_all returned an event nobody appended: {r:?}"));
        assert_eq!(
            &r.stream_id, stream,
            "event {} is in the wrong stream",
            r.id
        );
        assert_same_event(r, e, "read_all after concurrent writers");
        let next = next_version.entry(stream.clone()).or_insert(0);
        assert_eq!(
            r.version.0, *next,
            "stream {stream}: versions in log order must be 0, 1, 2... with no hole"
        );
        *next += 1;
        by_place.insert((stream.clone(), r.version), r.position);
    }
    let streams: HashSet<&StreamId> = outcomes.iter().map(|(s, _)| s).collect();
    assert_eq!(
        next_version.len(),
        streams.len(),
        "every stream appears in the log"
    );
    for (stream, out) in &outcomes {
        assert_eq!(
            by_place.get(&(stream.clone(), out.version)),
            Some(&out.position),
            "{stream}: the outcome position must be the recorded position of the batch's last event"
        );
    }
}
