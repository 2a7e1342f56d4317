//! Version conflicts: reload and decide again, bounded; `RetryPolicy::none()` surfaces
//! them; commands of one handler for one aggregate take turns instead of conflicting;
//! an unknown append outcome is retried with the same events and lands once.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::{
    CommandError, CommandHandler, ExpectedVersion, MemoryStore, RetryPolicy, StoreError, Version,
};
use tokio::sync::Barrier;

use crate::doubles::Meddler;
use crate::tally::{events, stream, Cmd, Tally};

fn fast(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

#[tokio::test]
async fn a_conflict_is_retried_after_reloading() {
    let store = Meddler::interfering(1);
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ());
    let out = tally.handle("c1", &Cmd::Add(1)).await.unwrap();
    assert_eq!(
        out.version,
        Some(Version(1)),
        "appended after the other writer's event"
    );
    assert_eq!(store.appends(), 2, "one conflict, one retry");
    let loaded = tally.load("c1").await.unwrap();
    assert_eq!((loaded.state.total, loaded.state.adds), (101, 2));
}

#[tokio::test]
async fn without_retries_a_conflict_is_returned() {
    let store = Meddler::interfering(1);
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ()).with_retry(RetryPolicy::none());
    let err = tally.handle("c2", &Cmd::Add(1)).await.unwrap_err();
    match err {
        CommandError::Conflict {
            stream: s,
            attempts,
            source:
                StoreError::WrongExpectedVersion {
                    expected, actual, ..
                },
        } => {
            assert_eq!((s, attempts), (stream("c2"), 1));
            assert_eq!(
                (expected, actual),
                (ExpectedVersion::NoStream, Some(Version(0)))
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.appends(), 1);
    assert_eq!(
        tally.load("c2").await.unwrap().state.total,
        100,
        "only the other writer's"
    );
}

#[tokio::test]
async fn retries_are_bounded() {
    let store = Meddler::interfering(100);
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ()).with_retry(fast(3));
    let err = tally.handle("c3", &Cmd::Add(1)).await.unwrap_err();
    assert!(
        matches!(err, CommandError::Conflict { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(store.appends(), 3);
    assert_eq!(
        events(&store.inner, "c3").await.len(),
        3,
        "only the other writer's events"
    );
}

/// Runs `tasks` handlers at once, each handling `per_task` `Add(1)`; returns the results.
async fn contend(
    tally: &CommandHandler<Tally, MemoryStore>,
    tasks: usize,
    per_task: usize,
) -> Vec<Result<(), String>> {
    let barrier = Arc::new(Barrier::new(tasks));
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (tally, barrier) = (tally.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                let mut results = Vec::new();
                for _ in 0..per_task {
                    results.push(match tally.handle("hot", &Cmd::Add(1)).await {
                        Ok(_) => Ok(()),
                        Err(CommandError::Conflict { attempts, .. }) => Err(attempts.to_string()),
                        Err(other) => panic!("only conflicts may fail: {other:?}"),
                    });
                }
                results
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.expect("task"));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_handlers_count_every_success_once() {
    let store = MemoryStore::new();
    // Without writer lanes, so the sixteen race each other to the append.
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ())
        .with_retry(fast(50))
        .with_writer_lanes(0);
    let results = contend(&tally, 16, 5).await;
    let successes = results.iter().filter(|r| r.is_ok()).count();
    assert!(successes > 0);
    let loaded = tally.load("hot").await.unwrap();
    assert_eq!(
        loaded.state.total,
        i64::try_from(successes).unwrap(),
        "final state == number of successes"
    );
    assert_eq!(events(&store, "hot").await.len(), successes);
    for (i, e) in events(&store, "hot").await.iter().enumerate() {
        assert_eq!(e.version, Version(i as u64));
    }
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.iter().all(|a| a.as_str() == "50"),
        "conflicts only after 50 attempts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_handlers_without_retry_surface_conflicts() {
    let store = MemoryStore::new();
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ())
        .with_retry(RetryPolicy::none())
        .with_writer_lanes(0);
    let results = contend(&tally, 16, 3).await;
    let successes = results.iter().filter(|r| r.is_ok()).count();
    assert!(successes > 0);
    assert!(results
        .iter()
        .all(|r| r.as_ref().err().is_none_or(|a| a == "1")));
    assert_eq!(
        tally.load("hot").await.unwrap().state.total,
        i64::try_from(successes).unwrap()
    );
    assert_eq!(events(&store, "hot").await.len(), successes);
}

/// In its writer lane (the default), commands for one aggregate take turns: sixteen
/// tasks at once, no retry allowed, and not one conflicts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_for_one_aggregate_take_turns_without_conflicts() {
    let store = MemoryStore::new();
    for cached in [false, true] {
        let tally =
            CommandHandler::<Tally, _>::new(store.clone(), ()).with_retry(RetryPolicy::none());
        let tally = if cached {
            tally.with_state_cache(16)
        } else {
            tally
        };
        let results = contend(&tally, 16, 5).await;
        assert!(
            results.iter().all(Result::is_ok),
            "cached {cached}: {results:?}"
        );
    }
    assert_eq!(tally_total(&store).await, 160);
    for (i, e) in events(&store, "hot").await.iter().enumerate() {
        assert_eq!(e.version, Version(i as u64));
    }
}

async fn tally_total(store: &MemoryStore) -> i64 {
    CommandHandler::<Tally, _>::new(store.clone(), ())
        .load("hot")
        .await
        .unwrap()
        .state
        .total
}

#[tokio::test]
async fn an_unknown_append_outcome_is_retried_and_lands_once() {
    let store = Meddler::default();
    store
        .lose_reply
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ()).with_retry(fast(3));
    let out = tally.handle("u1", &Cmd::AddTwice(7)).await.unwrap();
    assert_eq!((out.version, out.events), (Some(Version(1)), 2));
    assert_eq!(store.appends(), 2, "the same batch was sent again");
    let stored = events(&store.inner, "u1").await;
    assert_eq!(stored.len(), 2, "landed exactly once");
    assert_eq!(out.position, Some(stored[1].position));
    assert_eq!(tally.load("u1").await.unwrap().state.total, 14);
}

#[tokio::test]
async fn an_unknown_outcome_lands_once_even_when_the_stream_moved_on() {
    let store = Meddler::default();
    store
        .lose_reply
        .store(1, std::sync::atomic::Ordering::SeqCst);
    store
        .interfere_after
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ()).with_retry(fast(3));
    let out = tally.handle("u2", &Cmd::Add(7)).await.unwrap();
    assert_eq!(
        out.version,
        Some(Version(0)),
        "the outcome of the append that landed"
    );
    let stored = events(&store.inner, "u2").await;
    assert_eq!(stored.len(), 2, "ours once, then the other writer's");
    assert_eq!(out.position, Some(stored[0].position));
    assert_eq!(tally.load("u2").await.unwrap().state.total, 107);
}
