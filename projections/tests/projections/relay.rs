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
    let public = PublicEvents::new("bank").map("acct", "Deposited", "Deposited", 2, |e| {
        Ok(e.data.to_value()?)
    });
    let relay = Relay::new(
        "relay",
        public,
        store.clone(),
        Arc::new(bus.clone()),
        MemoryCheckpoints::new(),
    );
    let runner = Runner::new(store.clone(), relay, RunnerConfig::default()).spawn();
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
