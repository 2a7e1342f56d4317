//! Keyed commands with a request fingerprint: the same request again replays the first
//! outcome, another request under the key is `KeyReused` carrying it, and finding the
//! first run costs no read beyond the load when the load read the whole stream.
//! (Concurrent runs of one request: `idempotency::concurrent_duplicates_land_once`.)

use tessera_core::idempotency::FINGERPRINT_HEADER;
use tessera_core::{
    CommandError, CommandHandler, CommandOptions, CommandOutcome, Fingerprint, MemoryStore,
    Metadata, SnapshotPolicy, Version,
};

use crate::doubles::Meddler;
use crate::tally::{events, Cmd, Tally};

/// Options of a request `body` sent with idempotency key `key`.
fn request(key: &str, body: i64) -> CommandOptions {
    let fingerprint = Fingerprint::of(&serde_json::json!({ "add": body })).expect("JSON");
    CommandOptions::idempotent(key).with_fingerprint(fingerprint)
}

fn key_reused(
    result: Result<CommandOutcome, CommandError<crate::tally::TallyError>>,
) -> CommandOutcome {
    match result {
        Err(CommandError::KeyReused { first }) => first,
        other => panic!("expected KeyReused, got {other:?}"),
    }
}

#[tokio::test]
async fn the_same_request_replays_and_another_request_is_refused_with_the_first_outcome() {
    let store = MemoryStore::new();
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ());
    tally.handle("f1", &Cmd::Add(1)).await.unwrap();
    let first = tally
        .handle_with("f1", &Cmd::AddTwice(3), request("k", 3))
        .await
        .unwrap();
    assert_eq!(
        (first.version, first.events, first.replayed),
        (Some(Version(2)), 2, false)
    );
    tally.handle("f1", &Cmd::Add(1)).await.unwrap();

    let again = tally
        .handle_with("f1", &Cmd::AddTwice(3), request("k", 3))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.version, again.position, again.events),
        (first.version, first.position, 2),
        "the first run's version and position, not the stream's"
    );

    let other = key_reused(
        tally
            .handle_with("f1", &Cmd::AddTwice(4), request("k", 4))
            .await,
    );
    assert_eq!(
        (
            &other.stream_id,
            other.version,
            other.position,
            other.events,
            other.replayed
        ),
        (&first.stream_id, first.version, first.position, 2, true)
    );
    assert_eq!(
        events(&store, "f1").await.len(),
        4,
        "nothing written by either"
    );
    assert_eq!(tally.load("f1").await.unwrap().state.total, 8);

    // The first event records the fingerprint; the second does not repeat it.
    let stored = events(&store, "f1").await;
    let headers: Vec<_> = stored[1..3]
        .iter()
        .map(|e| e.metadata.headers.get(FINGERPRINT_HEADER).cloned())
        .collect();
    let expected = Fingerprint::of(&serde_json::json!({ "add": 3 })).unwrap();
    assert_eq!(headers, [Some(expected.to_string()), None]);
}

#[tokio::test]
async fn metadata_of_the_caller_is_kept_beside_the_fingerprint() {
    let store = MemoryStore::new();
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ());
    let correlation = uuid::Uuid::new_v4();
    let options =
        request("k", 1).with_metadata(Metadata::correlated(correlation).with_header("who", "me"));
    tally
        .handle_with("f2", &Cmd::Add(1), options)
        .await
        .unwrap();
    let stored = &events(&store, "f2").await[0].metadata;
    assert_eq!(stored.correlation_id, Some(correlation));
    assert_eq!(stored.headers.get("who").map(String::as_str), Some("me"));
    assert!(stored.headers.contains_key(FINGERPRINT_HEADER));
}

#[tokio::test]
async fn a_run_without_a_fingerprint_on_either_side_replays() {
    let store = MemoryStore::new();
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ());
    let first = tally
        .handle_with("f3", &Cmd::Add(1), CommandOptions::idempotent("k"))
        .await
        .unwrap();
    let fingerprinted = tally
        .handle_with("f3", &Cmd::Add(2), request("k", 2))
        .await
        .unwrap();
    assert_eq!(
        (fingerprinted.replayed, fingerprinted.position),
        (true, first.position)
    );

    tally
        .handle_with("f4", &Cmd::Add(1), request("k", 1))
        .await
        .unwrap();
    let bare = tally
        .handle_with("f4", &Cmd::Add(2), CommandOptions::idempotent("k"))
        .await
        .unwrap();
    assert!(
        bare.replayed,
        "a caller that sends no fingerprint asks for no check"
    );
}

#[tokio::test]
async fn a_fresh_keyed_command_and_its_replay_read_only_what_the_load_reads() {
    let store = Meddler::default();
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ());
    let first = tally
        .handle_with("f5", &Cmd::Add(1), request("k", 1))
        .await
        .unwrap();
    assert_eq!(
        (store.reads(), store.finds(), store.appends()),
        (1, 0, 1),
        "a new stream read whole holds no earlier run: no lookup"
    );
    let again = tally
        .handle_with("f5", &Cmd::Add(1), request("k", 1))
        .await
        .unwrap();
    assert_eq!((again.replayed, again.position), (true, first.position));
    let other = key_reused(tally.handle_with("f5", &Cmd::Add(2), request("k", 2)).await);
    assert_eq!(other.position, first.position);
    assert_eq!(
        (store.reads(), store.finds(), store.appends()),
        (3, 0, 1),
        "the replays found the first run among the events their loads read"
    );
}

