//! 10,000 events on 100 streams through a proxy that cuts and stalls the connections,
//! with the relay's task aborted and restarted once: every event handled once, in
//! per-stream order, and nothing else.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::MemoryStore;
use tessera_projections::integration::{Bus, Inbox, InboxConfig, InboxState};
use tessera_projections::MemoryCheckpoints;
use tessera_rabbitmq::RabbitBus;

use crate::flow::{self, Record, Recorder, Watched};
use crate::proxy::Proxy;
use crate::support::{address, eventually, rewrite, Broker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_through_cuts_stalls_and_a_relay_crash() {
    let broker = Broker::new("torture").await;
    let started = Instant::now();
    let proxy = Proxy::start(&address(&broker.url)).await;
    let via_proxy = rewrite(&broker.url, &proxy.address, None);
    let config = broker
        .config()
        .with_confirm_timeout(Duration::from_secs(2))
        .with_connect_timeout(Duration::from_secs(2));
    let connect = || async {
        RabbitBus::connect_with(&via_proxy, config.clone())
            .await
            .expect("connect through the proxy")
    };
    let publisher = Watched::new(Arc::new(connect().await));
    let subscriber: Arc<dyn Bus> = Arc::new(connect().await);

    let recorder = Arc::new(Recorder::default());
    let inbox_config = InboxConfig {
        max_backoff: Duration::from_millis(500),
        ..InboxConfig::new(flow::spec(&broker))
    };
    let inbox = Inbox::new(
        subscriber,
        Record(Arc::clone(&recorder)),
        MemoryCheckpoints::new(),
        inbox_config,
    )
    .spawn();
    eventually("the inbox to run", Duration::from_secs(10), || {
        inbox.status().state == InboxState::Running
    })
    .await;

    let store = MemoryStore::new();
    let checkpoints = MemoryCheckpoints::new();
    let relay = flow::relay(&store, publisher.clone(), &checkpoints, 100);
    let appending = tokio::spawn({
        let store = store.clone();
        async move { flow::append(&store, 100, 100, Duration::from_millis(40)).await }
    });

    // Chaos while the events flow, each cut while a publish is in flight.
    let mut cuts_mid_publish = 0;
    let mut cut = async |pause_ms: u64| {
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        if publisher.publishing(Duration::from_secs(3)).await {
            cuts_mid_publish += 1;
        }
        proxy.cut();
    };
    cut(500).await;
    cut(400).await;
    // The relay's task dies mid-batch and a new one takes over from its checkpoint.
    tokio::time::sleep(Duration::from_millis(300)).await;
    publisher.publishing(Duration::from_secs(3)).await;
    relay.abort().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let relay = flow::relay(&store, publisher.clone(), &checkpoints, 100);
    cut(400).await;
    // A stall longer than the confirm timeout: the publish times out, the bus drops
    // the silent connection; the inbox waits it out.
    tokio::time::sleep(Duration::from_millis(300)).await;
    publisher.publishing(Duration::from_secs(3)).await;
    proxy.stall(true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.stall(false);
    cut(300).await;

    let expected = appending.await.unwrap();
    assert_eq!(expected.values().map(Vec::len).sum::<usize>(), 10_000);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !flow::complete(&recorder, &expected) {
        assert!(
            Instant::now() < deadline,
            "not every event handled in time: {} handler calls; inbox {:?}; relay {:?}",
            recorder.calls(),
            inbox.status(),
            relay.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing else comes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    flow::check(&recorder, &expected);
    let failed = publisher.failed.load(Ordering::SeqCst);
    let status = inbox.stop().await;
    relay.stop().await;
    eprintln!(
        "torture: 10,000 events over 100 streams in {:?}: {cuts_mid_publish} of 4 cuts mid-publish, \
         {failed} publishes failed, inbox {} handled, {} duplicates, {} held back",
        started.elapsed(),
        status.handled,
        status.duplicates,
        status.held_back
    );
    assert!(
        cuts_mid_publish >= 2,
        "cuts mid-publish: {cuts_mid_publish}"
    );
    assert!(failed >= 1, "no publish failed: the faults missed");
    assert_eq!(status.rejected, 0, "{status:?}");
}
