//! Metrics: appends and commands record what happened through the `metrics` facade,
//! labelled by store kind, aggregate category and outcome only.

use std::time::Duration;

use metrics::Key;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};
use tessera_core::{CommandHandler, MemoryStore, RetryPolicy, SnapshotPolicy};

use crate::doubles::Meddler;
use crate::tally::{Cmd, Tally};

/// Runs `test` on a runtime of this thread with a recorder of its own, and returns
/// what was recorded.
fn recorded<F: std::future::Future<Output = ()>>(test: impl FnOnce() -> F) -> Recorded {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || runtime.block_on(test()));
    Recorded(snapshotter.snapshot().into_hashmap())
}

struct Recorded(
    std::collections::HashMap<
        CompositeKey,
        (
            Option<metrics::Unit>,
            Option<metrics::SharedString>,
            DebugValue,
        ),
    >,
);

impl Recorded {
    fn get(&self, kind: MetricKind, name: &'static str, labels: &[(&str, &str)]) -> &DebugValue {
        let labels: Vec<_> = labels
            .iter()
            .map(|(k, v)| metrics::Label::new(k.to_string(), v.to_string()))
            .collect();
        let key = CompositeKey::new(kind, Key::from_parts(name, labels.clone()));
        match self.0.get(&key) {
            Some((_, _, value)) => value,
            None => panic!("no {name} {labels:?} in {:?}", self.0.keys()),
        }
    }

    fn counter(&self, name: &'static str, labels: &[(&str, &str)]) -> u64 {
        match self.get(MetricKind::Counter, name, labels) {
            DebugValue::Counter(n) => *n,
            other => panic!("{name} is {other:?}"),
        }
    }

    fn histogram(&self, name: &'static str, labels: &[(&str, &str)]) -> Vec<f64> {
        match self.get(MetricKind::Histogram, name, labels) {
            DebugValue::Histogram(values) => values.iter().map(|v| v.into_inner()).collect(),
            other => panic!("{name} is {other:?}"),
        }
    }
}

#[test]
fn a_conflict_is_counted_by_the_store_and_the_retry_by_the_handler() {
    let seen = recorded(|| async {
        let store = Meddler::interfering(1);
        let tally = CommandHandler::<Tally, _>::new(store, ()).with_retry(RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        });
        tally.handle("m1", &Cmd::AddTwice(1)).await.unwrap();
        tally.handle("m1", &Cmd::Refuse).await.unwrap_err();
    });
    let memory = [("store", "memory")];
    // The interfering writer's append, then the command's conflict and its retry.
    let ok = seen.histogram(
        "tessera_append_duration_seconds",
        &[("store", "memory"), ("outcome", "ok")],
    );
    assert_eq!(ok.len(), 2);
    let conflict = seen.histogram(
        "tessera_append_duration_seconds",
        &[("store", "memory"), ("outcome", "conflict")],
    );
    assert_eq!(conflict.len(), 1);
    assert_eq!(seen.counter("tessera_append_conflicts_total", &memory), 1);
    assert_eq!(seen.histogram("tessera_append_events", &memory), [1.0, 2.0]);
    let tally = |outcome| [("category", "tally"), ("outcome", outcome)];
    assert_eq!(seen.counter("tessera_commands_total", &tally("ok")), 1);
    assert_eq!(
        seen.counter("tessera_commands_total", &tally("rejected")),
        1
    );
    let category = [("category", "tally")];
    assert_eq!(seen.counter("tessera_command_retries_total", &category), 1);
}

#[test]
fn state_cache_and_snapshot_hits_and_misses_are_counted() {
    let seen = recorded(|| async {
        let store = MemoryStore::new();
        let cached = CommandHandler::<Tally, _>::new(store.clone(), ()).with_state_cache(8);
        cached.handle("m2", &Cmd::Add(1)).await.unwrap();
        cached.handle("m2", &Cmd::Add(1)).await.unwrap();
        let snapshotting = CommandHandler::<Tally, _>::new(store.clone(), ())
            .with_snapshots(store.clone(), SnapshotPolicy::EveryNEvents(1));
        snapshotting.handle("m3", &Cmd::Add(1)).await.unwrap();
        snapshotting.handle("m3", &Cmd::Add(1)).await.unwrap();
    });
    let category = [("category", "tally")];
    assert_eq!(seen.counter("tessera_state_cache_hits_total", &category), 1);
    assert_eq!(
        seen.counter("tessera_state_cache_misses_total", &category),
        1
    );
    assert_eq!(seen.counter("tessera_snapshot_hits_total", &category), 1);
    assert_eq!(seen.counter("tessera_snapshot_misses_total", &category), 1);
}
