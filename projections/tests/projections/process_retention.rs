//! Retention on both stores: a prune deletes the records of ended instances older than
//! its cutoff and nothing of running instances, pending commands or scheduled deadlines;
//! nothing it deleted is needed again (a redelivered event, a late dispatch outcome and
//! a deadline sweep have no second effect); a spawned worker prunes by itself. The
//! PostgreSQL cases, and what only PostgreSQL has (rows per table, concurrent prunes,
//! the migration), are in `process_retention_pg`.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::process::{InstanceId, Status};
use tessera_core::{EventReader, MemoryStore, Position, ReadAll};
use tessera_projections::process::{
    DeadlineState, MemoryProcess, OutboxEntry, ProcessConfig, ProcessStore, Pruned, Round, Worker,
};
use tessera_projections::{Runner, RunnerConfig};

use crate::process_cases as cases;
use crate::process_support::{
    emit, eventually, ledger, record_up_to, Cmd, Ev, Fulfil, LedgerDispatcher,
};

const HOUR: Duration = Duration::from_secs(3600);

fn placed(o: &str) -> Ev {
    Ev::Placed { order: o.into() }
}
fn reserved(o: &str) -> Ev {
    Ev::Reserved { order: o.into() }
}
fn charged(o: &str) -> Ev {
    Ev::Charged { order: o.into() }
}

/// Emits `events` and lets a runner record them; nothing is dispatched.
pub async fn record<S: ProcessStore<Fulfil>>(store: &MemoryStore, process: &S, events: Vec<Ev>) {
    let mut last = Position::START;
    for e in events {
        last = emit(store, e).await;
    }
    record_up_to(store, process, last).await;
}

/// One worker round.
async fn round<S: ProcessStore<Fulfil>>(process: &S, d: &LedgerDispatcher) -> Round {
    Worker::new(process.clone(), Arc::new(d.clone()), cases::config())
        .run_once()
        .await
        .expect("worker round")
}

async fn status<S: ProcessStore<Fulfil>>(process: &S, id: &str) -> (Status, u64) {
    let saga = process.instance(&id.into()).await.expect("load");
    let saga = saga.expect("exists");
    (saga.status, saga.version)
}

