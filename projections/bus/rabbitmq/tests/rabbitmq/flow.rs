//! The framework end to end: a relay publishing a context's log through a bus, an inbox
//! consuming it into a handler that records what it saw.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tessera_core::{BoxError, EventAppender, ExpectedVersion, MemoryStore, NewEvent, StreamId};
use tessera_projections::integration::{
    Bus, BusError, Consumer, ConsumerSpec, InboxHandler, Message, PublicEvents, Relay,
};
use tessera_projections::{MemoryCheckpoints, Runner, RunnerConfig, RunnerHandle};

/// What the handler saw: per stream, the versions in the order handled.
#[derive(Default)]
pub struct Recorder {
    seen: Mutex<BTreeMap<String, Vec<u64>>>,
    calls: AtomicUsize,
}

impl Recorder {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    pub fn seen(&self) -> BTreeMap<String, Vec<u64>> {
        self.seen.lock().unwrap().clone()
    }
}

/// The inbox's handler: records (stream, version).
pub struct Record(pub Arc<Recorder>);

impl InboxHandler for Record {
    async fn handle(&self, m: &Message) -> Result<(), BoxError> {
        self.0
            .seen
            .lock()
            .unwrap()
            .entry(m.stream.clone())
            .or_default()
            .push(m.version);
        self.0.calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// `OrderPlaced` of `order-*` streams is public; `NoteAdded` is private.
pub fn public() -> PublicEvents {
    PublicEvents::new("ordering").map("order", "OrderPlaced", "OrderPlaced", 1, |e| {
        Ok(e.data.to_value()?)
    })
}

/// The consumer every flow test reads with.
pub fn spec(broker: &crate::support::Broker) -> ConsumerSpec {
    broker.spec("warehouse", "ordering", "ordering.order.>")
}

/// Appends `per_stream` public events to each of `streams` streams, round by round
/// (one event per stream each round, a private one after every seventh), pausing
/// `pace` after each round. Returns the public versions expected per stream.
pub async fn append(
    store: &MemoryStore,
    streams: usize,
    per_stream: usize,
    pace: Duration,
) -> BTreeMap<String, Vec<u64>> {
    let mut expected: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut next_version = vec![0u64; streams];
    for round in 0..per_stream {
        for (s, version) in next_version.iter_mut().enumerate() {
            let name = format!("order-{s}");
            let stream = StreamId::new(&name).unwrap();
            let mut events =
                vec![
                    NewEvent::json("OrderPlaced", &serde_json::json!({"s": s, "r": round}))
                        .unwrap(),
                ];
            expected.entry(name).or_default().push(*version);
            if round % 7 == 6 {
                events.push(NewEvent::json("NoteAdded", &serde_json::json!({})).unwrap());
            }
            *version += events.len() as u64;
            store
                .append(&stream, ExpectedVersion::Any, events)
                .await
                .unwrap();
        }
        if !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
    }
    expected
}

/// The relay of `store` to `bus`, run by a runner that keeps retrying.
pub fn relay(
    store: &MemoryStore,
    bus: Arc<dyn Bus>,
    checkpoints: &MemoryCheckpoints,
    batch_size: usize,
) -> RunnerHandle<MemoryStore> {
    let relay = Relay::new(
        "ordering_relay",
        public(),
        store.clone(),
        bus,
        checkpoints.clone(),
    );
    let config = RunnerConfig {
        batch_size,
        max_attempts: 100_000,
        max_backoff: Duration::from_millis(500),
        ..RunnerConfig::default()
    };
    Runner::new(store.clone(), relay, config).spawn()
}

/// Whether every expected version of every stream was seen.
pub fn complete(recorder: &Recorder, expected: &BTreeMap<String, Vec<u64>>) -> bool {
    let seen = recorder.seen();
    expected
        .iter()
        .all(|(stream, versions)| seen.get(stream).map(Vec::len) >= Some(versions.len()))
}

/// Every stream handled exactly once per public event, in version order, and nothing
/// else.
pub fn check(recorder: &Recorder, expected: &BTreeMap<String, Vec<u64>>) {
    let seen = recorder.seen();
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the streams handled"
    );
    for (stream, versions) in expected {
        assert_eq!(&seen[stream], versions, "stream {stream}: versions handled");
    }
    let total: usize = expected.values().map(Vec::len).sum();
    assert_eq!(recorder.calls(), total, "handler calls");
}

/// A bus that counts its publishes in flight and those that failed, around another.
pub struct Watched {
    pub inner: Arc<dyn Bus>,
    pub in_flight: AtomicUsize,
    pub failed: AtomicUsize,
}

impl Watched {
    pub fn new(inner: Arc<dyn Bus>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            in_flight: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
        })
    }

    /// Waits (at most `wait`) until a publish is in flight.
    pub async fn publishing(&self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        while self.in_flight.load(Ordering::SeqCst) == 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        true
    }
}

#[async_trait]
impl Bus for Watched {
    async fn publish(&self, messages: &[Message]) -> Result<(), BusError> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let _in_flight = InFlight(&self.in_flight);
        let result = self.inner.publish(messages).await;
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
        result
    }

    async fn consume(&self, spec: &ConsumerSpec) -> Result<Box<dyn Consumer>, BusError> {
        self.inner.consume(spec).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// Counts a publish out of flight however it ends (an aborted relay drops it).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