#[tokio::test]
async fn a_first_run_behind_a_snapshot_is_looked_up_and_one_in_the_cache_remembered() {
    let store = Meddler::default();
    let snapshotting = CommandHandler::<Tally, _>::new(store.clone(), ())
        .with_snapshots(store.inner.clone(), SnapshotPolicy::EveryNEvents(1));
    let first = snapshotting
        .handle_with("f6", &Cmd::AddTwice(1), request("k", 1))
        .await
        .unwrap();
    let finds = store.finds();
    let again = snapshotting
        .handle_with("f6", &Cmd::AddTwice(1), request("k", 1))
        .await
        .unwrap();
    assert_eq!(
        (again.replayed, again.version, again.events),
        (true, first.version, 2)
    );
    assert_eq!(store.finds(), finds + 1, "behind the snapshot: one lookup");
    key_reused(
        snapshotting
            .handle_with("f6", &Cmd::AddTwice(2), request("k", 2))
            .await,
    );

    // A cached state remembers the last four keyed runs that landed on it: their retries
    // here read nothing. An older key's first run is looked up by id.
    let cached = CommandHandler::<Tally, _>::new(store.clone(), ()).with_state_cache(16);
    let first = cached
        .handle_with("f7", &Cmd::Add(1), request("k", 1))
        .await
        .unwrap();
    let (reads, finds) = (store.reads(), store.finds());
    let again = cached
        .handle_with("f7", &Cmd::Add(1), request("k", 1))
        .await
        .unwrap();
    assert_eq!((again.replayed, again.position), (true, first.position));
    let other = key_reused(
        cached
            .handle_with("f7", &Cmd::Add(2), request("k", 2))
            .await,
    );
    assert_eq!(other.position, first.position);
    assert_eq!((store.reads(), store.finds()), (reads, finds), "remembered");

    for (n, later) in ["k2", "k3", "k4", "k5"].into_iter().enumerate() {
        cached
            .handle_with("f7", &Cmd::Add(5), request(later, 5))
            .await
            .unwrap();
        if n == 0 {
            cached.handle("f7", &Cmd::Add(10)).await.unwrap(); // unkeyed: remembers nothing
        }
    }
    let (reads, finds) = (store.reads(), store.finds());
    let k2 = cached
        .handle_with("f7", &Cmd::Add(5), request("k2", 5))
        .await
        .unwrap();
    assert_eq!((k2.replayed, k2.version), (true, Some(Version(1))));
    assert_eq!((store.reads(), store.finds()), (reads, finds), "remembered");
    let old = key_reused(
        cached
            .handle_with("f7", &Cmd::Add(2), request("k", 2))
            .await,
    );
    assert_eq!(old.position, first.position);
    assert_eq!(
        (store.reads(), store.finds()),
        (reads + 1, finds + 1),
        "a key four keyed runs back: one lookup, one read of what follows its first run"
    );
    assert_eq!(cached.load("f7").await.unwrap().state.total, 31);
}

/// A key another process ran after this handler cached the stream: the command handler
/// does not look for the key's earlier run before appending on a store that refuses
/// taken ids (the memory store), so the append meets it. Landing right after the cached
/// version, the append is a repeat; landing before it (the cache caught up since), the
/// ids are taken. Either way the retry answers the first run's outcome (`replayed`, or
/// `KeyReused` for another request), writes nothing, and a refusal or a no-op decided on
/// the stale state does not hide the run either.
#[tokio::test]
async fn a_key_run_elsewhere_is_answered_through_a_stale_cache() {
    let store = MemoryStore::new();
    let here = CommandHandler::<Tally, _>::new(store.clone(), ()).with_state_cache(16);
    let elsewhere = CommandHandler::<Tally, _>::new(store.clone(), ());
    here.handle("s", &Cmd::Add(1)).await.unwrap(); // cached at version 0

    // Landed right after the cached version: the append here is a repeat.
    let first = elsewhere
        .handle_with("s", &Cmd::Add(2), request("k", 2))
        .await
        .unwrap();
    let again = here
        .handle_with("s", &Cmd::Add(2), request("k", 2))
        .await
        .unwrap();
    assert_eq!(
        (again.replayed, again.version, again.position),
        (true, first.version, first.position)
    );
    assert_eq!(events(&store, "s").await.len(), 2, "nothing written again");

    // Another request under the same key, the cache stale again.
    here.handle("s", &Cmd::Add(1)).await.unwrap(); // cached at version 2
    let first = elsewhere
        .handle_with("s", &Cmd::Add(3), request("k2", 3))
        .await
        .unwrap();
    let other = key_reused(here.handle_with("s", &Cmd::Add(4), request("k2", 4)).await);
    assert_eq!(other.position, first.position);
    assert_eq!(events(&store, "s").await.len(), 4);

    // Landed before the cached version (here caught up with an unkeyed command): the
    // key's ids are taken.
    let first = elsewhere
        .handle_with("s", &Cmd::Add(5), request("k3", 5))
        .await
        .unwrap();
    here.handle("s", &Cmd::Add(1)).await.unwrap();
    let again = here
        .handle_with("s", &Cmd::Add(5), request("k3", 5))
        .await
        .unwrap();
    assert_eq!((again.replayed, again.position), (true, first.position));
    assert_eq!(events(&store, "s").await.len(), 6);

    // A refusal decided on the cached state: the run is still found and answers.
    let first = elsewhere
        .handle_with("s", &Cmd::Add(6), request("k4", 6))
        .await
        .unwrap();
    here.handle("s", &Cmd::Add(1)).await.unwrap();
    let again = here.handle_with("s", &Cmd::Refuse, request("k4", 6)).await;
    assert_eq!(again.unwrap().position, first.position);
    assert_eq!(events(&store, "s").await.len(), 8);
    assert_eq!(
        here.load("s").await.unwrap().state.total,
        1 + 2 + 1 + 3 + 5 + 1 + 6 + 1
    );
}