/// o1 completed (its deadline cancelled), o2 compensated after its deadline fired, o3
/// waits for payment (deadline scheduled), o4 has a command not yet sent, o5 completed
/// with all three commands still pending. A prune with a cutoff after all of it deletes
/// o1's, o2's and o5's records but o5's pending commands; nothing of o3 and o4.
pub async fn prunes_the_records_of_ended_instances_only<S: ProcessStore<Fulfil>>(process: S) {
    let store = MemoryStore::new();
    let d = LedgerDispatcher::new(&store);
    let early = process.clock().now();
    let o12 = vec![
        placed("o1"),
        reserved("o1"),
        charged("o1"),
        placed("o2"),
        reserved("o2"),
    ];
    record(&store, &process, o12).await;
    let stale: Vec<OutboxEntry<Cmd>> = process.pending(100).await.expect("pending");
    assert_eq!(stale.len(), 5);
    assert_eq!(round(&process, &d).await.dispatched, 5);
    let late = process.clock().now() + Duration::from_secs(31);
    assert_eq!(process.fire_due(late, 10).await.expect("fire"), 1, "o2's");
    assert_eq!(round(&process, &d).await.dispatched, 1, "o2's Release");
    record(&store, &process, vec![placed("o3"), reserved("o3")]).await;
    assert_eq!(round(&process, &d).await.dispatched, 2);
    let o45 = vec![placed("o4"), placed("o5"), reserved("o5"), charged("o5")];
    record(&store, &process, o45).await;
    let before: Vec<(Status, u64)> = {
        let mut all = Vec::new();
        for o in ["o1", "o2", "o3", "o4", "o5"] {
            all.push(status(&process, o).await);
        }
        all
    };
    let statuses: Vec<Status> = before.iter().map(|s| s.0).collect();
    use Status::{Completed, Pending};
    assert_eq!(
        statuses,
        [Completed, Completed, Pending, Pending, Completed]
    );

    // Nothing ended before `early`.
    let none = process.prune(early, 100).await.expect("prune");
    assert_eq!(none, Pruned::default());
    // Everything is older than an hour from now; in rounds of at most about 2 per table.
    let cutoff = process.clock().now() + HOUR;
    let (mut sum, mut rounds) = (Pruned::default(), 0);
    loop {
        let p = process.prune(cutoff, 2).await.expect("prune");
        if p.total() == 0 {
            break;
        }
        rounds += 1;
        sum.handled += p.handled;
        sum.outbox += p.outbox;
        sum.deadlines += p.deadlines;
    }
    let expected = Pruned {
        handled: 9,
        outbox: 6,
        deadlines: 3,
    };
    assert_eq!(
        sum, expected,
        "o1, o2 and o5: 3 handled each; o1's and o2's commands; o1's, o2's and o5's deadlines"
    );
    assert!(rounds >= 3, "bounded rounds: {rounds}");

    // Kept: pending commands (o4's, and o5's although it ended), o3's scheduled deadline,
    // and every instance.
    let pending: Vec<(String, &str)> = process
        .pending(100)
        .await
        .expect("pending")
        .iter()
        .map(|e| (e.issued.instance.to_string(), e.issued.command.name()))
        .collect();
    let names = [
        ("o4", "Reserve"),
        ("o5", "Reserve"),
        ("o5", "Charge"),
        ("o5", "Confirm"),
    ];
    let names: Vec<(String, &str)> = names.iter().map(|(o, c)| ((*o).to_owned(), *c)).collect();
    assert_eq!(pending, names);
    let deadlines = process.deadlines().await.expect("deadlines");
    let left: Vec<(InstanceId, DeadlineState)> = deadlines
        .iter()
        .map(|d| (d.instance.clone(), d.state))
        .collect();
    assert_eq!(left, [("o3".into(), DeadlineState::Scheduled)]);
    assert_eq!(process.instances(None).await.expect("list").len(), 5);

    // Nothing pruned is needed again. A redelivery of every event so far is skipped.
    let events = store
        .read_all(ReadAll::after(Position::START, 100))
        .await
        .expect("read");
    let at = process.checkpoint().await.expect("checkpoint");
    process.apply(at, &events).await.expect("redelivered");
    // Late outcomes of commands whose rows are gone change nothing.
    for e in &stale {
        process
            .mark_failed(&e.issued, "a late failure", None)
            .await
            .expect("late failure");
        process.mark_dispatched(&e.issued).await.expect("late mark");
    }
    // Only o3's deadline fires; o2's, fired and pruned, does not fire again.
    let far = process.clock().now() + HOUR;
    assert_eq!(process.fire_due(far, 10).await.expect("fire"), 1);
    let r = round(&process, &d).await;
    assert_eq!(r.dispatched, 5, "o4's Reserve, o5's three, o3's Release");
    for (i, o) in ["o1", "o2"].iter().enumerate() {
        assert_eq!(status(&process, o).await, before[i], "{o} unchanged");
    }
    assert_eq!(ledger(&store, "o1").await, ["Reserve", "Charge", "Confirm"]);
    assert_eq!(ledger(&store, "o2").await, ["Reserve", "Charge", "Release"]);
    assert_eq!(ledger(&store, "o3").await, ["Reserve", "Charge", "Release"]);
    assert_eq!(ledger(&store, "o5").await, ["Reserve", "Charge", "Confirm"]);
    assert!(process.pending(100).await.expect("pending").is_empty());
}

