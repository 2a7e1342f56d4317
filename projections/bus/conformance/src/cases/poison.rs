//! Poison: a message the handler keeps failing on stops the inbox with a status naming
//! it, or is parked when the inbox is configured to.

use tessera_projections::integration::{ConsumerSpec, Inbox, InboxConfig, InboxState};
use tessera_projections::MemoryCheckpoints;

use super::effect::nth;
use crate::support::{fast_inbox, unique, wait_until, Recorder};
use crate::BusFactory;

fn config(context: &str, name: &str) -> InboxConfig {
    InboxConfig {
        max_attempts: 3,
        ..fast_inbox(ConsumerSpec::new(name, context, format!("{context}.>")))
    }
}

/// The inbox stops on the message it failed three times, naming it; nothing after it
/// is handled; fixed and restarted, it goes on from that message.
pub async fn poison_stops_the_inbox_naming_the_message(factory: &impl BusFactory) {
    let context = unique("po");
    let name = unique("c");
    let bus = factory.connect().await;
    bus.publish(&[nth(&context, 0), nth(&context, 1), nth(&context, 2)])
        .await
        .expect("publish");
    let failing = Recorder {
        fail_on: Some(1),
        ..Recorder::default()
    };
    let positions = MemoryCheckpoints::new();
    let inbox = Inbox::new(
        bus.clone(),
        failing.clone(),
        positions.clone(),
        config(&context, &name),
    )
    .spawn();
    wait_until("the inbox to stop on the poison message", || {
        inbox.status().state == InboxState::Failed
    })
    .await;
    let status = inbox.status();
    let poison = status.poison.clone().expect("the status names the message");
    assert_eq!(
        (poison.stream.as_str(), poison.version, poison.name.as_str()),
        ("acct-1", 1, "Deposited")
    );
    assert_eq!(poison.id, Some(nth(&context, 1).id));
    assert!(poison.error.contains("refusing"), "{poison:?}");
    let versions: Vec<u64> = failing.messages().iter().map(|m| m.version).collect();
    assert_eq!(versions, [0], "nothing after the poison message is handled");
    drop(inbox);
    // Fixed and restarted on the same consumer: it goes on from the poison message.
    let fixed = Recorder::default();
    let again = Inbox::new(
        factory.connect().await,
        fixed.clone(),
        positions,
        config(&context, &name),
    )
    .spawn();
    fixed.wait_for(2, "the rest").await;
    let versions: Vec<u64> = fixed.messages().iter().map(|m| m.version).collect();
    assert_eq!(versions, [1, 2]);
    again.stop().await;
    factory.cleanup(vec![context]).await;
}

/// A message that is not an integration event stops the inbox, counted once as
/// rejected: the delivery the inbox stops on is not handed back to the broker while
/// the inbox still reads (a broker that redelivers it at once would have it counted,
/// and stopped on, again). Twenty times, each with an inbox that handles several
/// deliveries at once.
pub async fn a_foreign_message_stops_the_inbox_counted_once(factory: &impl BusFactory) {
    for round in 0..20 {
        let context = unique("fo");
        let bus = factory.connect().await;
        factory
            .publish_raw(
                &context,
                &format!("{context}.acct.Deposited"),
                vec![("content-type".into(), "text/plain".into())],
                b"not an integration event".to_vec(),
            )
            .await;
        let config = InboxConfig {
            concurrency: 8,
            ..config(&context, &unique("c"))
        };
        let inbox = Inbox::new(bus, Recorder::default(), MemoryCheckpoints::new(), config).spawn();
        wait_until("the inbox to stop on the foreign message", || {
            inbox.status().state == InboxState::Failed
        })
        .await;
        let status = inbox.status();
        let poison = status.poison.clone().expect("the status names it");
        assert!(
            poison.error.contains("not an integration message"),
            "round {round}: {poison:?}"
        );
        assert_eq!(status.rejected, 1, "round {round}: {status:?}");
        inbox.stop().await;
        factory.cleanup(vec![context]).await;
    }
}

/// With dead-lettering on, the poison message and a foreign one are parked and
/// counted, and the inbox goes on with the rest of the stream.
pub async fn poison_is_dead_lettered_when_configured(factory: &impl BusFactory) {
    let context = unique("dl");
    let bus = factory.connect().await;
    bus.publish(&[nth(&context, 0), nth(&context, 1)])
        .await
        .expect("publish");
    factory
        .publish_raw(
            &context,
            &format!("{context}.acct.Deposited"),
            vec![("X-Other".into(), "1".into())],
            b"{}".to_vec(),
        )
        .await;
    bus.publish(&[nth(&context, 2)]).await.expect("publish");
    let recorder = Recorder {
        fail_on: Some(1),
        ..Recorder::default()
    };
    let config = InboxConfig {
        dead_letter: true,
        ..config(&context, &unique("c"))
    };
    let inbox = Inbox::new(bus, recorder.clone(), MemoryCheckpoints::new(), config).spawn();
    recorder
        .wait_for(2, "the messages around the poison one")
        .await;
    wait_until("both parked", || inbox.status().dead_lettered == 2).await;
    let status = inbox.status();
    assert_eq!(status.state, InboxState::Running, "{status:?}");
    assert_eq!(status.rejected, 1, "{status:?}");
    let versions: Vec<u64> = recorder.messages().iter().map(|m| m.version).collect();
    assert_eq!(versions, [0, 2]);
    inbox.stop().await;
    factory.cleanup(vec![context]).await;
}

/// An inbox stuck on a message reports the messages waiting behind it as lag, and a
/// lag of 0 once it has handled them.
pub async fn an_inbox_reports_its_lag(factory: &impl BusFactory) {
    let context = unique("lg");
    let name = unique("c");
    let bus = factory.connect().await;
    let messages: Vec<_> = (0..5).map(|v| nth(&context, v)).collect();
    bus.publish(&messages).await.expect("publish");
    let stuck = Recorder {
        fail_on: Some(0),
        ..Recorder::default()
    };
    let config = InboxConfig {
        max_attempts: u32::MAX,
        ..config(&context, &name)
    };
    let positions = MemoryCheckpoints::new();
    let inbox = Inbox::new(bus.clone(), stuck, positions.clone(), config.clone()).spawn();
    wait_until("a lag while stuck", || {
        inbox.status().lag.is_some_and(|lag| lag >= 1)
    })
    .await;
    inbox.stop().await;
    let recorder = Recorder::default();
    let inbox = Inbox::new(factory.connect().await, recorder.clone(), positions, config).spawn();
    recorder.wait_for(5, "every message").await;
    wait_until("no lag once handled", || inbox.status().lag == Some(0)).await;
    inbox.stop().await;
    factory.cleanup(vec![context]).await;
}
