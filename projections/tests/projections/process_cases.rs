//! Runtime cases every process store must pass; `process_memory` and `process_postgres`
//! run them. `reopen` makes a new store over the same durable contents: a restart.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tessera_core::process::{InstanceId, Status, StepState};
use tessera_core::{EventReader, MemoryStore, Position, ReadAll};
use tessera_projections::process::{Backlog, DeadlineState, ProcessConfig, ProcessStore, Worker};
use tessera_projections::{Runner, RunnerConfig};

use crate::process_support::{
    emit, eventually, ledger, Cmd, Ev, Fulfil, LedgerDispatcher, PAYMENT_WINDOW,
};

const WAIT: Duration = Duration::from_secs(20);

pub fn config() -> ProcessConfig {
    ProcessConfig {
        max_attempts: 3,
        base_backoff: Duration::from_millis(2),
        max_backoff: Duration::from_millis(10),
        poll_interval: Duration::from_millis(10),
        batch: 64,
        dispatch_timeout: Duration::from_secs(30),
        max_concurrent_dispatches: 4,
        ..ProcessConfig::default()
    }
}

fn runner_config() -> RunnerConfig {
    RunnerConfig {
        batch_size: 16,
        max_attempts: 3,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        head_refresh: Duration::from_millis(1),
        idle_refresh: Duration::from_millis(50),
    }
}

fn o1() -> InstanceId {
    "o1".into()
}

/// Emits `events`, lets a runner record them, then runs one worker round.
async fn play<S: ProcessStore<Fulfil>>(
    store: &MemoryStore,
    process: &S,
    d: &LedgerDispatcher,
    events: Vec<Ev>,
) {
    let mut last = Position::START;
    for e in events {
        last = emit(store, e).await;
    }
    let runner = Runner::new(store.clone(), process.clone(), runner_config()).spawn();
    runner.wait_for(last, WAIT).await.expect("recorded");
    runner.stop().await;
    Worker::new(process.clone(), Arc::new(d.clone()), config())
        .run_once()
        .await
        .expect("worker round");
}

pub async fn duplicate_delivery_issues_one_command<S: ProcessStore<Fulfil>>(process: S) {
    let store = MemoryStore::new();
    emit(&store, Ev::Placed { order: "o1".into() }).await;
    let events = store
        .read_all(ReadAll::after(Position::START, 10))
        .await
        .expect("read");
    let e = events[0].clone();
    process
        .apply(Position::START, &events)
        .await
        .expect("first delivery");
    process
        .apply(e.position, std::slice::from_ref(&e))
        .await
        .expect("delivered again");
    process
        .apply(e.position, &[e.clone(), e.clone()])
        .await
        .expect("twice in a batch");
    let d = LedgerDispatcher::new(&store);
    let round = Worker::new(process.clone(), Arc::new(d.clone()), config())
        .run_once()
        .await
        .expect("round");
    assert_eq!(round.dispatched, 1);
    assert_eq!(d.attempts(), ["Reserve"]);
    assert_eq!(ledger(&store, "o1").await, ["Reserve"]);
    assert!(process.pending(10).await.expect("pending").is_empty());
    assert_eq!(
        process
            .instance(&o1())
            .await
            .expect("load")
            .expect("exists")
            .version,
        1
    );
}

