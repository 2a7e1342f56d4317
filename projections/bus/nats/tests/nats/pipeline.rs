//! Sends whose confirmations come later: one window across them, stored in order, a
//! confirmation nobody awaits holds nothing up, and a relay one batch ahead has its
//! checkpoint where it is once caught up.

use std::sync::Arc;
use std::time::Duration;

use tessera_bus_conformance::fixtures::full_event;
use tessera_core::{EventReader, MemoryStore, Position, ReadAll};
use tessera_projections::integration::{Bus, ConsumerSpec, Message, Relay};
use tessera_projections::{CheckpointStore, MemoryCheckpoints, Runner, RunnerConfig};

use crate::support::{deposit, isolated_with, next, public, unique};

fn events(context: &str, n: usize) -> Vec<Message> {
    (0..n).map(|_| full_event(context)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_share_one_small_window_and_are_stored_in_order() {
    let bus = isolated_with(|b| b.max_pending_publishes(4)).await;
    let (a, b, c, d) = (
        events("ordering", 25),
        events("ordering", 25),
        events("ordering", 25),
        events("ordering", 25),
    );
    // B goes out while A's acknowledgements still come in; awaited in either order.
    let first = bus.send(&a).await.expect("send a");
    let second = bus.send(&b).await.expect("send b");
    assert!(!first.is_settled(), "NATS confirms after the send");
    second.await.expect("b confirmed");
    first.await.expect("a confirmed");
    // A confirmation nobody awaits does not hold up the window.
    drop(bus.send(&c).await.expect("send c"));
    tokio::time::timeout(Duration::from_secs(10), async {
        bus.send(&d).await.expect("send d").await
    })
    .await
    .expect("d is not held up by c")
    .expect("d confirmed");

    let spec = ConsumerSpec::new(unique("c"), "ordering", "ordering.>");
    let mut consumer = bus.consume(&spec).await.expect("consume");
    for expected in a.iter().chain(&b).chain(&c).chain(&d) {
        let delivery = next(&mut consumer).await.expect("a delivery");
        let got = delivery.message.as_ref().expect("a message").id;
        assert_eq!(got, expected.id, "stored in the order sent");
        delivery.ack().await.expect("ack");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_ahead_of_its_confirmations_has_its_checkpoint_at_the_head_once_caught_up() {
    let bus = isolated_with(|b| b.max_pending_publishes(16)).await;
    let store = MemoryStore::new();
    for i in 0..2_000 {
        deposit(&store, 20, i).await;
    }
    let last_public = store
        .read_all(ReadAll::after(Position::START, usize::MAX))
        .await
        .expect("read")
        .iter()
        .rev()
        .find(|e| e.event_type == "Deposited")
        .expect("a public event")
        .position;
    let checkpoints = MemoryCheckpoints::new();
    let relay = Relay::new(
        "ordering_relay",
        public("ordering"),
        store.clone(),
        Arc::new(bus.bus.clone()),
        checkpoints.clone(),
    );
    let config = RunnerConfig {
        batch_size: 100,
        ..RunnerConfig::default()
    };
    let runner = Runner::new(store.clone(), relay, config).spawn();
    runner
        .wait_for(last_public, Duration::from_secs(60))
        .await
        .expect("caught up");
    assert_eq!(
        checkpoints.load("ordering_relay").await.expect("load"),
        last_public,
        "the last batch confirmed and checkpointed before the runner moved on"
    );
    runner.stop().await;
    let mut stream = bus
        .jetstream()
        .get_stream(bus.stream_name("ordering"))
        .await
        .expect("the stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 2_000);
}
