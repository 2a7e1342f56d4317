//! A relay through a broker outage: transient publish failures are retried for as long
//! as they last and never stop the relay as a poison event would.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tessera_projections::integration::{
    Bus, BusError, Consumer, ConsumerSpec, MemoryBus, Message, PublicEvents, Relay,
};
use tessera_projections::{MemoryCheckpoints, Runner, RunnerConfig, State};

use crate::support::{deposit, WAIT};

/// A broker that is down for its first `down` publishes.
struct Outage {
    inner: MemoryBus,
    calls: AtomicUsize,
    down: usize,
}

#[tessera_projections::async_trait::async_trait]
impl Bus for Outage {
    async fn publish(&self, messages: &[Message]) -> Result<(), BusError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.down {
            return Err(BusError::Unavailable("broker down on purpose".into()));
        }
        self.inner.publish(messages).await
    }

    async fn consume(&self, spec: &ConsumerSpec) -> Result<Box<dyn Consumer>, BusError> {
        self.inner.consume(spec).await
    }

    fn describe(&self) -> String {
        "outage".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_rides_out_a_broker_outage_longer_than_its_attempts() {
    let store = tessera_core::MemoryStore::new();
    let head = deposit(&store, "acct-1", 1).await;
    let bus = Arc::new(Outage {
        inner: MemoryBus::new(),
        calls: AtomicUsize::new(0),
        down: 8,
    });
    let public = PublicEvents::new("bank").map("acct", "Deposited", "Deposited", 1, |e| {
        Ok(e.data.to_value()?)
    });
    let relay = Relay::new(
        "relay",
        public,
        store.clone(),
        bus.clone(),
        MemoryCheckpoints::new(),
    );
    let config = RunnerConfig {
        max_attempts: 2,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        ..RunnerConfig::default()
    };
    let runner = Runner::new(store.clone(), relay, config).spawn();
    runner
        .wait_for(head, WAIT)
        .await
        .expect("published after the outage");
    assert!(bus.calls.load(Ordering::SeqCst) > 8, "it kept trying");
    assert_eq!(bus.inner.messages("bank").len(), 1);
    let status = runner.stop().await;
    assert_ne!(status.state, State::Failed, "{status:?}");
    assert!(status.failure.is_none(), "{status:?}");
}

/// A relayed message carries the event's id, stream, version, position, correlation
/// and causation ids and trace context, and nothing of a private event arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_message_carries_the_events_identity_and_trace_context() {
    use tessera_core::{EventAppender, ExpectedVersion, Metadata, NewEvent, StreamId};

    let store = tessera_core::MemoryStore::new();
    let (correlation, causation) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let metadata = Metadata::correlated(correlation)
        .caused_by(causation)
        .with_header("traceparent", traceparent)
        .with_header("internal", "stays home");
    let public = NewEvent::json("Deposited", &serde_json::json!({ "amount": 5 }))
        .expect("json")
        .with_metadata(metadata);
    let private = NewEvent::json("Audited", &serde_json::json!({})).expect("json");
    let stream = StreamId::new("acct-7").expect("id");
    let out = store
        .append(&stream, ExpectedVersion::NoStream, vec![private, public])
        .await
        .expect("append");
    let bus = MemoryBus::new();
    let runner = spawn_bank_relay(&store, &bus, MemoryCheckpoints::new());
    runner.wait_for(out.position, WAIT).await.expect("relayed");
    let messages = bus.messages("bank");
    assert_eq!(messages.len(), 1, "the private event stays home");
    let m = messages[0].as_ref().expect("an integration message");
    let event = tessera_core::EventReader::read_stream(
        &store,
        &stream,
        tessera_core::ReadStream::forward(),
    )
    .await
    .expect("read")
    .pop()
    .expect("the public event");
    assert_eq!(m.id, event.id.0);
    assert_eq!(
        (m.stream.as_str(), m.version, m.previous),
        ("acct-7", 1, None)
    );
    assert_eq!(m.position, event.position);
    assert_eq!(
        (m.name.as_str(), m.schema_version, m.subject.as_str()),
        ("Deposited", 2, "bank.acct.Deposited")
    );
    assert_eq!(
        (m.correlation_id, m.causation_id),
        (Some(correlation), Some(causation))
    );
    assert_eq!(
        m.headers.get("traceparent").map(String::as_str),
        Some(traceparent)
    );
    assert!(
        !m.headers.contains_key("internal"),
        "only trace context rides along"
    );
    runner.stop().await;
}