pub async fn crash_before_dispatch_redispatches_once<S, F, Fut>(process: S, reopen: F)
where
    S: ProcessStore<Fulfil>,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = MemoryStore::new();
    let at = emit(&store, Ev::Placed { order: "o1".into() }).await;
    // Recorded, then the process dies before any dispatch.
    let runner = Runner::new(store.clone(), process.clone(), runner_config()).spawn();
    runner.wait_for(at, WAIT).await.expect("recorded");
    runner.abort().await;
    assert_eq!(process.pending(10).await.expect("pending").len(), 1);
    // Restarted: the command is dispatched, lands, and the process dies before marking it.
    let process = reopen().await;
    let mut hanging = LedgerDispatcher::new(&store);
    hanging.hang_after_landing = true;
    let worker = Worker::new(process.clone(), Arc::new(hanging), config()).spawn();
    eventually("the command landed", || async {
        ledger(&store, "o1").await.len() == 1
    })
    .await;
    worker.abort().await;
    assert_eq!(
        process.pending(10).await.expect("pending").len(),
        1,
        "not marked dispatched"
    );
    // Restarted again: re-dispatched with the same idempotency key, it lands once.
    let process = reopen().await;
    let d = LedgerDispatcher::new(&store);
    let worker = Worker::new(process.clone(), Arc::new(d.clone()), config()).spawn();
    eventually("outbox drained", || async {
        process.pending(10).await.expect("pending").is_empty()
    })
    .await;
    worker.stop().await;
    assert_eq!(d.attempts(), ["Reserve"], "re-dispatched");
    assert_eq!(ledger(&store, "o1").await, ["Reserve"], "one set of events");
}

pub async fn deadline_survives_restart_and_fires_once<S, F, Fut>(process: S, reopen: F)
where
    S: ProcessStore<Fulfil>,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = MemoryStore::new();
    let d = LedgerDispatcher::new(&store);
    let events = vec![
        Ev::Placed { order: "o1".into() },
        Ev::Reserved { order: "o1".into() },
    ];
    play(&store, &process, &d, events).await;
    let deadlines = process.deadlines().await.expect("deadlines");
    assert_eq!(deadlines.len(), 1);
    assert_eq!(deadlines[0].state, DeadlineState::Scheduled);
    let due = deadlines[0].due_at;
    drop(process);
    // Two restarted nodes race for it once it is due.
    let (a, b) = (reopen().await, reopen().await);
    assert_eq!(
        a.fire_due(due - Duration::from_millis(1), 10)
            .await
            .expect("early"),
        0
    );
    let later = due + Duration::from_secs(1);
    let (x, y) = tokio::join!(a.fire_due(later, 10), b.fire_due(later, 10));
    assert_eq!(x.expect("fire") + y.expect("fire"), 1, "fired exactly once");
    assert_eq!(
        a.fire_due(later + PAYMENT_WINDOW, 10).await.expect("again"),
        0
    );
    Worker::new(a.clone(), Arc::new(d.clone()), config())
        .run_once()
        .await
        .expect("round");
    assert_eq!(ledger(&store, "o1").await, ["Reserve", "Charge", "Release"]);
    let saga = a.instance(&o1()).await.expect("load").expect("exists");
    assert_eq!(
        (saga.status, saga.reason.as_deref()),
        (Status::Completed, Some("payment not answered"))
    );
    let states: Vec<DeadlineState> = a
        .deadlines()
        .await
        .expect("deadlines")
        .iter()
        .map(|d| d.state)
        .collect();
    assert_eq!(states, [DeadlineState::Fired]);
}

pub async fn deadline_cancelled_by_the_awaited_event_never_fires<S: ProcessStore<Fulfil>>(
    process: S,
) {
    let store = MemoryStore::new();
    let d = LedgerDispatcher::new(&store);
    let o = || "o1".to_owned();
    play(
        &store,
        &process,
        &d,
        vec![
            Ev::Placed { order: o() },
            Ev::Reserved { order: o() },
            Ev::Charged { order: o() },
        ],
    )
    .await;
    let far = process.clock().now() + PAYMENT_WINDOW * 10;
    assert_eq!(process.fire_due(far, 10).await.expect("fire"), 0);
    let states: Vec<DeadlineState> = process
        .deadlines()
        .await
        .expect("deadlines")
        .iter()
        .map(|d| d.state)
        .collect();
    assert_eq!(states, [DeadlineState::Cancelled]);
    assert_eq!(ledger(&store, "o1").await, ["Reserve", "Charge", "Confirm"]);
    let saga = process
        .instance(&o1())
        .await
        .expect("load")
        .expect("exists");
    assert_eq!(saga.status, Status::Completed);
}

