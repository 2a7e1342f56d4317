//! The command handler's happy path: outcomes, metadata, empty decisions, rejections.

use serde_json::json;
use tessera_core::{
    CommandError, CommandHandler, CommandOptions, EventReader, MemoryStore, Metadata, Version,
};
use uuid::Uuid;

use crate::tally::{events, stream, Cmd, Tally, TallyError};

fn handler() -> (MemoryStore, CommandHandler<Tally, MemoryStore>) {
    let store = MemoryStore::new();
    (store.clone(), CommandHandler::new(store, ()))
}

#[tokio::test]
async fn outcome_reports_version_and_position_of_the_last_event() {
    let (store, tally) = handler();
    let first = tally.handle("h1", &Cmd::Add(5)).await.unwrap();
    assert_eq!(first.stream_id, stream("h1"));
    assert_eq!(
        (first.version, first.events, first.replayed),
        (Some(Version(0)), 1, false)
    );
    let stored = events(&store, "h1").await;
    assert_eq!(first.position, Some(stored[0].position));
    assert_eq!(stored[0].event_type, "Added");
    assert_eq!(
        stored[0].schema_version, 2,
        "the event type's current schema version"
    );
    assert_eq!(stored[0].data.to_value().unwrap(), json!({"amount": 5}));

    let second = tally.handle("h1", &Cmd::AddTwice(2)).await.unwrap();
    assert_eq!((second.version, second.events), (Some(Version(2)), 2));
    let stored = events(&store, "h1").await;
    assert_eq!(stored.len(), 3);
    assert_eq!(
        second.position,
        Some(stored[2].position),
        "position of the last event"
    );
    assert_eq!(store.head().await.unwrap(), second.position);

    let loaded = tally.load("h1").await.unwrap();
    assert_eq!(loaded.state.total, 9);
    assert_eq!(loaded.state.adds, 3);
    assert_eq!(loaded.version, Some(Version(2)));
    assert_eq!(loaded.events_since_snapshot, 3);
}

#[tokio::test]
async fn metadata_goes_on_every_event() {
    let (store, tally) = handler();
    let metadata = Metadata::correlated(Uuid::new_v4())
        .caused_by(Uuid::new_v4())
        .with_header("user", "zoë");
    let options = CommandOptions::default().with_metadata(metadata.clone());
    tally
        .handle_with("m1", &Cmd::AddTwice(1), options)
        .await
        .unwrap();
    let stored = events(&store, "m1").await;
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|e| e.metadata == metadata));
}

#[tokio::test]
async fn an_empty_decision_records_nothing() {
    let (store, tally) = handler();
    let out = tally.handle("n1", &Cmd::Nothing).await.unwrap();
    assert_eq!((out.version, out.position, out.events), (None, None, 0));
    tally.handle("n1", &Cmd::Rename("x".into())).await.unwrap();
    let out = tally.handle("n1", &Cmd::Nothing).await.unwrap();
    assert_eq!(
        (out.version, out.position, out.events),
        (Some(Version(0)), None, 0)
    );
    assert_eq!(events(&store, "n1").await.len(), 1);
    assert_eq!(tally.load("n1").await.unwrap().state.label, "x");
}

#[tokio::test]
async fn a_rejected_command_records_nothing() {
    let (store, tally) = handler();
    let err = tally.handle("r1", &Cmd::Refuse).await.unwrap_err();
    assert!(
        matches!(err, CommandError::Rejected(TallyError::Refused)),
        "{err:?}"
    );
    assert!(events(&store, "r1").await.is_empty());

    tally.handle("r1", &Cmd::Add(i64::MAX)).await.unwrap();
    let err = tally.handle("r1", &Cmd::Add(1)).await.unwrap_err();
    assert!(
        matches!(err, CommandError::Rejected(TallyError::Overflow)),
        "{err:?}"
    );
    assert_eq!(events(&store, "r1").await.len(), 1);
    assert_eq!(tally.load("r1").await.unwrap().state.total, i64::MAX);
}

