//! A message crosses RabbitMQ with every header intact; what is not a Tessera message
//! arrives as a typed error.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use tessera_core::Position;
use tessera_projections::integration::{
    command_message, Bus, BusError, Message, MessageError, MessageKind, JSON,
};
use tessera_rabbitmq::RabbitBus;

use crate::support::{next, nothing_more, Broker};

fn full_message() -> Message {
    let mut headers = BTreeMap::new();
    headers.insert(
        "traceparent".to_owned(),
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
    );
    headers.insert("tracestate".to_owned(), "congo=t61rcWkgMzE".to_owned());
    headers.insert("Baggage".to_owned(), "user=ünïcødé".to_owned());
    Message {
        id: uuid::Uuid::new_v4(),
        kind: MessageKind::Event,
        name: "OrderPlaced".to_owned(),
        schema_version: 3,
        source: "ordering".to_owned(),
        subject: "ordering.order.OrderPlaced".to_owned(),
        stream: "order-17".to_owned(),
        version: 42,
        previous: Some(40),
        position: Position::new(1234, 5),
        correlation_id: Some(uuid::Uuid::new_v4()),
        causation_id: Some(uuid::Uuid::new_v4()),
        idempotency_key: Some("place:17".to_owned()),
        headers,
        content_type: JSON.to_owned(),
        payload: serde_json::to_vec(&serde_json::json!({"total": 5, "note": "ü"}))
            .unwrap()
            .into(),
    }
}

#[tokio::test]
async fn every_header_survives_the_round_trip() {
    let broker = Broker::new("round-trip").await;
    let bus = broker.bus().await;
    let mut consumer = bus
        .consume(&broker.spec("rt", "ordering", "ordering.>"))
        .await
        .unwrap();

    let m = full_message();
    let first = Message {
        id: uuid::Uuid::new_v4(),
        previous: None,
        correlation_id: None,
        causation_id: None,
        idempotency_key: None,
        headers: BTreeMap::new(),
        version: 0,
        ..full_message()
    };
    bus.publish(&[m.clone(), first.clone()]).await.unwrap();

    let d = next(&mut consumer).await;
    assert_eq!(d.attempt, 1);
    assert_eq!(d.message.as_ref().unwrap(), &m);
    d.ack().await.unwrap();
    let d = next(&mut consumer).await;
    assert_eq!(
        d.message.as_ref().unwrap(),
        &first,
        "optional headers left out"
    );
    d.ack().await.unwrap();
    nothing_more(&mut consumer).await;
}

#[tokio::test]
async fn a_command_goes_to_its_owner() {
    let broker = Broker::new("command").await;
    let bus = broker.bus().await;
    let mut owner = bus
        .consume(&broker.spec("inventory_commands", "inventory", "inventory.commands.>"))
        .await
        .unwrap();
    let mut other = bus
        .consume(&broker.spec("ordering_all", "ordering", "ordering.>"))
        .await
        .unwrap();
    let command = command_message(
        "ordering",
        "inventory",
        "ReserveStock",
        "order-7:reserve",
        &serde_json::json!({"sku": "a", "quantity": 2}),
        Some(uuid::Uuid::new_v4()),
    )
    .unwrap();
    bus.publish(std::slice::from_ref(&command)).await.unwrap();
    let d = next(&mut owner).await;
    assert_eq!(d.message.as_ref().unwrap(), &command);
    d.ack().await.unwrap();
    nothing_more(&mut other).await;
}