pub async fn compensation_runs_in_reverse_order<S: ProcessStore<Fulfil>>(process: S) {
    let store = MemoryStore::new();
    let d = LedgerDispatcher::new(&store);
    let o = || "o1".to_owned();
    let events = vec![
        Ev::Placed { order: o() },
        Ev::Reserved { order: o() },
        Ev::Charged { order: o() },
    ];
    play(&store, &process, &d, events).await;
    assert_eq!(
        process
            .instances(Some(Status::Completed))
            .await
            .expect("list")
            .len(),
        1
    );
    play(&store, &process, &d, vec![Ev::Cancelled { order: o() }]).await;
    assert_eq!(
        ledger(&store, "o1").await,
        ["Reserve", "Charge", "Confirm", "Refund", "Release"]
    );
    let saga = process
        .instance(&o1())
        .await
        .expect("load")
        .expect("exists");
    assert_eq!(
        (saga.status, saga.reason.as_deref()),
        (Status::Completed, Some("order cancelled"))
    );
    assert!(saga.steps.iter().all(|s| s.state == StepState::Compensated));
}

pub async fn failing_compensation_ends_failed_with_the_reason<S: ProcessStore<Fulfil>>(process: S) {
    let store = MemoryStore::new();
    let d = LedgerDispatcher::new(&store);
    d.failing.lock().expect("lock").insert("Refund");
    let o = || "o1".to_owned();
    let events = vec![
        Ev::Placed { order: o() },
        Ev::Reserved { order: o() },
        Ev::Charged { order: o() },
        Ev::Cancelled { order: o() },
    ];
    play(&store, &process, &d, events).await;
    let worker = Worker::new(process.clone(), Arc::new(d.clone()), config()).spawn();
    eventually("the instance failed", || async {
        process
            .instances(Some(Status::Failed))
            .await
            .expect("list")
            .len()
            == 1
    })
    .await;
    worker.stop().await;
    let saga = process
        .instance(&o1())
        .await
        .expect("load")
        .expect("exists");
    assert_eq!(saga.status, Status::Failed);
    assert_eq!(
        saga.reason.as_deref(),
        Some("compensation of step \"charge\" failed: transient dispatch failure: Refund service unavailable")
    );
    let refunds = d.attempts().iter().filter(|a| *a == "Refund").count();
    assert_eq!(refunds, 3, "retried up to max_attempts");
    assert!(
        !d.attempts().iter().any(|a| a == "Release"),
        "no compensation after the failed one"
    );
    assert_eq!(ledger(&store, "o1").await, ["Reserve", "Charge", "Confirm"]);
    assert!(process.pending(10).await.expect("pending").is_empty());
}

pub async fn rejected_command_is_handed_to_the_process_manager<S: ProcessStore<Fulfil>>(
    process: S,
) {
    let store = MemoryStore::new();
    let d = LedgerDispatcher::new(&store);
    d.rejecting.lock().expect("lock").insert("Charge");
    let o = || "o1".to_owned();
    play(
        &store,
        &process,
        &d,
        vec![Ev::Placed { order: o() }, Ev::Reserved { order: o() }],
    )
    .await;
    // Charge was rejected (not retried); the saga compensated, and Release went out
    // in the same worker round.
    assert_eq!(d.attempts(), ["Reserve", "Charge", "Release"]);
    assert_eq!(ledger(&store, "o1").await, ["Reserve", "Release"]);
    let saga = process
        .instance(&o1())
        .await
        .expect("load")
        .expect("exists");
    assert_eq!(saga.status, Status::Completed);
    assert_eq!(
        saga.reason.as_deref(),
        Some("command rejected: Charge refused")
    );
    let states: Vec<DeadlineState> = process
        .deadlines()
        .await
        .expect("deadlines")
        .iter()
        .map(|d| d.state)
        .collect();
    assert_eq!(
        states,
        [DeadlineState::Cancelled],
        "an ended instance has no deadline"
    );
}

