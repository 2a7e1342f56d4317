//! Metrics: a runner counts the events it applies and reports its lag, labelled with its
//! name; a named guard reports its breaker's state and its bulkhead's refusals; a
//! rebuild reports its progress.

use std::collections::HashMap;
use std::time::Duration;

use metrics::{Key, Label};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};
use tessera_core::MemoryStore;
use tessera_projections::resilience::{
    BreakerConfig, CallError, Resilience, ResilienceConfig, RetryConfig,
};
use tessera_projections::{MemoryProjection, Runner, RunnerConfig, State};

use crate::support::{deposit, SumHandler, WAIT};

/// One reading of every metric (reading takes the values: counters and gauges start
/// again from zero, histograms from no samples).
struct Reading(HashMap<CompositeKey, DebugValue>);

impl Reading {
    fn of(snapshotter: &Snapshotter) -> Self {
        let all = snapshotter.snapshot().into_hashmap();
        Self(all.into_iter().map(|(k, (_, _, v))| (k, v)).collect())
    }

    /// The metric of `kind` named `name` with the one label `label`.
    fn take(
        &mut self,
        kind: MetricKind,
        name: &'static str,
        label: (&'static str, &'static str),
    ) -> DebugValue {
        let key = Key::from_parts(name, vec![Label::from_static_parts(label.0, label.1)]);
        match self.0.remove(&CompositeKey::new(kind, key)) {
            Some(value) => value,
            None => panic!("no {name} {label:?} in {:?}", self.0.keys()),
        }
    }

    fn gauge(&mut self, name: &'static str, label: (&'static str, &'static str)) -> f64 {
        match self.take(MetricKind::Gauge, name, label) {
            DebugValue::Gauge(v) => v.into_inner(),
            other => panic!("{name} is {other:?}"),
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_runner_counts_what_it_applies_and_reports_its_lag() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // This thread's recorder: the runner's task runs on it too.
    let _local = metrics::set_default_local_recorder(&recorder);
    let store = MemoryStore::new();
    let mut last = None;
    for i in 0..10 {
        last = Some(deposit(&store, &format!("acct-{}", i % 3), 1).await);
    }
    let projection = MemoryProjection::new(SumHandler::new("sums"));
    let config = RunnerConfig {
        batch_size: 4,
        head_refresh: Duration::from_millis(1),
        ..RunnerConfig::default()
    };
    let runner = Runner::new(store.clone(), projection.clone(), config).spawn();
    runner
        .wait_for(last.unwrap(), WAIT)
        .await
        .expect("caught up");
    let mut watch = runner.watch();
    tokio::time::timeout(WAIT, watch.wait_for(|s| s.state == State::Live))
        .await
        .expect("live in time")
        .expect("status channel open");
    let applied = runner.stop().await.applied;
    assert_eq!(applied, 10);

    let mut seen = Reading::of(&snapshotter);
    let runner = ("runner", "sums");
    let counted = seen.take(
        MetricKind::Counter,
        "tessera_runner_events_applied_total",
        runner,
    );
    assert!(matches!(counted, DebugValue::Counter(10)), "{counted:?}");
    match seen.take(MetricKind::Histogram, "tessera_runner_batch_size", runner) {
        DebugValue::Histogram(sizes) => {
            assert_eq!(sizes.iter().map(|s| s.into_inner()).sum::<f64>(), 10.0);
            assert!(sizes.iter().all(|s| s.into_inner() <= 4.0), "{sizes:?}");
        }
        other => panic!("batch sizes are {other:?}"),
    }
    assert_eq!(seen.gauge("tessera_runner_lag_events", runner), 0.0);
    assert_eq!(seen.gauge("tessera_runner_lag_seconds", runner), 0.0);

    // A rebuild of the projection reports its progress under the projection's name.
    projection
        .rebuild(&store, 4, |_| {})
        .await
        .expect("rebuilt");
    let mut seen = Reading::of(&snapshotter);
    let projection = ("projection", "sums");
    assert_eq!(seen.gauge("tessera_rebuild_events_done", projection), 10.0);
    assert_eq!(seen.gauge("tessera_rebuild_events_total", projection), 10.0);
}

#[tokio::test(start_paused = true)]
async fn a_named_guard_reports_its_breaker_state_and_bulkhead_refusals() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let config = ResilienceConfig {
        retry: RetryConfig {
            max_attempts: 1,
            ..RetryConfig::default()
        },
        breaker: BreakerConfig {
            failure_threshold: 2,
            cool_down: Duration::from_secs(10),
            success_threshold: 1,
        },
        max_concurrent: 1,
        max_wait: Duration::ZERO,
        ..ResilienceConfig::default()
    };
    let guard = Resilience::new(config).with_name("gateway");
    let route = ("route", "gateway");
    let breaker_state =
        |snapshotter| Reading::of(snapshotter).gauge("tessera_breaker_state", route);
    assert_eq!(breaker_state(&snapshotter), 0.0);
    for _ in 0..2 {
        let failed = guard
            .call(|_: &()| true, || async { Err::<(), ()>(()) })
            .await;
        assert!(matches!(failed, Err(CallError::Transient(()))));
    }
    assert_eq!(breaker_state(&snapshotter), 2.0, "open");
    tokio::time::advance(Duration::from_secs(11)).await;
    guard
        .call(|_: &()| true, || async { Ok::<(), ()>(()) })
        .await
        .expect("trial");
    assert_eq!(breaker_state(&snapshotter), 0.0, "closed again");

    // One slot: a second call while the first holds it is refused.
    let slot = guard.bulkhead().acquire().await.expect("a slot");
    assert!(guard.bulkhead().acquire().await.is_err());
    let mut seen = Reading::of(&snapshotter);
    assert_eq!(seen.gauge("tessera_bulkhead_in_flight", route), 1.0);
    let refused = seen.take(
        MetricKind::Counter,
        "tessera_bulkhead_rejections_total",
        route,
    );
    assert!(matches!(refused, DebugValue::Counter(1)), "{refused:?}");
    drop(slot);
}
