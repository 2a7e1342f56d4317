//! Metrics: every append records its latency by outcome (`store` = `postgres`), the
//! events it wrote, conflicts, and the size of the group it was committed in.

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tessera_core::{EventAppender, ExpectedVersion, StreamId};

use crate::common::{event, TestDb};

#[tokio::test(flavor = "current_thread")]
async fn appends_record_latency_events_conflicts_and_group_sizes() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // This thread's recorder: the test and the store's tasks all run on it.
    let _local = metrics::set_default_local_recorder(&recorder);
    let db = TestDb::new("metrics").await;
    let store = db.store().await;
    let s = StreamId::new("order-m1").unwrap();
    let batch = vec![event("A"), event("B"), event("C")];
    store
        .append(&s, ExpectedVersion::NoStream, batch)
        .await
        .unwrap();
    let stale = store.append(&s, ExpectedVersion::NoStream, vec![event("D")]);
    assert!(stale.await.unwrap_err().is_conflict());
    // Each series as `name{labels}`, with what it recorded.
    let seen: Vec<(String, DebugValue)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect();
    let value = |series: &str| match seen.iter().find(|(s, _)| s == series) {
        Some((_, value)) => value,
        None => panic!("no {series} in {seen:?}"),
    };
    let one_sample = |series| matches!(value(series), DebugValue::Histogram(v) if v.len() == 1);
    assert!(one_sample(
        "tessera_append_duration_seconds{store=postgres,outcome=ok}"
    ));
    assert!(one_sample(
        "tessera_append_duration_seconds{store=postgres,outcome=conflict}"
    ));
    assert!(matches!(
        value("tessera_append_events{store=postgres}"),
        DebugValue::Histogram(v) if v.iter().map(|x| x.into_inner()).collect::<Vec<_>>() == [3.0]
    ));
    assert!(matches!(
        value("tessera_append_conflicts_total{store=postgres}"),
        DebugValue::Counter(1)
    ));
    assert!(matches!(
        value("tessera_append_group_size{}"),
        DebugValue::Histogram(v) if v.len() == 2 && v.iter().all(|x| x.into_inner() == 1.0)
    ));
}
