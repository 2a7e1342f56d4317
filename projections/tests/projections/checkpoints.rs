//! The one checkpoint store: its contract on memory and PostgreSQL, concurrent
//! compare-and-sets, tables of earlier releases brought to the one shape, and reactors
//! that move their checkpoint only past what succeeded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tessera_core::{BoxError, EventFilter, MemoryStore, Position, RecordedEvent};
use tessera_projections::{
    ApplyError, CheckpointStore, Checkpoints, MemoryCheckpoints, PgCheckpoints, Reaction, Reactor,
    Subscriber,
};

use crate::pg_support::{pool, unique};
use crate::support::deposit;

async fn drop_schema(pool: &deadpool_postgres::Pool, schema: &str) {
    pool.get()
        .await
        .expect("connection")
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .expect("drop schema");
}

/// What every checkpoint store does, whatever keeps it.
async fn contract(store: impl CheckpointStore) {
    let (a, b, c) = (
        Position::new(3, 3),
        Position::new(8, 8),
        Position::new(9, 9),
    );
    assert_eq!(store.load("r").await.unwrap(), Position::START);
    assert!(store.advance("r", Position::START, a).await.unwrap());
    assert_eq!(store.load("r").await.unwrap(), a);
    // A runner that read an old checkpoint is refused and changes nothing.
    assert!(!store.advance("r", Position::START, c).await.unwrap());
    assert!(!store.advance("r", b, c).await.unwrap());
    assert_eq!(store.load("r").await.unwrap(), a);
    // A reader with no row is at the start: only a move from the start creates it.
    assert!(!store.advance("s", a, b).await.unwrap());
    assert_eq!(store.load("s").await.unwrap(), Position::START);
    // Names are independent.
    assert!(store.advance("s", Position::START, b).await.unwrap());
    assert_eq!(store.load("r").await.unwrap(), a);
    // Many runners moving the same checkpoint from the same place: exactly one wins,
    // from a checkpoint that exists and from one that does not yet.
    for (name, from) in [("r", a), ("fresh", Position::START)] {
        let tries = (1..=16u64).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let to = Position::new(100 + i, 100 + i);
                (to, store.advance(name, from, to).await.unwrap())
            })
        });
        let mut won = Vec::new();
        for t in tries {
            let (to, moved) = t.await.unwrap();
            if moved {
                won.push(to);
            }
        }
        assert_eq!(won.len(), 1, "{name}: exactly one compare-and-set wins");
        assert_eq!(store.load(name).await.unwrap(), won[0]);
    }
    // Many at once: each name loaded as one load would, each move its own
    // compare-and-set (moved from where it is, created from the start, refused from
    // elsewhere or for a missing row from past the start).
    let names: Vec<String> = ["r", "s", "none"].map(String::from).to_vec();
    let loaded = store.load_all(&names).await.unwrap();
    let one_by_one = [
        store.load("r").await.unwrap(),
        store.load("s").await.unwrap(),
        Position::START,
    ];
    assert_eq!(loaded, one_by_one);
    let moves = vec![
        ("s".to_owned(), b, c),                 // from where it is: moves
        ("new".to_owned(), Position::START, a), // no row, from the start: created
        ("r".to_owned(), Position::START, c),   // from elsewhere: refused
        ("absent".to_owned(), a, b),            // no row, from past the start: refused
    ];
    assert_eq!(
        store.advance_all(&moves).await.unwrap(),
        [true, true, false, false]
    );
    let after = store
        .load_all(&["s", "new", "r", "absent"].map(String::from))
        .await
        .unwrap();
    assert_eq!(after, [c, a, one_by_one[0], Position::START]);
    assert!(store.advance_all(&[]).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_checkpoints_keep_the_contract() {
    contract(MemoryCheckpoints::new()).await;
    contract(Checkpoints::from(MemoryCheckpoints::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_checkpoints_keep_the_contract() {
    let pool = pool().await;
    let schema = format!("cp_{}", unique());
    let store = PgCheckpoints::new(pool.clone(), &schema).await.unwrap();
    // Creating it again (another service starting) is harmless.
    PgCheckpoints::new(pool.clone(), &schema).await.unwrap();
    contract(Checkpoints::from(store)).await;
    drop_schema(&pool, &schema).await;
}

#[tokio::test]
async fn pg_checkpoints_refuse_a_schema_name_that_is_not_an_identifier() {
    let pool = pool().await;
    for bad in ["", "Robert'); DROP TABLE x;--", "pg_catalog", "1abc", "a-b"] {
        assert!(
            PgCheckpoints::new(pool.clone(), bad).await.is_err(),
            "{bad:?} accepted"
        );
    }
}

/// Checkpoint tables of the two earlier shapes (a projection control table keyed by
/// name and version, a process store's keyed by process) take the one shape, their
/// positions kept.
#[tokio::test]
async fn pg_checkpoint_tables_of_earlier_releases_take_the_one_shape() {
    let pool = pool().await;
    let (control, process) = (format!("cpold_{}", unique()), format!("cpold_{}", unique()));
    let client = pool.get().await.unwrap();
    client
        .batch_execute(&format!(
            "CREATE SCHEMA \"{control}\";
             CREATE TABLE \"{control}\".checkpoints (name text NOT NULL, version integer NOT NULL,
                 commit_pos bigint NOT NULL DEFAULT 0, prepare_pos bigint NOT NULL DEFAULT 0,
                 updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (name, version));
             INSERT INTO \"{control}\".checkpoints VALUES ('sums', 1, 40, 41), ('sums', 2, 7, 8);
             CREATE SCHEMA \"{process}\";
             CREATE TABLE \"{process}\".checkpoints (process text PRIMARY KEY,
                 commit_pos bigint NOT NULL DEFAULT 0, prepare_pos bigint NOT NULL DEFAULT 0,
                 updated_at timestamptz NOT NULL DEFAULT now());
             INSERT INTO \"{process}\".checkpoints VALUES ('fulfil', 12, 13);"
        ))
        .await
        .unwrap();
    let old_control = PgCheckpoints::new(pool.clone(), &control).await.unwrap();
    assert_eq!(
        old_control.load("sums_v1").await.unwrap(),
        Position::new(40, 41)
    );
    assert_eq!(
        old_control.load("sums_v2").await.unwrap(),
        Position::new(7, 8)
    );
    let old_process = PgCheckpoints::new(pool.clone(), &process).await.unwrap();
    assert_eq!(
        old_process.load("fulfil").await.unwrap(),
        Position::new(12, 13)
    );
    // The converted tables work as any other, and converting again changes nothing.
    assert!(old_process
        .advance("fulfil", Position::new(12, 13), Position::new(20, 20))
        .await
        .unwrap());
    let again = PgCheckpoints::new(pool.clone(), &process).await.unwrap();
    assert_eq!(again.load("fulfil").await.unwrap(), Position::new(20, 20));
    for schema in [&control, &process] {
        let columns: Vec<String> = client
            .query(
                "SELECT column_name::text FROM information_schema.columns
                  WHERE table_schema = $1 AND table_name = 'checkpoints' ORDER BY ordinal_position",
                &[schema],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(columns, ["name", "commit_pos", "prepare_pos", "updated_at"]);
        drop_schema(&pool, schema).await;
    }
}

/// Counts reactions; fails on events whose amount is `fail_on_amount`.
struct Counting {
    seen: Arc<AtomicUsize>,
    fail_on_amount: i64,
}

impl Reaction for Counting {
    fn filter(&self) -> EventFilter {
        EventFilter::category("acct")
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), BoxError> {
        let amount = event.data.to_value()?["amount"].as_i64().unwrap_or(0);
        if amount == self.fail_on_amount {
            return Err(format!("refused amount {amount}").into());
        }
        self.seen.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A reactor whose reaction fails on the third event of a batch moves its checkpoint
/// past the two before it and no further, in memory and in PostgreSQL; a second reactor
/// that read the old checkpoint is fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reactor_moves_its_checkpoint_past_what_succeeded_and_no_further() {
    let pool = pool().await;
    let schema = format!("cpr_{}", unique());
    let stores: [Checkpoints; 2] = [
        MemoryCheckpoints::new().into(),
        PgCheckpoints::new(pool.clone(), &schema)
            .await
            .unwrap()
            .into(),
    ];
    for checkpoints in stores {
        let log = MemoryStore::new();
        for amount in [1, 2, -1, 4] {
            deposit(&log, "acct-1", amount).await;
        }
        let batch = tessera_core::EventReader::read_all(
            &log,
            tessera_core::ReadAll::after(Position::START, 10),
        )
        .await
        .unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let reaction = Counting {
            seen: Arc::clone(&seen),
            fail_on_amount: -1,
        };
        let reactor = Reactor::new("mailer", reaction, checkpoints.clone(), 1);
        match reactor.apply(Position::START, &batch).await {
            Err(ApplyError::Failed { applied: 2, .. }) => {}
            other => panic!("expected a failure after 2 events, got {other:?}"),
        }
        assert_eq!(seen.load(Ordering::SeqCst), 2);
        assert_eq!(reactor.checkpoint().await.unwrap(), batch[1].position);
        // A second runner still at the start is fenced before it reacts to anything.
        match reactor.apply(Position::START, &batch).await {
            Err(ApplyError::Fenced { .. }) => {}
            other => panic!("expected fenced, got {other:?}"),
        }
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    }
    drop_schema(&pool, &schema).await;
}

/// Holds the reaction to amount 1 until `release_after` other reactions finished.
struct Gated {
    finished: Arc<AtomicUsize>,
    release_after: usize,
    gate: Arc<tokio::sync::Notify>,
    fail_on_amount: i64,
    /// Whether the held reaction fails once released.
    held_fails: bool,
}

impl Reaction for Gated {
    fn filter(&self) -> EventFilter {
        EventFilter::category("acct")
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), BoxError> {
        let amount = event.data.to_value()?["amount"].as_i64().unwrap_or(0);
        if amount == 1 {
            self.gate.notified().await;
            if self.held_fails {
                return Err("the held reaction failed".into());
            }
            return Ok(());
        }
        let finished = self.finished.fetch_add(1, Ordering::SeqCst) + 1;
        if finished == self.release_after {
            self.gate.notify_one();
        }
        if amount == self.fail_on_amount {
            return Err(format!("refused amount {amount}").into());
        }
        Ok(())
    }
}

/// A reactor's window slides: two at once, a reaction still waiting does not stop the
/// ones behind it from starting (it waits for three of them, so a window held by its
/// first reaction never finishes), and the checkpoint moves past the whole batch only
/// once it is done. With a failure behind it, the checkpoint stops before the failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reaction_holds_its_slot_and_not_the_reactors_window() {
    let log = MemoryStore::new();
    for amount in [1, 2, 3, 4, -1, 6] {
        deposit(&log, "acct-1", amount).await;
    }
    let read = tessera_core::ReadAll::after(Position::START, 10);
    let batch = tessera_core::EventReader::read_all(&log, read)
        .await
        .unwrap();
    let finished = Arc::new(AtomicUsize::new(0));
    let reaction = |release_after, fail_on_amount, held_fails| Gated {
        finished: Arc::clone(&finished),
        release_after,
        gate: Arc::default(),
        fail_on_amount,
        held_fails,
    };
    let reactor = Reactor::new("w", reaction(3, 0, false), MemoryCheckpoints::new(), 2);
    let applied = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        reactor.apply(Position::START, &batch[..4]),
    )
    .await
    .expect("the reactions behind the slow one ran and released it");
    applied.unwrap();
    assert_eq!(reactor.checkpoint().await.unwrap(), batch[3].position);

    // The same with amount -1 failing, and the slow first reaction released by the
    // failure: 2, 3, 4 and -1 ran beside it, nothing starts after the failure (6 is not
    // reacted to), and the checkpoint covers the prefix before it.
    finished.store(0, Ordering::SeqCst);
    let reactor = Reactor::new("w", reaction(4, -1, false), MemoryCheckpoints::new(), 2);
    let applied = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        reactor.apply(Position::START, &batch),
    )
    .await
    .expect("the slow reaction was released");
    match applied {
        Err(ApplyError::Failed { applied: 4, .. }) => {}
        other => panic!("expected a failure after 4 events, got {other:?}"),
    }
    assert_eq!(reactor.checkpoint().await.unwrap(), batch[3].position);
    assert_eq!(
        finished.load(Ordering::SeqCst),
        4,
        "nothing started after the failure"
    );

    // The held first reaction fails after 2, 3 and 4 succeeded and -1 failed: nothing
    // is applied (the prefix, not the count of successes), and the failure reported is
    // the first one in the batch's order, not the first to happen.
    finished.store(0, Ordering::SeqCst);
    let reactor = Reactor::new("w", reaction(4, -1, true), MemoryCheckpoints::new(), 2);
    let applied = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        reactor.apply(Position::START, &batch),
    )
    .await
    .expect("the held reaction was released");
    match applied {
        Err(ApplyError::Failed { applied: 0, error }) => {
            assert_eq!(error.to_string(), "the held reaction failed");
        }
        other => panic!("expected a failure at the first event, got {other:?}"),
    }
    assert_eq!(reactor.checkpoint().await.unwrap(), Position::START);
}