#[tokio::test]
async fn each_aggregate_has_its_own_stream() {
    let (store, tally) = handler();
    tally.handle("a", &Cmd::Add(1)).await.unwrap();
    let b = tally.handle("b", &Cmd::Add(2)).await.unwrap();
    assert_eq!(
        b.version,
        Some(Version(0)),
        "b's first event is b's version 0"
    );
    let a = tally.handle("a", &Cmd::Add(3)).await.unwrap();
    assert_eq!(a.version, Some(Version(1)));
    assert!(
        a.position > b.position,
        "global positions keep growing across streams"
    );
    assert_eq!(store.len(), 3);
    assert_eq!(tally.load("a").await.unwrap().state.total, 4);
    assert_eq!(tally.load("b").await.unwrap().state.total, 2);
    let fresh = tally.load("never").await.unwrap();
    assert_eq!((fresh.state, fresh.version), (Tally::default(), None));
}

#[tokio::test]
async fn a_long_stream_loads_across_pages() {
    let (store, tally) = handler();
    for _ in 0..3 {
        tally.handle("long", &Cmd::AddMany(1500)).await.unwrap();
    }
    tally.handle("long", &Cmd::Add(10)).await.unwrap();
    let loaded = tally.load("long").await.unwrap();
    assert_eq!(loaded.state.total, 4510);
    assert_eq!(loaded.version, Some(Version(4500)));
    assert_eq!(loaded.events_since_snapshot, 4501);
    assert_eq!(store.len(), 4501);
}

/// A command that usually starts its stream ([`Aggregate::starts_stream`]) is decided on
/// the empty state with no read first. When the stream exists after all, the handler
/// loads it and decides again: an idempotent retry answers its first run and writes
/// nothing, another command lands after what is there, and a refusal decided on the
/// assumed empty state is not answered before the loaded state has decided.
#[tokio::test]
async fn a_command_that_starts_its_stream_reads_nothing_unless_the_stream_exists() {
    let counted = crate::doubles::Meddler::default();
    let handler = CommandHandler::<Tally, _>::new(counted.clone(), ());
    handler.handle("counted", &Cmd::Open(5)).await.unwrap();
    assert_eq!(
        (counted.reads(), counted.finds()),
        (0, 0),
        "no read for a new stream"
    );

    let (store, handler) = self::handler();
    let first = handler
        .handle_with("new", &Cmd::Open(5), CommandOptions::idempotent("open-1"))
        .await
        .unwrap();
    assert_eq!((first.version, first.events), (Some(Version(0)), 1));
    // The same request again: the stream exists; answered from its first run.
    let again = handler
        .handle_with("new", &Cmd::Open(5), CommandOptions::idempotent("open-1"))
        .await
        .unwrap();
    assert_eq!(
        (again.replayed, again.version, again.position),
        (true, first.version, first.position)
    );
    // Another open of the existing tally: loaded, decided again, appended after it.
    let other = handler.handle("new", &Cmd::Open(2)).await.unwrap();
    assert_eq!(other.version, Some(Version(1)));
    // Refused on the assumed empty state (a negative start), accepted on the loaded one.
    let negative = handler.handle("new", &Cmd::Open(-1)).await.unwrap();
    assert_eq!(negative.version, Some(Version(2)));
    assert_eq!(handler.load("new").await.unwrap().state.total, 6);
    assert_eq!(events(&store, "new").await.len(), 3);
    // And refused where the stream really is new.
    let refused = handler.handle("fresh", &Cmd::Open(-1)).await;
    assert!(matches!(
        refused,
        Err(CommandError::Rejected(TallyError::Refused))
    ));
}

/// A cached handler of `Tally` on `store` that coalesces queued commands.
fn coalescing(store: &MemoryStore) -> CommandHandler<Tally, MemoryStore> {
    CommandHandler::new(store.clone(), ())
        .with_state_cache(100)
        .with_coalescing()
}

