//! The state cache: commands on a cached aggregate skip the read, yet decide on the
//! current state even when another writer appended, and concurrent commands lose nothing.

use std::sync::Arc;

use tessera_core::{
    CommandError, CommandHandler, MemoryStore, RetryPolicy, SnapshotPolicy, SnapshotStore, Version,
};

use crate::doubles::Meddler;
use crate::tally::{events, stream, Cmd, Tally, TallyError};

fn cached(store: &Meddler, capacity: usize) -> CommandHandler<Tally, Meddler> {
    CommandHandler::new(store.clone(), ()).with_state_cache(capacity)
}

#[tokio::test]
async fn a_cached_aggregate_is_read_once() {
    let store = Meddler::default();
    let tally = cached(&store, 16);
    tally.handle("c1", &Cmd::Add(1)).await.unwrap();
    assert_eq!(store.reads(), 1, "first command loads from the store");
    tally.handle("c1", &Cmd::Add(2)).await.unwrap();
    let third = tally.handle("c1", &Cmd::Add(3)).await.unwrap();
    assert_eq!(
        store.reads(),
        1,
        "later commands decide on the cached state"
    );
    assert_eq!(third.version, Some(Version(2)));

    // A refused or empty decision leaves the (unchanged) state cached.
    assert!(matches!(
        tally.handle("c1", &Cmd::Refuse).await,
        Err(CommandError::Rejected(TallyError::Refused))
    ));
    tally.handle("c1", &Cmd::Nothing).await.unwrap();
    tally.handle("c1", &Cmd::Add(4)).await.unwrap();
    assert_eq!(store.reads(), 1);

    let state = tally.load("c1").await.unwrap().state;
    assert_eq!((state.total, state.adds), (10, 4));
}

#[tokio::test]
async fn a_state_made_stale_by_another_writer_is_reloaded_before_deciding() {
    let store = Meddler::default();
    // No retries: reloading a stale cached state must not need one.
    let mine = cached(&store, 16).with_retry(RetryPolicy::none());
    let theirs = CommandHandler::<Tally, _>::new(store.inner.clone(), ());
    mine.handle("c1", &Cmd::Add(1)).await.unwrap();
    theirs.handle("c1", &Cmd::Add(10)).await.unwrap();

    let outcome = mine.handle("c1", &Cmd::Add(1)).await.unwrap();
    assert_eq!(outcome.version, Some(Version(2)));
    let state = mine.load("c1").await.unwrap().state;
    assert_eq!(
        state.total, 12,
        "decided on the stored state, not the cached one"
    );

    // The decision itself must see the other writer's event: on the stale state
    // (total 12) this fits, on the current one (total 112) it overflows.
    theirs.handle("c1", &Cmd::Add(100)).await.unwrap();
    let near_max = i64::MAX - 50;
    assert!(matches!(
        mine.handle("c1", &Cmd::Add(near_max)).await,
        Err(CommandError::Rejected(TallyError::Overflow))
    ));
    assert_eq!(events(&store.inner, "c1").await.len(), 4, "nothing written");
}

#[tokio::test]
async fn a_refusal_or_no_op_on_a_stale_cached_state_is_decided_again() {
    let store = Meddler::default();
    let mine = cached(&store, 16).with_retry(RetryPolicy::none());
    let theirs = CommandHandler::<Tally, _>::new(store.inner.clone(), ());
    mine.handle("c1", &Cmd::Add(100)).await.unwrap();
    let big = i64::MAX - 50;
    assert!(
        matches!(
            mine.handle("c1", &Cmd::Add(big)).await,
            Err(CommandError::Rejected(TallyError::Overflow))
        ),
        "refused on the current state (total 100)"
    );

    // Another writer makes room; the cached state (total 100) would still refuse.
    theirs.handle("c1", &Cmd::Add(-100)).await.unwrap();
    let outcome = mine
        .handle("c1", &Cmd::Add(big))
        .await
        .expect("decided on the stored state (total 0), which accepts it");
    assert_eq!(outcome.version, Some(Version(2)));
    assert_eq!(events(&store.inner, "c1").await.len(), 3);

    // A no-op answers with the stream's current version, not the cached one.
    theirs.handle("c1", &Cmd::Add(-1)).await.unwrap();
    let nothing = mine.handle("c1", &Cmd::Nothing).await.unwrap();
    assert_eq!(
        nothing.version,
        Some(Version(3)),
        "read-your-writes version"
    );
    let reads = store.reads();
    mine.handle("c1", &Cmd::Nothing).await.unwrap();
    assert_eq!(
        store.reads(),
        reads,
        "a fresh cached state is not read again"
    );
}

