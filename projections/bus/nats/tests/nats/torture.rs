//! Faults on a private server: killed with SIGKILL and started again on the same port and
//! store, while a relay (itself aborted once) publishes and an inbox consumes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::MemoryStore;
use tessera_nats::NatsBus;
use tessera_projections::integration::{Bus, ConsumerSpec, Inbox, InboxConfig, Relay};
use tessera_projections::{MemoryCheckpoints, Runner, RunnerConfig};

use crate::support::{
    connect, deposit, public, public_events, wait_until, PrivateServer, Recorder,
};
use crate::wire::event;

/// What a confirmation promises against a killed server process: every message
/// JetStream acknowledged is there after SIGKILL and a restart (the server wrote it to
/// the operating system before acknowledging; a machine crash is another matter, see
/// the crate docs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_a_sigkill_of_the_server() {
    let mut server = PrivateServer::start(None).await;
    let url = server.url();
    let bus = connect(NatsBus::builder(url.clone()), &url).await;
    let count = 5_000;
    let started = Instant::now();
    for _ in 0..count / 500 {
        let batch: Vec<_> = (0..500).map(|_| event("ordering")).collect();
        bus.publish(&batch).await.expect("confirmed");
    }
    let publishing = started.elapsed();
    // Killed the moment the last acknowledgement arrived.
    server.kill().await;
    server.restart().await;
    let bus = connect(NatsBus::builder(url.clone()), &url).await;
    let mut stream = bus
        .jetstream()
        .get_stream(bus.stream_name("ordering"))
        .await
        .expect("the stream survives");
    let stored = stream.info().await.expect("info").state.messages;
    eprintln!(
        "published {count} confirmed messages in {publishing:?}; after SIGKILL and restart the stream holds {stored}"
    );
    assert_eq!(
        stored, count,
        "every acknowledged message survives the kill"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_once_in_order_through_server_kills_and_a_relay_abort() {
    const EVENTS: usize = 10_000;
    const STREAMS: usize = 100;
    let started = Instant::now();
    let mut server = PrivateServer::start(None).await;
    let url = server.url();
    let builder = NatsBus::builder(url.clone())
        .ack_wait(Duration::from_secs(3))
        .request_timeout(Duration::from_secs(2));
    let bus = connect(builder, &url).await;

    let store = MemoryStore::new();
    let relay_checkpoints = MemoryCheckpoints::new();
    let runner = RunnerConfig {
        batch_size: 200,
        max_attempts: 100_000,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(500),
        ..RunnerConfig::default()
    };
    let spawn_relay = || {
        let relay = Relay::new(
            "ordering_relay",
            public("ordering"),
            store.clone(),
            Arc::new(bus.clone()),
            relay_checkpoints.clone(),
        );
        Runner::new(store.clone(), relay, runner).spawn()
    };
    let mut relay = spawn_relay();
    let recorder = Recorder::default();
    let inbox = Inbox::new(
        Arc::new(bus.clone()),
        recorder.clone(),
        MemoryCheckpoints::new(),
        InboxConfig {
            max_backoff: Duration::from_millis(500),
            ..InboxConfig::new(ConsumerSpec::new(
                "warehouse",
                "ordering",
                "ordering.acct.>",
            ))
        },
    )
    .spawn();

    // The service writes for about eight seconds ...
    let writer = tokio::spawn({
        let store = store.clone();
        async move {
            for i in 0..EVENTS {
                deposit(&store, STREAMS, i).await;
                if i % 100 == 99 {
                    tokio::time::sleep(Duration::from_millis(80)).await;
                }
            }
        }
    });
    // ... while the broker dies twice and the relay once.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    server.kill().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.restart().await;
    let progress = |what: &str| {
        let handled = recorder.distinct();
        eprintln!(
            "{:?}: {what}, {handled} events handled so far",
            started.elapsed()
        );
        assert!(handled < EVENTS, "the faults come while events flow");
    };
    progress("server killed and restarted");
    tokio::time::sleep(Duration::from_secs(2)).await;
    relay.abort().await;
    relay = spawn_relay();
    progress("relay aborted and restarted");
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.kill().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart().await;
    progress("server killed and restarted again");
    writer.await.expect("writer");

    wait_until("every event handled", Duration::from_secs(150), || {
        recorder.distinct() >= EVENTS
    })
    .await;
    let elapsed = started.elapsed();
    // Anything late would show now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = inbox.stop().await;
    let relay_status = relay.stop().await;
    let calls = recorder.assert_exactly(&public_events(&store).await);
    let stored = bus
        .jetstream()
        .get_stream(bus.stream_name("ordering"))
        .await
        .expect("stream")
        .info()
        .await
        .expect("info")
        .state
        .messages;
    eprintln!(
        "{EVENTS} events on {STREAMS} streams handled once in effect, in order, in {elapsed:?}: \
         {calls} handler calls, stream holds {stored}; inbox {status:?}; relay {relay_status:?}; bus {}",
        bus.describe()
    );
    assert_eq!(
        calls, EVENTS,
        "repeats are dropped by the inbox before the handler"
    );
}

/// A server lost after the start: a publish is not confirmed (a transient error) within
/// the request timeout, and goes through once the server is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_while_the_server_is_down_is_not_confirmed_then_goes_through() {
    let mut server = PrivateServer::start(None).await;
    let url = server.url();
    let timeout = Duration::from_secs(1);
    let bus = connect(NatsBus::builder(url.clone()).request_timeout(timeout), &url).await;
    let first = event("ordering");
    bus.publish(std::slice::from_ref(&first))
        .await
        .expect("confirmed");
    server.kill().await;
    let started = Instant::now();
    let err = bus
        .publish(&[event("ordering")])
        .await
        .expect_err("no server, no confirmation");
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains(&url), "{err}");
    assert!(started.elapsed() < timeout * 3, "{:?}", started.elapsed());
    server.restart().await;
    let again = event("ordering");
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Err(e) = bus.publish(std::slice::from_ref(&again)).await {
        assert!(
            Instant::now() < deadline,
            "still failing after the restart: {e}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut stream = bus
        .jetstream()
        .get_stream(bus.stream_name("ordering"))
        .await
        .expect("stream");
    // The first, the one sent while down (the client sends it on reconnecting, or not),
    // and the last.
    let stored = stream.info().await.expect("info").state.messages;
    assert!((2..=3).contains(&stored), "{stored}");
}
