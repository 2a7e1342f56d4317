//! Messages on the wire: every header survives; what is not an integration message is
//! a typed error.

use std::time::Duration;

use tessera_projections::integration::{
    command_message, wire, ConsumerSpec, Delivery, Message, MessageError, MessageKind,
};

use crate::support::unique;
use crate::{BusFactory, WAIT};

async fn next(consumer: &mut Box<dyn tessera_projections::integration::Consumer>) -> Delivery {
    consumer
        .next(WAIT)
        .await
        .expect("consumer")
        .expect("a delivery within the wait")
}

fn same(sent: &Message, got: &Message) {
    let json = |m: &Message| serde_json::from_slice::<serde_json::Value>(&m.payload).expect("json");
    assert_eq!(json(got), json(sent), "payload");
    let strip = |m: &Message| Message {
        payload: bytes::Bytes::new(),
        ..m.clone()
    };
    assert_eq!(strip(got), strip(sent), "headers");
}

/// An event and a command arrive with every header as sent.
pub async fn round_trip_with_every_header(factory: &impl BusFactory) {
    let context = unique("rt");
    let bus = factory.connect().await;
    let sent = crate::fixtures::full_event(&context);
    let command = command_message(
        "ordering",
        &context,
        "Reserve",
        "order-1:reserve",
        &serde_json::json!({"sku": "a"}),
        Some(uuid::Uuid::new_v4()),
    )
    .expect("command");
    bus.publish(&[sent.clone(), command.clone()])
        .await
        .expect("publish");
    let mut consumer = bus
        .consume(&ConsumerSpec::new(
            unique("c"),
            &context,
            format!("{context}.>"),
        ))
        .await
        .expect("consume");
    let first = next(&mut consumer).await;
    let second = next(&mut consumer).await;
    let mut got = [
        first.message.clone().expect("an integration message"),
        second.message.clone().expect("an integration message"),
    ];
    got.sort_by_key(|m| m.kind == MessageKind::Command);
    same(&sent, &got[0]);
    same(&command, &got[1]);
    assert_eq!(first.attempt, 1);
    first.ack().await.expect("ack");
    second.ack().await.expect("ack");
    assert!(
        consumer
            .next(Duration::from_millis(300))
            .await
            .expect("consumer")
            .is_none(),
        "nothing else arrives"
    );
    factory.cleanup(vec![context]).await;
}

/// Deliveries without Tessera's headers, of another content type or with a payload
/// that is not JSON arrive as typed errors, not panics.
pub async fn foreign_and_undecodable_messages_are_typed_errors(factory: &impl BusFactory) {
    let context = unique("fo");
    let subject = format!("{context}.acct.Deposited");
    let good = crate::fixtures::full_event(&context);
    let mut text = wire::to_headers(&good);
    for (k, v) in &mut text {
        if k == "Content-Type" {
            *v = "text/plain".to_owned();
        }
    }
    factory
        .publish_raw(
            &context,
            &subject,
            vec![("X-Other".into(), "1".into())],
            b"{}".to_vec(),
        )
        .await;
    factory
        .publish_raw(&context, &subject, text, b"{}".to_vec())
        .await;
    factory
        .publish_raw(
            &context,
            &subject,
            wire::to_headers(&good),
            b"not json".to_vec(),
        )
        .await;
    let bus = factory.connect().await;
    let mut consumer = bus
        .consume(&ConsumerSpec::new(
            unique("c"),
            &context,
            format!("{context}.>"),
        ))
        .await
        .expect("consume");
    let mut errors = Vec::new();
    for _ in 0..3 {
        let d = next(&mut consumer).await;
        errors.push(d.message.clone().expect_err("not an integration message"));
        d.ack().await.expect("ack");
    }
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, MessageError::MissingHeader(_))),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, MessageError::ContentType(t) if t == "text/plain")),
        "{errors:?}"
    );
    assert!(errors.contains(&MessageError::Payload), "{errors:?}");
    factory.cleanup(vec![context]).await;
}
