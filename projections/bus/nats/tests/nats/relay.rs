//! End to end with the framework: a relay publishes a log's public events to NATS, an
//! inbox hands them to a handler.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::MemoryStore;
use tessera_projections::integration::{ConsumerSpec, Inbox, InboxConfig, Relay};
use tessera_projections::{MemoryCheckpoints, Runner, RunnerConfig};

use crate::support::{deposit, isolated, public, public_events, unique, wait_until, Recorder};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_and_an_inbox_carry_1000_events_of_20_streams_once_in_order() {
    let bus = isolated().await;
    let store = MemoryStore::new();
    let started = Instant::now();
    for i in 0..1_000 {
        deposit(&store, 20, i).await;
    }
    let relay = Relay::new(
        "ordering_relay",
        public("ordering"),
        store.clone(),
        Arc::new(bus.bus.clone()),
        MemoryCheckpoints::new(),
    );
    let relay = Runner::new(store.clone(), relay, RunnerConfig::default()).spawn();
    let recorder = Recorder::default();
    let spec = ConsumerSpec::new(unique("wh"), "ordering", "ordering.acct.>");
    let inbox = Inbox::new(
        Arc::new(bus.bus.clone()),
        recorder.clone(),
        MemoryCheckpoints::new(),
        InboxConfig::new(spec),
    )
    .spawn();

    wait_until("1,000 events handled", Duration::from_secs(60), || {
        recorder.distinct() >= 1_000
    })
    .await;
    let elapsed = started.elapsed();
    let status = inbox.stop().await;
    relay.stop().await;
    let calls = recorder.assert_exactly(&public_events(&store).await);
    assert_eq!(calls, 1_000, "no repeat reached the handler");
    assert_eq!(status.handled, 1_000, "{status:?}");
    eprintln!("1,000 events over 20 streams relayed and handled in {elapsed:?}; {status:?}");
}