/// The backlog counts the commands waiting in the outbox and those retried, and dates
/// the oldest; it empties once they are dispatched.
pub async fn backlog_counts_waiting_and_retrying_commands<S: ProcessStore<Fulfil>>(process: S) {
    let store = MemoryStore::new();
    assert_eq!(
        process.backlog().await.expect("backlog"),
        Backlog::default()
    );
    let before = std::time::SystemTime::now() - Duration::from_secs(1);
    emit(&store, Ev::Placed { order: "o1".into() }).await;
    let at = emit(&store, Ev::Placed { order: "o2".into() }).await;
    let runner = Runner::new(store.clone(), process.clone(), runner_config()).spawn();
    runner.wait_for(at, WAIT).await.expect("recorded");
    runner.stop().await;
    let backlog = process.backlog().await.expect("backlog");
    assert_eq!((backlog.waiting, backlog.retrying), (2, 0), "{backlog:?}");
    assert_eq!(
        process.waiting().await.expect("waiting"),
        2,
        "counted alone"
    );
    assert_eq!(backlog.instances.pending, 2, "{backlog:?}");
    assert_eq!(backlog.deadlines_scheduled, 0, "{backlog:?}");
    let oldest = backlog.oldest.expect("an oldest command");
    assert!(
        oldest >= before && oldest <= std::time::SystemTime::now(),
        "{backlog:?}"
    );
    let d = LedgerDispatcher::new(&store);
    d.failing.lock().expect("lock").insert("Reserve");
    let worker = Worker::new(process.clone(), Arc::new(d.clone()), config());
    let round = worker.run_once().await.expect("round");
    assert_eq!(round.failed, 2, "{round:?}");
    let backlog = process.backlog().await.expect("backlog");
    assert_eq!((backlog.waiting, backlog.retrying), (2, 2), "{backlog:?}");
    assert_eq!(backlog.oldest, Some(oldest), "still the same oldest");
    d.failing.lock().expect("lock").clear();
    eventually("the outbox drains", || async {
        worker.run_once().await.expect("round");
        process.backlog().await.expect("backlog").waiting == 0
    })
    .await;
    let backlog = process.backlog().await.expect("backlog");
    assert_eq!(
        (backlog.waiting, backlog.retrying, backlog.oldest),
        (0, 0, None)
    );
    assert_eq!(
        process.waiting().await.expect("waiting"),
        0,
        "counted alone"
    );
    // A reservation schedules the payment deadline (not due for a while); a charge
    // completes the instance and cancels it.
    let at = emit(&store, Ev::Reserved { order: "o1".into() }).await;
    let runner = Runner::new(store.clone(), process.clone(), runner_config()).spawn();
    runner.wait_for(at, WAIT).await.expect("recorded");
    let backlog = process.backlog().await.expect("backlog");
    assert_eq!(
        (backlog.deadlines_scheduled, backlog.deadlines_due),
        (1, 0),
        "{backlog:?}"
    );
    let at = emit(&store, Ev::Charged { order: "o1".into() }).await;
    runner.wait_for(at, WAIT).await.expect("recorded");
    runner.stop().await;
    let backlog = process.backlog().await.expect("backlog");
    assert_eq!(backlog.deadlines_scheduled, 0, "{backlog:?}");
    assert_eq!(
        (backlog.instances.pending, backlog.instances.completed),
        (1, 1),
        "{backlog:?}"
    );
}

/// What a process store holds, comparable across stores: each instance's pending
/// commands in order (the order guaranteed: per instance, not across instances),
/// instances by id, deadlines by instance and key.
type Snapshot = (
    std::collections::BTreeMap<String, Vec<(uuid::Uuid, Cmd)>>,
    Vec<(String, u64, Status, Option<String>)>,
    Vec<(uuid::Uuid, String, String, DeadlineState)>,
);