/// Commands queued for one aggregate are decided together and appended at once: every
/// caller gets its own version (contiguous, none twice) and a position at or after its
/// events; a refusal among them is answered as a refusal; a key already used answers
/// its first run; and what lands is every accepted command's events, once.
#[tokio::test]
async fn queued_commands_for_one_aggregate_share_appends() {
    let store = MemoryStore::new();
    let handler = coalescing(&store);
    let task = |cmd: Cmd, key: String| {
        let handler = handler.clone();
        tokio::spawn(async move {
            handler
                .handle_queued("hot", cmd, CommandOptions::idempotent(key))
                .await
        })
    };
    // On one thread, all forty queue before the first batch is written.
    let mut tasks: Vec<_> = (0..40)
        .map(|i| task(Cmd::Add(1), format!("k{i}")))
        .collect();
    tasks.push(task(Cmd::Refuse, "refused".into()));
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert!(matches!(
        outcomes.pop().unwrap(),
        Err(CommandError::Rejected(TallyError::Refused))
    ));
    let outcomes: Vec<_> = outcomes.into_iter().map(Result::unwrap).collect();
    let mut versions: Vec<u64> = outcomes.iter().map(|o| o.version.unwrap().0).collect();
    versions.sort_unstable();
    assert_eq!(
        versions,
        (0..40).collect::<Vec<_>>(),
        "one version each, none twice"
    );
    let stored = events(&store, "hot").await;
    assert_eq!(stored.len(), 40);
    for o in &outcomes {
        let own = &stored[usize::try_from(o.version.unwrap().0).unwrap()];
        assert!(
            o.position.unwrap() >= own.position,
            "{o:?} before its event"
        );
    }
    let positions: std::collections::HashSet<_> = outcomes.iter().map(|o| o.position).collect();
    assert!(
        positions.len() < 40,
        "forty commands, {} appends: nothing was coalesced",
        positions.len()
    );
    // A key already used answers its first run; nothing more lands.
    let again = handler
        .handle_queued("hot", Cmd::Add(1), CommandOptions::idempotent("k7"))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.version, outcomes[7].version);
    assert_eq!(events(&store, "hot").await.len(), 40);
    assert_eq!(handler.load("hot").await.unwrap().state.total, 40);
}

/// Two queued commands under one key in one batch: the batch's append refuses the
/// repeated ids, every command of it takes the one-command path, and the key lands once:
/// the second answers the first's outcome.
#[tokio::test]
async fn a_key_twice_in_one_batch_lands_once() {
    let store = MemoryStore::new();
    let handler = coalescing(&store);
    let tasks: Vec<_> = [("a", 1), ("same", 2), ("same", 2), ("b", 3)]
        .into_iter()
        .map(|(key, n)| {
            let handler = handler.clone();
            tokio::spawn(async move {
                handler
                    .handle_queued("dup", Cmd::Add(n), CommandOptions::idempotent(key))
                    .await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap().unwrap());
    }
    assert_eq!(events(&store, "dup").await.len(), 3);
    assert_eq!(
        (outcomes[2].replayed, outcomes[2].version),
        (true, outcomes[1].version)
    );
    assert_eq!(handler.load("dup").await.unwrap().state.total, 6);
}

/// A batch decided on a cached state another writer made stale: its append is refused,
/// every command of it takes the one-command path (reload, decide again), and all of
/// them land after the other writer's event, once each.
#[tokio::test]
async fn a_queued_batch_on_a_stale_state_is_decided_again() {
    let store = MemoryStore::new();
    let handler = coalescing(&store);
    handler
        .handle_queued("stale", Cmd::Add(1), CommandOptions::default())
        .await
        .unwrap(); // cached at version 0
    let other = CommandHandler::<Tally, _>::new(store.clone(), ());
    other.handle("stale", &Cmd::Add(100)).await.unwrap(); // version 1, unseen here
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let handler = handler.clone();
            tokio::spawn(async move {
                handler
                    .handle_queued(
                        "stale",
                        Cmd::Add(2),
                        CommandOptions::idempotent(format!("s{i}")),
                    )
                    .await
            })
        })
        .collect();
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap().unwrap().version.unwrap().0);
    }
    versions.sort_unstable();
    assert_eq!(versions, [2, 3, 4]);
    assert_eq!(events(&store, "stale").await.len(), 5);
    assert_eq!(handler.load("stale").await.unwrap().state.total, 107);
}
