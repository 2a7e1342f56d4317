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
