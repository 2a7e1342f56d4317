//! Messages on the wire: every header survives the round trip; a message that no
//! Tessera relay wrote is a typed error; an unreachable server is a clear error.

use std::time::{Duration, Instant};

use tessera_nats::NatsBus;
use tessera_projections::integration::{
    command_message, Bus, BusError, ConsumerSpec, MessageError, MessageKind,
};

use crate::support::{isolated, next, unique};

/// An event with every header set, extras included.
pub use tessera_bus_conformance::fixtures::full_event as event;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_header_round_trips_and_a_foreign_message_is_a_typed_error() {
    let bus = isolated().await;
    let sent = event("ordering");
    let command = command_message(
        "shipping",
        "ordering",
        "Cancel",
        "order-7:cancel",
        &serde_json::json!({"order": 7}),
        Some(uuid::Uuid::new_v4()),
    )
    .expect("command");
    bus.publish(&[sent.clone(), command.clone()])
        .await
        .expect("publish");
    // A message published with the plain client, no Tessera headers at all.
    bus.client()
        .publish(
            bus.server_subject("ordering.acct.Deposited"),
            "{\"from\":\"elsewhere\"}".into(),
        )
        .await
        .expect("plain publish");
    bus.client().flush().await.expect("flush");

    let spec = ConsumerSpec::new(unique("c"), "ordering", "ordering.>");
    let mut consumer = bus.consume(&spec).await.expect("consume");
    let first = next(&mut consumer).await.expect("the event");
    assert_eq!(
        first.message.as_ref().expect("an integration message"),
        &sent
    );
    assert_eq!(first.attempt, 1);
    first.ack().await.expect("ack");
    let second = next(&mut consumer).await.expect("the command");
    let got = second.message.as_ref().expect("an integration message");
    assert_eq!(got, &command);
    assert_eq!(got.kind, MessageKind::Command);
    second.ack().await.expect("ack");
    let foreign = next(&mut consumer).await.expect("the foreign message");
    assert_eq!(
        foreign
            .message
            .as_ref()
            .expect_err("not an integration message"),
        &MessageError::MissingHeader("Content-Type")
    );
    foreign.ack().await.expect("ack");
    assert!(next(&mut consumer).await.is_none(), "nothing else arrives");
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_naming_the_address_without_credentials() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("nats://alice:s3cr3t-pw@127.0.0.1:{port}");
    let started = Instant::now();
    let err = NatsBus::builder(url)
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect_err("nothing listens there");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded: {:?}",
        started.elapsed()
    );
    let BusError::Unavailable(text) = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(text.contains(&format!("nats://127.0.0.1:{port}")), "{text}");
    assert!(
        !text.contains("s3cr3t") && !text.contains("alice"),
        "{text}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn describe_names_the_server_and_bad_names_are_refused() {
    let bus = isolated().await;
    assert!(!bus.describe().contains('@'), "{}", bus.describe());
    assert!(bus.describe().contains("127.0.0.1") || std::env::var("NATS_URL").is_ok());
    let mut bad = event("ordering");
    bad.subject = "shipping.acct.Deposited".into();
    assert!(matches!(
        bus.publish(&[bad]).await,
        Err(BusError::Refused(_))
    ));
    let spec = ConsumerSpec::new("a.b", "ordering", "ordering.>");
    assert!(matches!(
        bus.consume(&spec).await,
        Err(BusError::Refused(_))
    ));
    let spec = ConsumerSpec::new("c", "a.b", "a.b.>");
    assert!(matches!(
        bus.consume(&spec).await,
        Err(BusError::Refused(_))
    ));
}