/// A spawned worker with a short retention prunes by itself: o1's cancelled deadline
/// goes once o1 has been over for `retention`; o3's scheduled one stays.
pub async fn a_spawned_worker_prunes_by_itself<S: ProcessStore<Fulfil>>(
    process: S,
    retention: Duration,
) {
    let store = MemoryStore::new();
    let d = LedgerDispatcher::new(&store);
    let config = ProcessConfig {
        retention: Some(retention),
        prune_interval: retention / 4,
        prune_batch: 2,
        ..cases::config()
    };
    let runner = Runner::new(store.clone(), process.clone(), RunnerConfig::default()).spawn();
    let worker = Worker::new(process.clone(), Arc::new(d.clone()), config).spawn();
    for e in [
        placed("o1"),
        reserved("o1"),
        charged("o1"),
        placed("o3"),
        reserved("o3"),
    ] {
        emit(&store, e).await;
    }
    eventually("dispatched", || async {
        ledger(&store, "o1").await.len() == 3 && ledger(&store, "o3").await.len() == 2
    })
    .await;
    eventually("o1's deadline pruned", || async {
        process.deadlines().await.expect("deadlines").len() == 1
    })
    .await;
    runner.stop().await;
    worker.stop().await;
    let deadlines = process.deadlines().await.expect("deadlines");
    assert_eq!(
        (deadlines[0].instance.as_str(), deadlines[0].state),
        ("o3", DeadlineState::Scheduled)
    );
    assert_eq!(status(&process, "o1").await.0, Status::Completed, "kept");
}

#[tokio::test(start_paused = true)]
async fn prunes_the_records_of_ended_instances_only_in_memory() {
    prunes_the_records_of_ended_instances_only(MemoryProcess::new(Fulfil)).await;
}

#[tokio::test(start_paused = true)]
async fn a_spawned_worker_prunes_by_itself_in_memory() {
    a_spawned_worker_prunes_by_itself(MemoryProcess::new(Fulfil), Duration::from_secs(2)).await;
}

/// Without a retention nothing is pruned.
#[tokio::test(start_paused = true)]
async fn no_retention_keeps_everything() {
    let store = MemoryStore::new();
    let process = MemoryProcess::new(Fulfil);
    let d = LedgerDispatcher::new(&store);
    record(
        &store,
        &process,
        vec![placed("o1"), reserved("o1"), charged("o1")],
    )
    .await;
    round(&process, &d).await;
    tokio::time::advance(HOUR * 24 * 365).await;
    let config = ProcessConfig {
        retention: None,
        ..cases::config()
    };
    let worker = Worker::new(process.clone(), Arc::new(d), config);
    assert_eq!(worker.prune().await.expect("prune"), Pruned::default());
    assert_eq!(process.deadlines().await.expect("deadlines").len(), 1);
    let config = ProcessConfig {
        retention: Some(HOUR),
        ..cases::config()
    };
    let worker = Worker::new(
        process.clone(),
        Arc::new(LedgerDispatcher::new(&store)),
        config,
    );
    assert_eq!(worker.prune().await.expect("prune").deadlines, 1);
}

/// Memory: 100 due deadlines among 10,000 fire, and only they, read from the due index
/// (its unit tests check that it holds exactly the scheduled deadlines).
#[tokio::test(start_paused = true)]
async fn memory_fires_the_due_deadlines_among_ten_thousand() {
    let store = MemoryStore::new();
    let process = MemoryProcess::new(Fulfil);
    let orders = |r: std::ops::Range<u32>| -> Vec<Ev> {
        r.flat_map(|i| {
            let o = format!("o{i}");
            [placed(&o), reserved(&o)]
        })
        .collect()
    };
    record(&store, &process, orders(0..100)).await;
    tokio::time::advance(Duration::from_secs(20)).await;
    record(&store, &process, orders(100..10_000)).await;
    let deadlines = process.deadlines().await.expect("deadlines");
    assert_eq!(deadlines.len(), 10_000);
    // The first hundred are due 30 s after they were scheduled, the rest 20 s later.
    let now = process.clock().now() + Duration::from_secs(11);
    assert_eq!(process.fire_due(now, 64).await.expect("fire"), 64);
    assert_eq!(process.fire_due(now, 64).await.expect("fire"), 36);
    assert_eq!(process.fire_due(now, 64).await.expect("fire"), 0);
    let compensating = process
        .instances(Some(Status::Compensating))
        .await
        .expect("list");
    let mut ids: Vec<u32> = compensating
        .iter()
        .map(|i| i.id.as_str()[1..].parse().expect("number"))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..100).collect::<Vec<u32>>());
    let later = now + Duration::from_secs(20);
    assert_eq!(process.fire_due(later, 20_000).await.expect("fire"), 9_900);
}