/// A relay that did not see a stream's earlier events (it starts from a checkpoint past
/// them) looks their last public version up, for every stream of a batch at once, and
/// each message's `previous` is the stream's last public version before it: a public
/// event before the checkpoint, none (only private ones), or one earlier in the batch.
#[tokio::test]
async fn previous_is_looked_up_for_streams_the_relay_has_not_seen() {
    use tessera_core::{EventAppender, ExpectedVersion, NewEvent, StreamId};
    use tessera_projections::CheckpointStore as _;
    let store = tessera_core::MemoryStore::new();
    let event = |ty: &str| NewEvent::json(ty, &serde_json::json!({})).expect("json");
    let append = |stream: &str, events: Vec<NewEvent>| {
        let (store, stream) = (store.clone(), StreamId::new(stream).expect("id"));
        async move {
            store
                .append(&stream, ExpectedVersion::Any, events)
                .await
                .expect("append")
        }
    };
    // Before the relay's checkpoint: acct-1 has a public event at 0, acct-2 only private.
    append("acct-1", vec![event("Deposited"), event("Audited")]).await;
    let before = append("acct-2", vec![event("Audited"), event("Audited")]).await;
    // After it: one public event each, and acct-3's first two public events.
    append("acct-1", vec![event("Audited"), event("Deposited")]).await;
    append("acct-2", vec![event("Deposited")]).await;
    let last = append(
        "acct-3",
        vec![event("Deposited"), event("Audited"), event("Deposited")],
    )
    .await;
    let checkpoints = MemoryCheckpoints::new();
    assert!(checkpoints
        .advance("relay", tessera_core::Position::START, before.position)
        .await
        .expect("checkpoint"));
    let bus = MemoryBus::new();
    let runner = spawn_bank_relay(&store, &bus, checkpoints);
    runner.wait_for(last.position, WAIT).await.expect("relayed");
    let got: Vec<(String, u64, Option<u64>)> = bus
        .messages("bank")
        .iter()
        .map(|m| {
            let m = m.as_ref().expect("a message");
            (m.stream.clone(), m.version, m.previous)
        })
        .collect();
    assert_eq!(
        got,
        [
            ("acct-1".to_owned(), 3, Some(0)),
            ("acct-2".to_owned(), 2, None),
            ("acct-3".to_owned(), 0, None),
            ("acct-3".to_owned(), 2, Some(0)),
        ]
    );
    runner.stop().await;
}

/// A relay named `relay` publishing the `acct` streams' `Deposited` events (schema
/// version 2) to `bus` as context `bank`, from `checkpoints`, running.
fn spawn_bank_relay(
    store: &tessera_core::MemoryStore,
    bus: &MemoryBus,
    checkpoints: MemoryCheckpoints,
) -> tessera_projections::RunnerHandle<tessera_core::MemoryStore> {
    let public = PublicEvents::new("bank").map("acct", "Deposited", "Deposited", 2, |e| {
        Ok(e.data.to_value()?)
    });
    let relay = Relay::new(
        "relay",
        public,
        store.clone(),
        Arc::new(bus.clone()),
        checkpoints,
    );
    Runner::new(store.clone(), relay, RunnerConfig::default()).spawn()
}

/// Two relays on one checkpoint, taking turns: a relay does not trust what it
/// remembers of a stream once another has published past it. Relay A publishes
/// `acct-1`@0, B publishes @1 and moves the checkpoint, then A publishes @2: its
/// `previous` is 1, not the 0 A last published itself (with 0, an inbox that got @2
/// before @1, as a broker's redelivery can order them, would hand @2 over first and
/// then drop @1 as a duplicate).
#[tokio::test]
async fn a_relay_does_not_trust_its_memory_of_a_stream_after_another_published() {
    use tessera_core::{EventAppender, EventReader, ExpectedVersion, NewEvent, ReadAll, StreamId};
    use tessera_projections::Subscriber;
    let store = tessera_core::MemoryStore::new();
    let stream = StreamId::new("acct-1").expect("id");
    for _ in 0..3 {
        let event = NewEvent::json("Deposited", &serde_json::json!({})).expect("json");
        store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await
            .expect("append");
    }
    let log = store
        .read_all(ReadAll::after(tessera_core::Position::START, 10))
        .await
        .expect("read");
    let bus = MemoryBus::new();
    let checkpoints = MemoryCheckpoints::new();
    let relay = || {
        let public = PublicEvents::new("bank").map("acct", "Deposited", "Deposited", 2, |e| {
            Ok(e.data.to_value()?)
        });
        Relay::new(
            "relay",
            public,
            store.clone(),
            Arc::new(bus.clone()),
            checkpoints.clone(),
        )
    };
    let (a, b) = (relay(), relay());
    a.apply(tessera_core::Position::START, &log[..1])
        .await
        .expect("a publishes @0");
    assert_eq!(a.checkpoint().await.expect("checkpoint"), log[0].position);
    b.apply(log[0].position, &log[1..2])
        .await
        .expect("b publishes @1");
    assert_eq!(b.checkpoint().await.expect("checkpoint"), log[1].position);
    a.apply(log[1].position, &log[2..])
        .await
        .expect("a publishes @2");
    let got: Vec<(u64, Option<u64>)> = bus
        .messages("bank")
        .iter()
        .map(|m| {
            let m = m.as_ref().expect("a message");
            (m.version, m.previous)
        })
        .collect();
    assert_eq!(got, [(0, None), (1, Some(0)), (2, Some(1))]);
}
