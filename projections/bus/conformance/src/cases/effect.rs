//! Exactly-once effect: repeats, commands sent twice, an inbox dying before its ack.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tessera_core::{
    BoxError, EventAppender, EventReader, ExpectedVersion, MemoryStore, NewEvent, Position,
    ReadStream, StreamId,
};
use tessera_projections::integration::{
    command_message, ConsumerSpec, Inbox, InboxHandler, Message, MessageKind, JSON,
};
use tessera_projections::MemoryCheckpoints;

use crate::support::{fast_inbox, unique, wait_until, wait_until_async, Recorder};
use crate::BusFactory;

/// Event `version` of stream `acct-1` in `context`, its predecessor `version - 1`.
pub(crate) fn nth(context: &str, version: u64) -> Message {
    Message {
        id: uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("{context}/{version}").as_bytes(),
        ),
        kind: MessageKind::Event,
        name: "Deposited".to_owned(),
        schema_version: 1,
        source: context.to_owned(),
        subject: format!("{context}.acct.Deposited"),
        stream: "acct-1".to_owned(),
        version,
        previous: version.checked_sub(1),
        position: Position::new(version + 1, version + 1),
        correlation_id: None,
        causation_id: None,
        idempotency_key: None,
        headers: BTreeMap::new(),
        content_type: JSON.to_owned(),
        payload: serde_json::to_vec(&serde_json::json!({ "amount": version }))
            .expect("json")
            .into(),
    }
}

/// The same message published three times is handled once.
pub async fn a_repeated_message_has_one_effect(factory: &impl BusFactory) {
    let context = unique("rp");
    let bus = factory.connect().await;
    let m = nth(&context, 0);
    for _ in 0..3 {
        bus.publish(std::slice::from_ref(&m))
            .await
            .expect("publish");
    }
    bus.publish(&[nth(&context, 1)]).await.expect("publish");
    let recorder = Recorder::default();
    let spec = ConsumerSpec::new(unique("c"), &context, format!("{context}.>"));
    let inbox = Inbox::new(
        bus,
        recorder.clone(),
        MemoryCheckpoints::new(),
        fast_inbox(spec),
    )
    .spawn();
    recorder.wait_for(2, "both messages").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let versions: Vec<u64> = recorder.messages().iter().map(|m| m.version).collect();
    assert_eq!(versions, [0, 1], "each message handled once, in order");
    inbox.stop().await;
    factory.cleanup(vec![context]).await;
}

/// Writes one event per message to its own store, with the id derived from the message.
struct Effect {
    store: MemoryStore,
    hang_on: Option<u64>,
    hung: Arc<AtomicUsize>,
}

impl InboxHandler for Effect {
    async fn handle(&self, m: &Message) -> Result<(), BoxError> {
        let stream = StreamId::new(format!("effect-{}", m.kind.as_str()))?;
        let event = NewEvent::json(
            "Applied",
            &serde_json::json!({ "version": m.version, "key": m.idempotency_key }),
        )?
        .with_id(m.derived_event_id(0));
        self.store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await?;
        if self.hang_on == Some(m.version) && self.hung.fetch_add(1, Ordering::SeqCst) == 0 {
            // The process dies after its write and before the acknowledgement.
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

async fn effects(store: &MemoryStore, kind: &str) -> Vec<serde_json::Value> {
    let stream = StreamId::new(format!("effect-{kind}")).expect("stream id");
    store
        .read_stream(&stream, ReadStream::forward())
        .await
        .unwrap_or_default()
        .iter()
        .map(|e| e.data.to_value().expect("json"))
        .collect()
}

/// A command message sent twice with one idempotency key has one effect at its owner.
pub async fn a_command_sent_twice_is_handled_once_by_its_owner(factory: &impl BusFactory) {
    let owner = unique("cm");
    let bus = factory.connect().await;
    let command = || {
        command_message(
            "ordering",
            &owner,
            "Reserve",
            "order-9:reserve",
            &serde_json::json!({"sku": "a"}),
            None,
        )
        .expect("command")
    };
    bus.publish(&[command()]).await.expect("publish");
    bus.publish(&[command()]).await.expect("publish again");
    let store = MemoryStore::new();
    let effect = Effect {
        store: store.clone(),
        hang_on: None,
        hung: Arc::default(),
    };
    let spec = ConsumerSpec::new(unique("c"), &owner, format!("{owner}.commands.>"));
    let inbox = Inbox::new(bus, effect, MemoryCheckpoints::new(), fast_inbox(spec)).spawn();
    wait_until("the command handled", || inbox.status().handled >= 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let applied = effects(&store, "command").await;
    assert_eq!(applied.len(), 1, "one effect: {applied:?}");
    assert_eq!(applied[0]["key"], "order-9:reserve");
    inbox.stop().await;
    factory.cleanup(vec![owner]).await;
}

/// An inbox that dies after its handler wrote and before it acknowledged: the message
/// comes again to the next inbox, and the write lands once.
pub async fn an_inbox_that_dies_before_acking_has_one_effect(factory: &impl BusFactory) {
    let context = unique("dy");
    let bus = factory.connect().await;
    let messages: Vec<Message> = (0..5).map(|v| nth(&context, v)).collect();
    bus.publish(&messages).await.expect("publish");
    let store = MemoryStore::new();
    let hung = Arc::new(AtomicUsize::new(0));
    let positions = MemoryCheckpoints::new();
    let spec = ConsumerSpec::new(unique("c"), &context, format!("{context}.>"));
    let effect = || Effect {
        store: store.clone(),
        hang_on: Some(2),
        hung: Arc::clone(&hung),
    };
    let first = Inbox::new(
        factory.connect().await,
        effect(),
        positions.clone(),
        fast_inbox(spec.clone()),
    )
    .spawn();
    wait_until("the handler to write message 2 and hang", || {
        hung.load(Ordering::SeqCst) == 1
    })
    .await;
    first.abort();
    drop(first);
    let second = Inbox::new(
        factory.connect().await,
        effect(),
        positions,
        fast_inbox(spec),
    )
    .spawn();
    wait_until_async("every message's effect", || async {
        effects(&store, "event").await.len() >= 5
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let versions: Vec<u64> = effects(&store, "event")
        .await
        .iter()
        .map(|v| v["version"].as_u64().expect("version"))
        .collect();
    assert_eq!(versions, [0, 1, 2, 3, 4], "each effect once, in order");
    second.stop().await;
    factory.cleanup(vec![context]).await;
}
