//! What a context publishes before any queue wants it is held, and moves to the first
//! consumer declared for it.

use std::time::Duration;

use tessera_projections::integration::{Bus, Consumer, Message};

use crate::support::{event, Broker};

async fn drain(consumer: &mut Box<dyn Consumer>) -> Vec<Message> {
    let mut got = Vec::new();
    while let Some(d) = consumer.next(Duration::from_millis(500)).await.unwrap() {
        got.push(d.message.clone().unwrap());
        d.ack().await.unwrap();
    }
    got
}

#[tokio::test]
async fn messages_published_before_their_consumer_go_to_the_first_that_wants_them() {
    let broker = Broker::new("hold").await;
    let bus = broker.bus().await;
    let orders: Vec<_> = (0..3)
        .map(|v| event("ordering.order.OrderPlaced", "order-1", v))
        .collect();
    let payment = event("ordering.payment.PaymentTaken", "payment-1", 0);
    bus.publish(&orders).await.unwrap();
    bus.publish(std::slice::from_ref(&payment)).await.unwrap();

    // The orders' consumer takes the orders, in order, and leaves the payment held.
    let mut consumer = bus
        .consume(&broker.spec("orders", "ordering", "ordering.order.>"))
        .await
        .unwrap();
    assert_eq!(drain(&mut consumer).await, orders);
    // Declared without consuming, the payments' queue takes the payment.
    let payments = broker.spec("payments", "ordering", "ordering.payment.>");
    bus.declare_consumer(&payments).await.unwrap();
    // A consumer declared later sees only what comes after it.
    let mut late = bus
        .consume(&broker.spec("late", "ordering", "ordering.>"))
        .await
        .unwrap();
    assert!(drain(&mut late).await.is_empty());
    let mut consumer = bus.consume(&payments).await.unwrap();
    assert_eq!(drain(&mut consumer).await, vec![payment]);

    let after = event("ordering.order.OrderPlaced", "order-1", 3);
    bus.publish(std::slice::from_ref(&after)).await.unwrap();
    assert_eq!(drain(&mut late).await, vec![after]);
}
