//! The framework over RabbitMQ: a relay publishing a log, an inbox consuming it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::MemoryStore;
use tessera_projections::integration::{Bus, Inbox, InboxConfig, InboxState};
use tessera_projections::MemoryCheckpoints;

use crate::flow::{self, Record, Recorder};
use crate::support::{eventually, Broker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_events_over_twenty_streams_arrive_once_in_order() {
    let broker = Broker::new("end-to-end").await;
    let started = Instant::now();
    // Two services: each with its own connections.
    let publisher: Arc<dyn Bus> = Arc::new(broker.bus().await);
    let subscriber: Arc<dyn Bus> = Arc::new(broker.bus().await);

    let recorder = Arc::new(Recorder::default());
    let inbox = Inbox::new(
        subscriber,
        Record(Arc::clone(&recorder)),
        MemoryCheckpoints::new(),
        InboxConfig::new(flow::spec(&broker)),
    )
    .spawn();
    eventually("the inbox to run", Duration::from_secs(10), || {
        inbox.status().state == InboxState::Running
    })
    .await;

    let store = MemoryStore::new();
    let relay = flow::relay(&store, publisher, &MemoryCheckpoints::new(), 100);
    let expected = flow::append(&store, 20, 50, Duration::ZERO).await;
    assert_eq!(expected.values().map(Vec::len).sum::<usize>(), 1_000);

    eventually("every event handled", Duration::from_secs(60), || {
        flow::complete(&recorder, &expected)
    })
    .await;
    // Nothing else comes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    flow::check(&recorder, &expected);
    let status = inbox.stop().await;
    assert_eq!(status.handled, 1_000, "{status:?}");
    assert_eq!(status.rejected, 0, "{status:?}");
    relay.stop().await;
    eprintln!(
        "end to end: 1,000 events over 20 streams in {:?} ({} duplicates, {} held back)",
        started.elapsed(),
        status.duplicates,
        status.held_back
    );
}
