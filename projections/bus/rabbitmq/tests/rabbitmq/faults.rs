//! A lost or silent connection: typed errors in bounded time, then the next call
//! reconnects.

use std::time::{Duration, Instant};

use tessera_projections::integration::{Bus, BusError};
use tessera_rabbitmq::RabbitBus;

use crate::proxy::Proxy;
use crate::support::{address, event, next, rewrite, Broker};

const SUBJECT: &str = "ordering.order.OrderPlaced";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_and_stalled_connections_fail_in_bounded_time_then_reconnect() {
    let broker = Broker::new("faults").await;
    let proxy = Proxy::start(&address(&broker.url)).await;
    let config = broker
        .config()
        .with_confirm_timeout(Duration::from_millis(500))
        .with_connect_timeout(Duration::from_millis(500));
    let url = rewrite(&broker.url, &proxy.address, None);
    let bus = RabbitBus::connect_with(&url, config).await.unwrap();
    assert!(!bus.describe().contains("guest"));
    let spec = broker.spec("faults", "ordering", "ordering.>");
    let mut consumer = bus.consume(&spec).await.unwrap();
    bus.publish(&[event(SUBJECT, "order-1", 0)]).await.unwrap();
    next(&mut consumer).await.ack().await.unwrap();

    // Cut: the consumer says so; the next publish connects anew.
    proxy.cut();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match consumer.next(Duration::from_millis(100)).await {
            Err(BusError::Unavailable(_)) => break,
            Ok(None) if Instant::now() < deadline => {}
            other => panic!("the consumer should report the cut: {other:?}"),
        }
    }
    let mut published = false;
    for _ in 0..3 {
        match bus.publish(&[event(SUBJECT, "order-1", 1)]).await {
            Ok(()) => {
                published = true;
                break;
            }
            Err(e) => assert!(e.is_transient(), "{e:?}"),
        }
    }
    assert!(published, "a publish after the cut went through");
    let mut consumer = bus.consume(&spec).await.unwrap();
    loop {
        // The cut may have come before the broker read the first ack: then the first
        // message comes again.
        let d = next(&mut consumer).await;
        let version = d.message.as_ref().unwrap().version;
        assert!(version <= 1, "{version}");
        d.ack().await.unwrap();
        if version == 1 {
            break;
        }
    }

    // Stall: the publish is not confirmed within the timeout, and says so.
    proxy.stall(true);
    let started = Instant::now();
    let error = bus
        .publish(&[event(SUBJECT, "order-1", 2)])
        .await
        .unwrap_err();
    assert!(matches!(error, BusError::NotConfirmed(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // While it lasts, reconnecting fails in bounded time too.
    let started = Instant::now();
    let error = bus
        .publish(&[event(SUBJECT, "order-1", 2)])
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    proxy.stall(false);
    bus.publish(&[event(SUBJECT, "order-1", 2)]).await.unwrap();
}
