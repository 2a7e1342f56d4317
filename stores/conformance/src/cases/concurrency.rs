//! Concurrent writers: optimistic concurrency on one stream, a gap-free log across many.

use std::collections::BTreeMap;
use std::sync::Arc;

use tessera_core::{
    AppendOutcome, EventStore, ExpectedVersion, NewEvent, StoreError, StreamId, Version,
};
use tokio::sync::Barrier;

use crate::support::{
    assert_empty_store, assert_same_event, assert_wrong_version, evs, join, ok, read_stream, sid,
    version_of,
};

/// Writers racing in each round.
const WRITERS: usize = 16;
/// Rounds of the one-stream race.
const ROUNDS: usize = 6;

type Attempt = (Vec<NewEvent>, Result<AppendOutcome, StoreError>);

/// Starts `WRITERS` tasks that append their batch to `stream` at the same moment.
async fn race<S: EventStore>(
    store: &S,
    stream: &StreamId,
    expected: ExpectedVersion,
    round: usize,
) -> Vec<Attempt> {
    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, stream, barrier) = (store.clone(), stream.clone(), Arc::clone(&barrier));
            let batch = evs("Raced", (round * WRITERS + w) as u64, 2);
            tokio::spawn(async move {
                barrier.wait().await;
                let result = store.append(&stream, expected, batch.clone()).await;
                (batch, result)
            })
        })
        .collect();
    let mut attempts = Vec::with_capacity(WRITERS);
    for t in tasks {
        attempts.push(join(t, "a racing writer").await);
    }
    attempts
}

/// In each of several rounds, 16 writers append two events each to one stream with the
/// same expected version: exactly one wins, the others get `WrongExpectedVersion` with the
/// winner's version as `actual`, and the stream holds exactly the winners' events. Then
/// 16 writers with `Any` all land, each batch whole and contiguous, with no hole.
pub async fn concurrent_writers_one_stream<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let stream = sid("race-1");
    let mut winners: Vec<Vec<NewEvent>> = Vec::new();
    for round in 0..ROUNDS {
        let current = version_of(&store, &stream).await;
        let expected = ExpectedVersion::from_current(current);
        let attempts = race(&store, &stream, expected, round).await;
        let what = format!("round {round} ({WRITERS} writers, expected {expected:?})");
        let won: Vec<&Attempt> = attempts.iter().filter(|(_, r)| r.is_ok()).collect();
        assert_eq!(
            won.len(),
            1,
            "{what}: exactly one writer must win, {} did",
            won.len()
        );
        let (batch, result) = won[0];
        let out = result.as_ref().expect("the winner succeeded");
        let first = current.map_or(Version(0), Version::next);
        assert_eq!(
            (out.first_version, out.version),
            (first, Version(first.0 + 1)),
            "{what}: the winner's versions"
        );
        for (lost, result) in attempts.iter().filter(|(_, r)| r.is_err()) {
            assert_wrong_version(result, &stream, expected, Some(out.version), &what);
            for e in lost {
                let found = ok("find_event", store.find_event(&stream, e.id).await);
                assert!(
                    found.is_none(),
                    "{what}: a losing writer's event was stored"
                );
            }
        }
        assert_eq!(
            version_of(&store, &stream).await,
            Some(out.version),
            "{what}"
        );
        winners.push(batch.clone());
    }
    let stored = read_stream(&store, &stream).await;
    let expected_events: Vec<NewEvent> = winners.concat();
    assert_eq!(
        stored.len(),
        expected_events.len(),
        "stored events must equal the winners' events"
    );
    for (i, (r, s)) in stored.iter().zip(&expected_events).enumerate() {
        assert_eq!(r.version, Version(i as u64), "versions 0.. with no hole");
        assert_same_event(r, s, "winner's event");
    }

    // With `Any`, every writer lands; batches stay whole and versions have no hole.
    let before = stored.len() as u64;
    let attempts = race(&store, &stream, ExpectedVersion::Any, ROUNDS).await;
    let mut ranges = BTreeMap::new();
    for (batch, result) in &attempts {
        let out = match result {
            Ok(out) => out,
            Err(e) => panic!("a racing append with Any must succeed, it failed: {e:?}"),
        };
        assert_eq!(
            out.version.0,
            out.first_version.0 + 1,
            "a 2-event batch spans 2 versions"
        );
        ranges.insert(out.first_version.0, batch.clone());
    }
    let stored = read_stream(&store, &stream).await;
    assert_eq!(
        stored.len() as u64,
        before + 2 * WRITERS as u64,
        "every Any append lands"
    );
    let mut next = before;
    for (first, batch) in ranges {
        assert_eq!(
            first, next,
            "Any appends left a hole or overlapped at version {next}"
        );
        for (i, e) in batch.iter().enumerate() {
            let r = &stored[usize::try_from(first).expect("small") + i];
            assert_same_event(r, e, "an Any batch must be stored whole and in order");
        }
        next += 2;
    }
}