/// Publishes `body` of `content_type` as another producer would, without Tessera's
/// headers.
async fn foreign(channel: &lapin::Channel, exchange: &str, body: &[u8], content_type: &str) {
    channel
        .basic_publish(
            exchange.into(),
            "ordering.order.Legacy".into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default().with_content_type(content_type.into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test]
async fn foreign_and_undecodable_messages_are_typed_errors() {
    let broker = Broker::new("foreign").await;
    let bus = broker.bus().await;
    let mut consumer = bus
        .consume(&broker.spec("strict", "ordering", "ordering.>"))
        .await
        .unwrap();

    // Another producer, with the plain client: no Tessera headers at all.
    let connection = Connection::connect(&broker.url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let exchange = broker.config().exchange("ordering");
    foreign(&channel, &exchange, b"<order id=\"1\"/>", "text/xml").await;
    let d = next(&mut consumer).await;
    assert_eq!(d.message, Err(MessageError::ContentType("text/xml".into())));
    d.ack().await.unwrap();
    foreign(&channel, &exchange, b"{}", JSON).await;
    let d = next(&mut consumer).await;
    assert!(
        matches!(d.message, Err(MessageError::MissingHeader(_))),
        "{:?}",
        d.message
    );
    d.ack().await.unwrap();

    // Tessera headers, another content type.
    let m = full_message();
    let mut headers = tessera_projections::integration::wire::to_headers(&m);
    for (k, v) in &mut headers {
        if k == "Content-Type" {
            *v = "text/plain".to_owned();
        }
    }
    bus.publish_raw("ordering", &m.subject, headers, "hi".into())
        .await
        .unwrap();
    let d = next(&mut consumer).await;
    assert_eq!(
        d.message,
        Err(MessageError::ContentType("text/plain".into()))
    );
    d.ack().await.unwrap();

    // Tessera headers, a payload that is not JSON.
    let headers = tessera_projections::integration::wire::to_headers(&m);
    bus.publish_raw("ordering", &m.subject, headers, "{not json".into())
        .await
        .unwrap();
    let d = next(&mut consumer).await;
    assert_eq!(d.message, Err(MessageError::Payload));
    d.ack().await.unwrap();
    let _ = connection.close(200, "OK".into()).await;
}

#[tokio::test]
async fn an_unreachable_broker_is_a_clear_error_in_bounded_time() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("amqp://guest:hunter2@127.0.0.1:{port}/%2f");
    let started = Instant::now();
    let error = RabbitBus::connect(&url).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(matches!(error, BusError::Unavailable(_)), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains(&format!("amqp://127.0.0.1:{port}/%2f")),
        "{text}"
    );
    assert!(
        !text.contains("hunter2") && !text.contains("guest"),
        "{text}"
    );

    let error = RabbitBus::connect("http://guest:hunter2@host")
        .await
        .unwrap_err();
    assert!(matches!(error, BusError::Refused(_)), "{error:?}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[tokio::test]
async fn describe_names_the_broker_without_credentials() {
    let broker = Broker::new("describe").await;
    let bus = broker.bus().await;
    let described = bus.describe();
    assert!(described.starts_with("amqp://127.0.0.1:5672/") || std::env::var("AMQP_URL").is_ok());
    assert!(!described.contains("guest"), "{described}");
}

#[tokio::test]
async fn names_amqp_cannot_carry_are_refused_not_panics() {
    let broker = Broker::new("names").await;
    let bus = broker.bus().await;
    let long = "x".repeat(300);
    let mut m = crate::support::event("ordering.order.OrderPlaced", "order-1", 0);
    for (source, subject) in [
        (long.as_str(), "ordering.order.OrderPlaced".to_owned()),
        ("ordering", format!("ordering.order.{long}")),
        ("a.b", "a.b.c".to_owned()),
    ] {
        m.source = source.to_owned();
        m.subject = subject;
        let error = bus.publish(std::slice::from_ref(&m)).await.unwrap_err();
        assert!(matches!(error, BusError::Refused(_)), "{error:?}");
    }
    let spec = broker.spec(&long, "ordering", "ordering.>");
    assert!(matches!(
        bus.consume(&spec).await,
        Err(BusError::Refused(_))
    ));
    let spec = broker.spec("fine", "ordering", &format!("ordering.{long}"));
    assert!(matches!(
        bus.consume(&spec).await,
        Err(BusError::Refused(_))
    ));
    // The bus still works.
    let mut consumer = bus
        .consume(&broker.spec("ok", "ordering", "ordering.>"))
        .await
        .unwrap();
    let m = crate::support::event("ordering.order.OrderPlaced", "order-1", 0);
    bus.publish(std::slice::from_ref(&m)).await.unwrap();
    assert_eq!(next(&mut consumer).await.message.unwrap(), m);
}
