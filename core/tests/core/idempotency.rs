//! Idempotency keys: a repeated command lands once and returns the first outcome.

use std::sync::Arc;

use tessera_core::idempotency::command_event_id;
use tessera_core::{CommandHandler, CommandOptions, Fingerprint, MemoryStore, Version};
use tokio::sync::Barrier;

use crate::doubles::Meddler;
use crate::tally::{events, stream, Cmd, Tally};

fn key(k: &str) -> CommandOptions {
    CommandOptions::idempotent(k)
}

#[tokio::test]
async fn the_same_key_twice_lands_once_and_replays_the_first_outcome() {
    let store = MemoryStore::new();
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ());
    let first = tally
        .handle_with("i1", &Cmd::AddTwice(3), key("k1"))
        .await
        .unwrap();
    assert_eq!(
        (first.version, first.events, first.replayed),
        (Some(Version(1)), 2, false)
    );
    let stored = events(&store, "i1").await;
    let ids: Vec<_> = (0..2)
        .map(|i| command_event_id(&stream("i1"), "k1", i))
        .collect();
    assert_eq!(
        stored.iter().map(|e| e.id).collect::<Vec<_>>(),
        ids,
        "deterministic ids"
    );

    let again = tally
        .handle_with("i1", &Cmd::AddTwice(3), key("k1"))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        (
            again.version,
            again.position,
            again.events,
            &again.stream_id
        ),
        (
            first.version,
            first.position,
            first.events,
            &first.stream_id
        )
    );
    assert_eq!(events(&store, "i1").await.len(), 2, "nothing new written");

    // Later commands do not change what the first one's outcome was.
    tally.handle("i1", &Cmd::Add(1)).await.unwrap();
    let late = tally
        .handle_with("i1", &Cmd::AddTwice(3), key("k1"))
        .await
        .unwrap();
    assert!(late.replayed);
    assert_eq!(
        (late.version, late.position),
        (first.version, first.position)
    );

    let other_key = tally
        .handle_with("i1", &Cmd::AddTwice(3), key("k2"))
        .await
        .unwrap();
    assert_eq!(
        (other_key.version, other_key.replayed),
        (Some(Version(4)), false)
    );
    let other_aggregate = tally
        .handle_with("i2", &Cmd::AddTwice(3), key("k1"))
        .await
        .unwrap();
    assert_eq!(
        (other_aggregate.version, other_aggregate.replayed),
        (Some(Version(1)), false)
    );
    assert_eq!(tally.load("i1").await.unwrap().state.total, 13);
}

/// Sixteen runs of one keyed command at once: with a key only, with the request's
/// fingerprint too, and with one of them deciding on a cached state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_land_once() {
    let fingerprinted = key("once").with_fingerprint(Fingerprint::of("add 5 twice").unwrap());
    let cases = [
        (key("once"), false),
        (fingerprinted.clone(), false),
        (fingerprinted, true),
    ];
    for (options, cache) in cases {
        let store = MemoryStore::new();
        let mut tally = CommandHandler::<Tally, _>::new(store.clone(), ());
        if cache {
            tally = tally.with_state_cache(16);
            tally.handle("dup", &Cmd::Nothing).await.unwrap(); // caches the empty state
        }
        let barrier = Arc::new(Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (tally, barrier) = (tally.clone(), Arc::clone(&barrier));
                let options = options.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    tally.handle_with("dup", &Cmd::AddTwice(5), options).await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap().expect("every duplicate succeeds"));
        }
        let first = &outcomes[0];
        for o in &outcomes {
            assert_eq!(
                (o.version, o.position, o.events),
                (first.version, first.position, 2)
            );
        }
        assert!(
            outcomes.iter().any(|o| !o.replayed),
            "one of them wrote the events"
        );
        assert_eq!(events(&store, "dup").await.len(), 2, "landed once");
        assert_eq!(tally.load("dup").await.unwrap().state.total, 10);
    }
}

#[tokio::test]
async fn an_idempotent_command_retried_after_a_conflict_lands_once() {
    let store = Meddler::interfering(1);
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ());
    let first = tally
        .handle_with("i3", &Cmd::Add(2), key("k"))
        .await
        .unwrap();
    assert_eq!((first.version, first.replayed), (Some(Version(1)), false));
    let again = tally
        .handle_with("i3", &Cmd::Add(2), key("k"))
        .await
        .unwrap();
    assert_eq!(
        (again.version, again.position, again.replayed),
        (first.version, first.position, true)
    );
    assert_eq!(
        events(&store.inner, "i3").await.len(),
        2,
        "the other writer's and ours"
    );
    assert_eq!(tally.load("i3").await.unwrap().state.total, 102);
}

#[tokio::test]
async fn a_rejected_idempotent_command_can_be_sent_again() {
    let store = MemoryStore::new();
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ());
    tally.handle("i4", &Cmd::Add(i64::MAX)).await.unwrap();
    assert!(tally
        .handle_with("i4", &Cmd::Add(1), key("k"))
        .await
        .is_err());
    assert_eq!(events(&store, "i4").await.len(), 1);
    let out = tally
        .handle_with("i4", &Cmd::Add(-1), key("k"))
        .await
        .unwrap();
    assert_eq!((out.version, out.replayed), (Some(Version(1)), false));
}

#[tokio::test]
async fn a_replay_of_a_command_with_many_events_reports_all_of_them() {
    let store = MemoryStore::new();
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ());
    tally.handle("i5", &Cmd::Add(1)).await.unwrap();
    let first = tally
        .handle_with("i5", &Cmd::AddMany(600), key("big"))
        .await
        .unwrap();
    assert_eq!((first.version, first.events), (Some(Version(600)), 600));
    tally.handle("i5", &Cmd::Add(1)).await.unwrap();
    let again = tally
        .handle_with("i5", &Cmd::AddMany(600), key("big"))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.version, again.position, again.events),
        (first.version, first.position, 600),
        "the replayed outcome spans pages of the stream"
    );
    assert_eq!(events(&store, "i5").await.len(), 602);
}

#[tokio::test]
async fn a_key_whose_later_event_id_is_taken_fails_instead_of_looping() {
    use tessera_core::{CommandError, EventAppender, ExpectedVersion, StoreError};

    // An event of another origin already holds the id the keyed command's *second*
    // event would get; its first event is not stored, so there is nothing to replay.
    let store = MemoryStore::new();
    let taken = command_event_id(&stream("i6"), "k", 1);
    let stray = crate::tally::raw("Added", 2, serde_json::json!({ "amount": 7 })).with_id(taken);
    store
        .append(&stream("i6"), ExpectedVersion::NoStream, vec![stray])
        .await
        .unwrap();
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ());
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tally.handle_with("i6", &Cmd::AddTwice(1), key("k")),
    )
    .await
    .expect("the handler answers instead of looping");
    assert!(
        matches!(
            outcome,
            Err(CommandError::Store(StoreError::DuplicateEventId { .. }))
        ),
        "{outcome:?}"
    );
    assert_eq!(events(&store, "i6").await.len(), 1, "nothing written");
}
