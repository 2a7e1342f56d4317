//! Unsettled, retried and dead-lettered deliveries.

use std::time::{Duration, Instant};

use tessera_projections::integration::Bus;

use crate::support::{event, next, nothing_more, Broker};

const SUBJECT: &str = "ordering.order.OrderPlaced";

#[tokio::test]
async fn unsettled_retried_and_dead_lettered() {
    let broker = Broker::new("redelivery").await;
    let bus = broker.bus().await;
    let mut consumer = bus
        .consume(&broker.spec("redelivery", "ordering", "ordering.>"))
        .await
        .unwrap();
    let m = event(SUBJECT, "order-1", 0);
    bus.publish(std::slice::from_ref(&m)).await.unwrap();

    // Dropped unsettled: it comes back, as the second attempt.
    let d = next(&mut consumer).await;
    assert_eq!((d.message.as_ref().unwrap(), d.attempt), (&m, 1));
    drop(d);
    let d = next(&mut consumer).await;
    assert_eq!((d.message.as_ref().unwrap(), d.attempt), (&m, 2));

    // Retried after a delay: not before it, then again.
    let asked = Instant::now();
    d.retry(Duration::from_millis(400)).await.unwrap();
    assert!(consumer
        .next(Duration::from_millis(200))
        .await
        .unwrap()
        .is_none());
    let d = next(&mut consumer).await;
    assert!(asked.elapsed() >= Duration::from_millis(400));
    assert_eq!((d.message.as_ref().unwrap(), d.attempt), (&m, 3));

    // Dead-lettered: parked with its reason, gone from the queue.
    d.dead_letter("handler failed: no such sku").await.unwrap();
    nothing_more(&mut consumer).await;
    let dead = bus.dead_letters("ordering").await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0.as_ref().unwrap(), &m);
    assert_eq!(dead[0].1, "handler failed: no such sku");
    // Reading them leaves them there.
    assert_eq!(bus.dead_letters("ordering").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_closed_consumer_gets_its_unsettled_deliveries_again() {
    let broker = Broker::new("reopen").await;
    let bus = broker.bus().await;
    let spec = broker.spec("reopen", "ordering", "ordering.>");
    let mut consumer = bus.consume(&spec).await.unwrap();
    let messages = [event(SUBJECT, "order-1", 0), event(SUBJECT, "order-2", 0)];
    bus.publish(&messages).await.unwrap();
    let first = next(&mut consumer).await;
    let second = next(&mut consumer).await;
    assert_eq!(second.attempt, 1);
    first.ack().await.unwrap();
    // The consumer goes, and its unsettled delivery with it.
    drop(consumer);
    drop(second);

    let mut consumer = bus.consume(&spec).await.unwrap();
    let d = next(&mut consumer).await;
    assert_eq!((d.message.as_ref().unwrap(), d.attempt), (&messages[1], 2));
    d.ack().await.unwrap();
    nothing_more(&mut consumer).await;
}

#[tokio::test]
async fn past_its_last_delivery_a_message_is_parked_not_dropped() {
    let broker = Broker::new("limit").await;
    let bus = broker.bus().await;
    let mut spec = broker.spec("limited", "ordering", "ordering.>");
    spec.max_deliveries = 2;
    let mut consumer = bus.consume(&spec).await.unwrap();
    let m = event(SUBJECT, "order-9", 0);
    bus.publish(std::slice::from_ref(&m)).await.unwrap();
    for attempt in 1..=2 {
        let d = next(&mut consumer).await;
        assert_eq!(d.attempt, attempt);
        d.retry(Duration::ZERO).await.unwrap();
    }
    assert!(consumer
        .next(Duration::from_millis(500))
        .await
        .unwrap()
        .is_none());
    let dead = bus.dead_letters("ordering").await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].0.as_ref().unwrap(), &m);
    assert_eq!(dead[0].1, "delivery limit");
}
