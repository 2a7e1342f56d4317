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

/// Consumers of one context opened at the same moment, in one process (one connection)
/// and in two (two connections), each get every held message they want: a claim never
/// hides another's messages from it while it looks (the fulfilment and catalogue
/// inboxes of the shop's ordering service open together on the inventory context).
#[tokio::test]
async fn consumers_opened_together_each_claim_all_they_want() {
    let broker = Broker::new("hold-together").await;
    let one = broker.bus().await;
    let other = broker.bus().await;
    for round in 0..6 {
        let stock: Vec<_> = (0..20)
            .map(|v| event(&format!("ordering.stock{round}.Reserved"), "product-1", v))
            .collect();
        let catalogue: Vec<_> = (0..20)
            .map(|v| event(&format!("ordering.catalogue{round}.Added"), "product-2", v))
            .collect();
        let interleaved: Vec<_> = stock
            .iter()
            .zip(&catalogue)
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect();
        one.publish(&interleaved).await.unwrap();
        let stock_spec = broker.spec(
            &format!("stock{round}"),
            "ordering",
            &format!("ordering.stock{round}.>"),
        );
        let catalogue_spec = broker.spec(
            &format!("catalogue{round}"),
            "ordering",
            &format!("ordering.catalogue{round}.>"),
        );
        // Even rounds share a connection, odd rounds use two.
        let second = if round % 2 == 0 { &one } else { &other };
        let (a, b) = tokio::join!(one.consume(&stock_spec), second.consume(&catalogue_spec));
        let (mut a, mut b) = (a.unwrap(), b.unwrap());
        assert_eq!(drain(&mut a).await, stock, "round {round}: stock");
        assert_eq!(drain(&mut b).await, catalogue, "round {round}: catalogue");
    }
}

/// A message the broker routed to the hold just before a consumer's bind can show there
/// only after the consumer's claims looked (the hold is a quorum queue: a message is
/// visible once its log entry commits). It still reaches the consumer, because the
/// consumer looks at the hold again after it opened. Made here by taking a held message
/// off the hold before the consumer opens and putting it back after.
#[tokio::test]
async fn a_message_reaching_the_hold_after_the_claims_still_arrives() {
    use lapin::options::{BasicGetOptions, BasicPublishOptions};
    use lapin::{Connection, ConnectionProperties};

    let broker = Broker::new("hold-late").await;
    let bus = broker.bus().await;
    let early = event("ordering.order.OrderPlaced", "order-1", 0);
    bus.publish(std::slice::from_ref(&early)).await.unwrap();
    let connection = Connection::connect(&broker.url, ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let hold = broker.config().unrouted_queue("ordering");
    let held = channel
        .basic_get(hold.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .expect("get")
        .expect("the early message is held");
    let spec = broker.spec("late-hold", "ordering", "ordering.order.>");
    let mut consumer = bus.consume(&spec).await.unwrap();
    // It reaches the hold only now, after the consumer's claims; the next message goes
    // to the consumer's queue directly.
    // Through the hold's fanout exchange with the subject as routing key, as the topic
    // exchange's alternate exchange delivers it.
    channel
        .basic_publish(
            hold.as_str().into(),
            held.delivery.routing_key.clone(),
            BasicPublishOptions::default(),
            &held.delivery.data,
            held.delivery.properties.clone(),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    let next = event("ordering.order.OrderPlaced", "order-1", 1);
    bus.publish(std::slice::from_ref(&next)).await.unwrap();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < 2 && std::time::Instant::now() < deadline {
        if let Some(d) = consumer.next(Duration::from_millis(500)).await.unwrap() {
            seen.push(d.message.clone().unwrap());
            d.ack().await.unwrap();
        }
    }
    seen.sort_by_key(|m| m.version);
    assert_eq!(
        seen,
        vec![early, next],
        "both arrive, the late one included"
    );
    let _ = connection.close(200, "OK".into()).await;
}

/// A late claim that runs after its consumer's queue was deleted takes nothing off the
/// hold: its copy to the missing queue comes back unroutable, so the held message stays
/// held for a consumer that exists.
#[tokio::test]
async fn a_late_claim_for_a_deleted_queue_leaves_the_hold_alone() {
    use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeleteOptions};
    use lapin::{BasicProperties, Connection, ConnectionProperties};

    let broker = Broker::new("hold-deleted").await;
    let bus = broker.bus().await;
    let spec = broker.spec("gone", "ordering", "ordering.order.>");
    let consumer = bus.consume(&spec).await.unwrap();
    drop(consumer);
    let connection = Connection::connect(&broker.url, ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .queue_delete(spec.name.as_str().into(), QueueDeleteOptions::default())
        .await
        .expect("delete the consumer's queue");
    // A message the late claims want, in the hold (through its fanout exchange, as the
    // topic exchange's alternate exchange delivers it), before the last late claim.
    let hold = broker.config().unrouted_queue("ordering");
    channel
        .basic_publish(
            hold.as_str().into(),
            "ordering.order.OrderPlaced".into(),
            BasicPublishOptions::default(),
            b"held",
            BasicProperties::default(),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    // After every late claim (0.25 s, 1 s and 4 s after the queue opened) it is still held.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let still = channel
        .basic_get(hold.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .expect("get");
    assert_eq!(
        still.map(|m| m.delivery.data),
        Some(b"held".to_vec()),
        "the held message stays in the hold"
    );
    let _ = connection.close(200, "OK".into()).await;
}