#[tokio::test]
async fn concurrent_commands_through_one_cached_handler_lose_nothing() {
    let store = Meddler::default();
    let tally = Arc::new(cached(&store, 16).with_retry(RetryPolicy {
        max_attempts: 1_000,
        ..RetryPolicy::default()
    }));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let tally = Arc::clone(&tally);
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                tally.handle("hot", &Cmd::Add(1)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stored = events(&store.inner, "hot").await;
    assert_eq!(stored.len(), 200);
    assert!(stored
        .iter()
        .enumerate()
        .all(|(i, e)| e.version.0 == i as u64));
    let state = tally.load("hot").await.unwrap().state;
    assert_eq!((state.total, state.adds), (200, 200));
}

#[tokio::test]
async fn the_cache_holds_at_most_its_capacity() {
    let store = Meddler::default();
    let tally = cached(&store, 2);
    for id in ["a", "b", "c"] {
        tally.handle(id, &Cmd::Add(1)).await.unwrap();
    }
    assert_eq!(store.reads(), 3);
    tally.handle("c", &Cmd::Add(1)).await.unwrap();
    tally.handle("b", &Cmd::Add(1)).await.unwrap();
    assert_eq!(store.reads(), 3, "b and c are cached");
    tally.handle("a", &Cmd::Add(1)).await.unwrap();
    assert_eq!(store.reads(), 4, "a was evicted and is read again");
}

#[tokio::test]
async fn snapshots_follow_their_policy_on_cached_aggregates() {
    let store = MemoryStore::new();
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ())
        .with_snapshots(store.clone(), SnapshotPolicy::EveryNEvents(3))
        .with_state_cache(16);
    for n in 1..=7 {
        tally.handle("s", &Cmd::Add(n)).await.unwrap();
    }
    let snap = store
        .load_snapshot(&stream("s"))
        .await
        .unwrap()
        .expect("snapshots taken");
    assert_eq!(snap.version, Version(5), "taken at 3 and 6 events");
    let state: Tally = snap.data.decode().unwrap();
    assert_eq!(state.total, 21);
}

#[tokio::test]
async fn peek_reads_the_cached_state_or_loads_and_caches_it() {
    let store = Meddler::default();
    let tally = cached(&store, 16);
    tally.handle("p1", &Cmd::Add(3)).await.unwrap();
    assert_eq!(tally.peek("p1", |t| t.total).await.unwrap(), 3);
    assert_eq!(store.reads(), 1, "the command's load only");

    let theirs = CommandHandler::<Tally, _>::new(store.inner.clone(), ());
    theirs.handle("p2", &Cmd::Add(5)).await.unwrap();
    assert_eq!(tally.peek("p2", |t| t.total).await.unwrap(), 5);
    assert_eq!(store.reads(), 2, "a miss loads...");
    tally.handle("p2", &Cmd::Add(1)).await.unwrap();
    assert_eq!(store.reads(), 2, "...and caches for the next command");
    assert_eq!(tally.peek("p2", |t| t.total).await.unwrap(), 6);

    let uncached = CommandHandler::<Tally, _>::new(store.clone(), ());
    assert_eq!(uncached.peek("p2", |t| t.adds).await.unwrap(), 2);
    assert_eq!(store.reads(), 3, "without a cache, a peek is a load");
}
