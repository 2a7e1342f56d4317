use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_core::testkit::Forward;
use tessera_core::{
    EventFilter, EventReader, MemoryStore, Position, ReadAll, ReaderLag, RecordedEvent, StoreError,
    Subscription, SubscriptionConfig,
};
use tessera_projections::{MemoryProjection, Runner, RunnerConfig, State};

use crate::support::{deposit, from_scratch, SumHandler, WAIT};

fn fast() -> RunnerConfig {
    RunnerConfig {
        batch_size: 64,
        max_attempts: 3,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        head_refresh: Duration::from_millis(1),
        idle_refresh: Duration::from_millis(50),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_up_then_goes_live_and_reports_status() {
    let store = MemoryStore::new();
    for i in 0..300 {
        deposit(&store, &format!("acct-{}", i % 7), 1).await;
    }
    deposit(&store, "other-1", 1000).await;
    let projection = MemoryProjection::new(SumHandler::new("sums"));
    let runner = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    let last = deposit(&store, "acct-0", 5).await;
    runner.wait_for(last, WAIT).await.expect("caught up");
    assert_eq!(projection.read(|m| m.sums.values().sum::<i64>()), 305);
    assert_eq!(projection.read(Clone::clone), from_scratch(&store).await);
    // A position of another category is reached too once nothing wanted lies before it.
    let other = deposit(&store, "other-2", 1).await;
    runner.wait_for(other, WAIT).await.expect("filtered wait");
    let mut watch = runner.watch();
    tokio::time::timeout(WAIT, watch.wait_for(|s| s.state == State::Live))
        .await
        .expect("live in time")
        .expect("status channel open");
    let status = runner.status();
    assert_eq!(status.checkpoint, last);
    assert_eq!(status.applied, 301);
    assert!(status.failure.is_none());
    let stopped = runner.stop().await;
    assert_eq!(stopped.state, State::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_event_stops_the_runner_and_a_fixed_handler_resumes_at_it() {
    let store = MemoryStore::new();
    deposit(&store, "acct-a", 10).await;
    let poison = deposit(&store, "acct-a", -1).await;
    let after = deposit(&store, "acct-a", 7).await;
    let handler = SumHandler::new("sums");
    let strict = handler.strict.clone();
    let projection = MemoryProjection::new(handler);
    let runner = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    let mut watch = runner.watch();
    tokio::time::timeout(WAIT, watch.wait_for(|s| s.state == State::Failed))
        .await
        .expect("failed in time")
        .expect("status channel open");
    let status = runner.status();
    let failure = status.failure.expect("failure reported");
    assert_eq!(failure.position, poison);
    assert_eq!(failure.event_type.as_deref(), Some("Deposited"));
    assert_eq!(failure.stream_id, "acct-a");
    assert!(
        failure.error.contains("negative amount -1"),
        "{}",
        failure.error
    );
    assert_eq!(failure.attempts, 3);
    // Nothing after the poison event was applied, and the checkpoint sits just before it.
    assert_eq!(projection.read(|m| m.sums["acct-a"]), 10);
    assert!(projection.position() < poison);
    assert!(runner
        .wait_for(after, Duration::from_millis(200))
        .await
        .is_err());
    drop(runner);

    strict.store(false, Ordering::SeqCst);
    let runner = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    runner.wait_for(after, WAIT).await.expect("resumed");
    assert_eq!(projection.read(|m| m.sums["acct-a"]), 16);
    assert!(projection.read(|m| m.applied.values().all(|n| *n == 1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_runner_restarts_in_place_and_fails_again_until_repaired() {
    let store = MemoryStore::new();
    deposit(&store, "acct-a", 10).await;
    let poison = deposit(&store, "acct-a", -1).await;
    let after = deposit(&store, "acct-a", 7).await;
    let handler = SumHandler::new("sums");
    let strict = handler.strict.clone();
    let projection = MemoryProjection::new(handler);
    let runner = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    let watch = runner.watch();
    // Failed, with a failure recorded after `since`.
    let failed = |since: std::time::SystemTime| {
        let mut watch = watch.clone();
        async move {
            tokio::time::timeout(
                WAIT,
                watch.wait_for(|s| s.state == State::Failed && s.updated_at > since),
            )
            .await
            .expect("failed in time")
            .expect("status channel open")
            .clone()
        }
    };
    let first = failed(std::time::SystemTime::UNIX_EPOCH).await;
    assert_eq!(first.failure.as_ref().map(|f| f.position), Some(poison));
    // Only a failed runner restarts.
    let lenient = SumHandler::new("other");
    lenient.strict.store(false, Ordering::SeqCst);
    let live = Runner::new(store.clone(), MemoryProjection::new(lenient), fast()).spawn();
    live.wait_for(after, WAIT)
        .await
        .expect("the other runner is live");
    assert!(matches!(
        live.restart(),
        Err(tessera_projections::RestartError::NotFailed { .. })
    ));

    // Not repaired: it reads the poison event again and stops on it again.
    runner.restart().expect("failed, so it restarts");
    let again = failed(first.updated_at).await;
    assert_eq!(again.failure.as_ref().map(|f| f.position), Some(poison));
    assert_eq!(projection.read(|m| m.sums["acct-a"]), 10);

    // Repaired: the same handle, restarted, applies the poison event and what follows once.
    strict.store(false, Ordering::SeqCst);
    runner.restart().expect("failed, so it restarts");
    runner
        .wait_for(after, WAIT)
        .await
        .expect("resumed in place");
    assert_eq!(projection.read(|m| m.sums["acct-a"]), 16);
    assert!(projection.read(|m| m.applied.values().all(|n| *n == 1)));
    let status = runner.status();
    assert!(
        status.failure.is_none() && status.last_error.is_none(),
        "{status:?}"
    );
    assert_eq!(runner.stop().await.state, State::Stopped);
}

/// A store over `inner` that cannot decode the event at `bad` (as a stored row with
/// malformed JSON reads on PostgreSQL) until it is cleared, and reports `held_back` as
/// its reader lag (as PostgreSQL does while a long transaction is open).
#[derive(Clone, Default)]
struct Faulty {
    inner: MemoryStore,
    bad: Arc<Mutex<Option<Position>>>,
    held_back: Arc<Mutex<ReaderLag>>,
}

impl Forward for Faulty {
    type Inner = MemoryStore;

    fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        let batch = self.inner.read_all(read).await?;
        let bad = *self.bad.lock().unwrap();
        match batch.iter().find(|e| Some(e.position) == bad) {
            Some(e) => Err(StoreError::Corrupt {
                stream: e.stream_id.to_string(),
                version: e.version.0,
                reason: "metadata is not an object".into(),
            }),
            None => Ok(batch),
        }
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> Subscription {
        Subscription::polling(
            self.clone(),
            after,
            filter,
            None,
            SubscriptionConfig::default(),
        )
    }

    async fn reader_lag(&self) -> Result<ReaderLag, StoreError> {
        Ok(*self.held_back.lock().unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_undecodable_stored_event_stops_the_runner_and_a_repair_resumes_at_it() {
    let inner = MemoryStore::new();
    let good = deposit(&inner, "acct-a", 10).await;
    let bad = deposit(&inner, "acct-b", 5).await;
    let after = deposit(&inner, "acct-a", 7).await;
    let store = Faulty {
        inner,
        bad: Arc::new(Mutex::new(Some(bad))),
        ..Faulty::default()
    };
    let projection = MemoryProjection::new(SumHandler::new("sums"));
    let runner = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    let mut watch = runner.watch();
    tokio::time::timeout(WAIT, watch.wait_for(|s| s.state == State::Failed))
        .await
        .expect("failed in time, not retrying forever")
        .expect("status channel open");
    let status = runner.status();
    let failure = status.failure.expect("failure reported");
    assert_eq!(
        (
            failure.stream_id.as_str(),
            failure.version,
            failure.event_id
        ),
        ("acct-b", 0, None)
    );
    assert!(
        failure.error.contains("metadata is not an object"),
        "{}",
        failure.error
    );
    assert_eq!(failure.attempts, 3);
    assert!(failure.position < bad && status.checkpoint < bad);
    assert!(
        projection.read(|m| !m.sums.contains_key("acct-b")),
        "nothing skipped past it"
    );
    drop(runner);

    *store.bad.lock().unwrap() = None;
    let runner = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    runner.wait_for(after, WAIT).await.expect("resumed");
    assert!(good < bad);
    assert_eq!(
        projection.read(|m| (m.sums["acct-a"], m.sums["acct-b"])),
        (17, 5)
    );
    assert!(projection.read(|m| m.applied.values().all(|n| *n == 1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_runner_reports_events_the_store_holds_back_from_readers() {
    let store = Faulty::default();
    let head = deposit(&store.inner, "acct-a", 1).await;
    let projection = MemoryProjection::new(SumHandler::new("sums"));
    let runner = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    // (A timeout too large for the clock is as good as forever, not a panic.)
    runner.wait_for(head, Duration::MAX).await.expect("live");
    let mut watch = runner.watch();
    tokio::time::timeout(WAIT, watch.wait_for(|s| s.state == State::Live))
        .await
        .expect("live in time")
        .expect("status channel open");
    assert_eq!(runner.status().held_back, ReaderLag::default());

    // A long transaction holds back three committed events: the runner is live (it has
    // everything readers can see) and says what waits behind the transaction.
    let held = ReaderLag {
        events_behind: 3,
        newest_committed: Some(Position::new(9, 9)),
        oldest_open_transaction: Some(Duration::from_secs(42)),
    };
    *store.held_back.lock().unwrap() = held;
    tokio::time::timeout(WAIT, watch.wait_for(|s| s.held_back == held))
        .await
        .expect("reported at the next refresh")
        .expect("status channel open");
    assert_eq!(
        (runner.status().state, runner.status().lag_events),
        (State::Live, 0)
    );
    *store.held_back.lock().unwrap() = ReaderLag::default();
    tokio::time::timeout(WAIT, watch.wait_for(|s| s.held_back.events_behind == 0))
        .await
        .expect("cleared at the next refresh")
        .expect("status channel open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_runners_of_one_projection_apply_each_event_once() {
    let store = MemoryStore::new();
    let projection = MemoryProjection::new(SumHandler::new("sums"));
    let a = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    let b = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut last = Position::START;
                for i in 0..100 {
                    last = deposit(&store, &format!("acct-{w}"), i).await;
                }
                last
            })
        })
        .collect();
    let mut last = Position::START;
    for w in writers {
        last = last.max(w.await.expect("writer"));
    }
    a.wait_for(last, WAIT).await.expect("a caught up");
    b.wait_for(last, WAIT).await.expect("b caught up");
    let model = projection.read(Clone::clone);
    assert_eq!(model.applied.len(), 800);
    assert!(
        model.applied.values().all(|n| *n == 1),
        "an event was applied twice"
    );
    assert_eq!(model, from_scratch(&store).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_runners_never_lose_or_double_apply() {
    let store = MemoryStore::new();
    let projection = MemoryProjection::new(SumHandler::new("sums"));
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..2000 {
                deposit(&store, &format!("acct-{}", i % 13), 1).await;
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    for round in 0..20 {
        let runner = Runner::new(store.clone(), projection.clone(), fast()).spawn();
        tokio::time::sleep(Duration::from_millis(1 + round % 3)).await;
        runner.abort().await;
        let model = projection.read(Clone::clone);
        assert!(model.applied.values().all(|n| *n == 1));
        // The checkpoint is never ahead of (or behind) the model: exactly the wanted
        // events up to it are applied.
        let upto = projection.position();
        let wanted = store
            .read_all(
                ReadAll::after(Position::START, usize::MAX).filter(EventFilter::category("acct")),
            )
            .await
            .expect("read_all")
            .into_iter()
            .filter(|e| e.position <= upto)
            .count();
        assert_eq!(
            model.applied.len(),
            wanted,
            "round {round}: model and checkpoint disagree"
        );
    }
    writer.await.expect("writer");
    let runner = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    let head = deposit(&store, "acct-x", 1).await;
    runner.wait_for(head, WAIT).await.expect("caught up");
    assert_eq!(projection.read(Clone::clone), from_scratch(&store).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuild_under_live_traffic_keeps_serving_and_matches_a_fresh_build() {
    let store = MemoryStore::new();
    for i in 0..3000 {
        deposit(&store, &format!("acct-{}", i % 11), 1).await;
    }
    let projection = MemoryProjection::new(SumHandler::new("sums"));
    let runner = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    let head = deposit(&store, "acct-0", 1).await;
    runner.wait_for(head, WAIT).await.expect("caught up");

    let traffic = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..500 {
                deposit(&store, &format!("acct-{}", i % 11), 2).await;
                tokio::task::yield_now().await;
            }
        })
    };
    let reader = {
        let projection = projection.clone();
        tokio::spawn(async move {
            // Reads answer throughout and never go back in time.
            let mut last_total = 0;
            for _ in 0..2000 {
                let total = projection.read(|m| m.sums.values().sum::<i64>());
                assert!(
                    total >= last_total,
                    "read model went back: {total} < {last_total}"
                );
                last_total = total;
                tokio::task::yield_now().await;
            }
        })
    };
    let mut reports = Vec::new();
    let done = projection
        .rebuild(&store, 256, |p| reports.push(p.clone()))
        .await
        .expect("rebuild");
    traffic.await.expect("traffic");
    reader.await.expect("reader");
    assert!(done >= 3001, "rebuild applied {done}");
    assert!(reports.last().is_some_and(|p| p.finished));
    assert!(reports.windows(2).all(|w| w[0].done <= w[1].done));
    let head = deposit(&store, "acct-0", 1).await;
    runner
        .wait_for(head, WAIT)
        .await
        .expect("runner continues after the switch");
    let model = projection.read(Clone::clone);
    assert_eq!(model.sums, from_scratch(&store).await.sums);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_filtered_runner_is_live_when_only_unwanted_events_follow() {
    let store = MemoryStore::new();
    let projection = MemoryProjection::new(SumHandler::new("sums"));
    let runner = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    deposit(&store, "acct-a", 1).await;
    let last = deposit(&store, "other-b", 1).await;
    runner.wait_for(last, WAIT).await.expect("reached");
    let mut watch = runner.watch();
    let live = tokio::time::timeout(
        WAIT,
        watch.wait_for(|s| s.state == State::Live && s.head == Some(last)),
    )
    .await
    .expect("live in time")
    .expect("status open")
    .clone();
    assert_eq!((live.lag_events, live.lag), (0, Duration::ZERO));
    runner.stop().await;
}