async fn snapshot<S: ProcessStore<Fulfil>>(process: &S) -> Snapshot {
    let pending = process.pending(100).await.expect("pending");
    let mut by_instance = std::collections::BTreeMap::<String, Vec<_>>::new();
    for e in pending {
        by_instance
            .entry(e.issued.command.order().to_owned())
            .or_default()
            .push((e.issued.id.0, e.issued.command));
    }
    let mut instances: Vec<_> = process
        .instances(None)
        .await
        .expect("instances")
        .into_iter()
        .map(|i| (i.id.to_string(), i.version, i.status, i.reason))
        .collect();
    instances.sort_by(|a, b| a.0.cmp(&b.0));
    let mut deadlines: Vec<_> = process
        .deadlines()
        .await
        .expect("deadlines")
        .into_iter()
        .map(|d| (d.id, d.instance.to_string(), d.key, d.state))
        .collect();
    deadlines.sort_by(|a, b| (&a.1, &a.2, a.0).cmp(&(&b.1, &b.2, b.0)));
    (by_instance, instances, deadlines)
}

/// One batch in which several instances react several times each (a deadline scheduled
/// and cancelled, a compensation, an event for no instance) leaves `batched` exactly as
/// `single` is left by the same events one batch each: each instance's commands pending
/// in the same order, the same instances, the same deadlines in the same states.
pub async fn one_batch_leaves_what_one_event_at_a_time_leaves<A, B>(batched: A, single: B)
where
    A: ProcessStore<Fulfil>,
    B: ProcessStore<Fulfil>,
{
    let store = MemoryStore::new();
    let o = |n: &str| n.to_owned();
    for e in [
        Ev::Placed { order: o("o1") },
        Ev::Placed { order: o("o2") },
        Ev::Reserved { order: o("o1") },
        Ev::Placed { order: o("o3") },
        Ev::Reserved { order: o("o2") },
        Ev::Charged { order: o("o1") },
        Ev::Reserved { order: o("o4") },
        Ev::Declined { order: o("o2") },
        Ev::Reserved { order: o("o3") },
    ] {
        emit(&store, e).await;
    }
    let events = store
        .read_all(ReadAll::after(Position::START, 100))
        .await
        .expect("read");
    batched
        .apply(Position::START, &events)
        .await
        .expect("one batch");
    let mut at = Position::START;
    for e in &events {
        single
            .apply(at, std::slice::from_ref(e))
            .await
            .expect("one event");
        at = e.position;
    }
    let (a, b) = (snapshot(&batched).await, snapshot(&single).await);
    assert_eq!(a, b);
    // And what they hold is what the saga says: o1 completed with its deadline
    // cancelled, o2 compensating (its release queued after its charge), o3 waiting for
    // payment, no o4.
    let (pending, instances, deadlines) = a;
    let statuses: Vec<(&str, Status)> = instances.iter().map(|i| (i.0.as_str(), i.2)).collect();
    assert_eq!(statuses.len(), 3, "{instances:?}");
    assert_eq!(statuses[0], ("o1", Status::Completed));
    assert_eq!(statuses[1], ("o2", Status::Compensating));
    assert_eq!(statuses[2], ("o3", Status::Pending));
    let deadline_states: Vec<(&str, DeadlineState)> =
        deadlines.iter().map(|d| (d.1.as_str(), d.3)).collect();
    assert_eq!(
        deadline_states,
        [
            ("o1", DeadlineState::Cancelled),
            ("o2", DeadlineState::Scheduled),
            ("o3", DeadlineState::Scheduled)
        ]
    );
    let commands = |n: &str| -> Vec<Cmd> { pending[n].iter().map(|p| p.1.clone()).collect() };
    assert_eq!(
        commands("o1"),
        [
            Cmd::Reserve(o("o1")),
            Cmd::Charge(o("o1")),
            Cmd::Confirm(o("o1"))
        ]
    );
    assert_eq!(
        commands("o2"),
        [
            Cmd::Reserve(o("o2")),
            Cmd::Charge(o("o2")),
            Cmd::Release(o("o2"))
        ]
    );
}
