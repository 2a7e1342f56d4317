//! The in-memory process store: the shared runtime cases, and the worker firing a
//! deadline on its own in paused time.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::process::Status;
use tessera_core::MemoryStore;
use tessera_projections::process::{DeadlineState, MemoryProcess, ProcessStore, Worker};
use tessera_projections::{Runner, RunnerConfig};

use crate::process_cases as cases;
use crate::process_support::{emit, eventually, ledger, Ev, Fulfil, LedgerDispatcher};

#[tokio::test(start_paused = true)]
async fn duplicate_delivery_issues_one_command() {
    cases::duplicate_delivery_issues_one_command(MemoryProcess::new(Fulfil)).await;
}

#[tokio::test(start_paused = true)]
async fn crash_before_dispatch_redispatches_once() {
    let process = MemoryProcess::new(Fulfil);
    let again = process.clone();
    cases::crash_before_dispatch_redispatches_once(process, || {
        let p = again.clone();
        async move { p }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn deadline_survives_restart_and_fires_once() {
    let process = MemoryProcess::new(Fulfil);
    let again = process.clone();
    cases::deadline_survives_restart_and_fires_once(process, || {
        let p = again.clone();
        async move { p }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn deadline_cancelled_by_the_awaited_event_never_fires() {
    cases::deadline_cancelled_by_the_awaited_event_never_fires(MemoryProcess::new(Fulfil)).await;
}

#[tokio::test(start_paused = true)]
async fn compensation_runs_in_reverse_order() {
    cases::compensation_runs_in_reverse_order(MemoryProcess::new(Fulfil)).await;
}

#[tokio::test(start_paused = true)]
async fn failing_compensation_ends_failed_with_the_reason() {
    cases::failing_compensation_ends_failed_with_the_reason(MemoryProcess::new(Fulfil)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_counts_waiting_and_retrying_commands() {
    cases::backlog_counts_waiting_and_retrying_commands(MemoryProcess::new(Fulfil)).await;
}

#[tokio::test(start_paused = true)]
async fn rejected_command_is_handed_to_the_process_manager() {
    cases::rejected_command_is_handed_to_the_process_manager(MemoryProcess::new(Fulfil)).await;
}

/// End to end in paused time: the spawned worker fires the deadline by itself after the
/// runner and worker were restarted, once.
#[tokio::test(start_paused = true)]
async fn spawned_worker_fires_a_deadline_after_a_restart() {
    let store = MemoryStore::new();
    let process = MemoryProcess::new(Fulfil);
    let d = LedgerDispatcher::new(&store);
    let runner = Runner::new(store.clone(), process.clone(), RunnerConfig::default()).spawn();
    let worker = Worker::new(process.clone(), Arc::new(d.clone()), cases::config()).spawn();
    emit(&store, Ev::Placed { order: "o1".into() }).await;
    emit(&store, Ev::Reserved { order: "o1".into() }).await;
    eventually("charged", || async {
        ledger(&store, "o1").await.len() == 2
    })
    .await;
    runner.stop().await;
    worker.stop().await;
    // Restart, with two workers.
    let runner = Runner::new(store.clone(), process.clone(), RunnerConfig::default()).spawn();
    let w1 = Worker::new(process.clone(), Arc::new(d.clone()), cases::config()).spawn();
    let w2 = Worker::new(process.clone(), Arc::new(d.clone()), cases::config()).spawn();
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(
        ledger(&store, "o1").await,
        ["Reserve", "Charge"],
        "not due yet"
    );
    eventually("released", || async {
        ledger(&store, "o1").await.len() == 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(ledger(&store, "o1").await, ["Reserve", "Charge", "Release"]);
    let fired: Vec<DeadlineState> = process
        .deadlines()
        .await
        .expect("deadlines")
        .iter()
        .map(|d| d.state)
        .collect();
    assert_eq!(fired, [DeadlineState::Fired]);
    let saga = process
        .instance(&"o1".into())
        .await
        .expect("load")
        .expect("exists");
    assert_eq!(saga.status, Status::Completed);
    runner.stop().await;
    w1.stop().await;
    w2.stop().await;
}

/// A dispatch that never answers is cut off by the dispatch timeout and retried; the
/// retry lands once (idempotency key); when retries run out the saga is told.
#[tokio::test(start_paused = true)]
async fn a_dispatch_that_never_answers_times_out() {
    let store = MemoryStore::new();
    let process = MemoryProcess::new(Fulfil);
    let mut d = LedgerDispatcher::new(&store);
    d.hang_after_landing = true;
    let config = tessera_projections::process::ProcessConfig {
        max_attempts: 2,
        dispatch_timeout: Duration::from_secs(1),
        ..cases::config()
    };
    let runner = Runner::new(store.clone(), process.clone(), RunnerConfig::default()).spawn();
    let worker = Worker::new(process.clone(), Arc::new(d.clone()), config).spawn();
    emit(&store, Ev::Placed { order: "o1".into() }).await;
    eventually("the saga gave up", || async {
        let saga = process.instance(&"o1".into()).await.expect("load");
        saga.is_some_and(|s| s.status == Status::Completed)
    })
    .await;
    runner.stop().await;
    worker.stop().await;
    assert_eq!(d.attempts(), ["Reserve", "Reserve"]);
    assert_eq!(ledger(&store, "o1").await, ["Reserve"], "landed once");
    let saga = process
        .instance(&"o1".into())
        .await
        .expect("load")
        .expect("exists");
    assert_eq!(
        saga.reason.as_deref(),
        Some("transient dispatch failure: no answer within 1s")
    );
}

#[tokio::test]
async fn one_batch_leaves_what_one_event_at_a_time_leaves() {
    cases::one_batch_leaves_what_one_event_at_a_time_leaves(
        MemoryProcess::new(Fulfil),
        MemoryProcess::new(Fulfil),
    )
    .await;
}
