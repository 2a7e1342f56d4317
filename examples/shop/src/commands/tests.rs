//! The owner's side of the saga's commands: one effect per command however often it
//! is delivered, and a refusal recorded once as an event.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tessera_core::{
    BoxError, CommandHandler, EventReader, MemoryStore, ReadStream, RecordedEvent, StreamId,
};
use tessera_projections::integration::{
    wire, Bus, Inbox, InboxConfig, InboxHandle, InboxHandler, MemoryBus, Message,
};
use tessera_projections::MemoryCheckpoints;
use uuid::Uuid;

use super::*;
use crate::inventory::{Hold, ProductCommand};

const ORDER: Uuid = Uuid::from_u128(7);

fn reserve(sku: &str) -> RemoteCommand {
    RemoteCommand::Reserve {
        order_id: ORDER,
        sku: sku.to_owned(),
        quantity: 2,
    }
}

fn message(command: &RemoteCommand) -> Message {
    let mut m = command
        .message("pm-command-1", Some(Uuid::from_u128(99)))
        .expect("a command message");
    m.causation_id = Some(Uuid::from_u128(98));
    m
}

/// Inventory with `tea` (5 in stock), its command handler and its command inbox handler.
async fn inventory() -> (MemoryStore, CommandHandler<Product, MemoryStore>) {
    let store = MemoryStore::new();
    let products = CommandHandler::new(store.clone(), ()).with_state_cache(16);
    let add = ProductCommand::Add {
        sku: "tea".into(),
        name: "Tea".into(),
        price_cents: 450,
        initial_stock: 5,
    };
    products.handle("tea", &add).await.expect("added");
    (store, products)
}

async fn events(store: &MemoryStore, stream: &str) -> Vec<RecordedEvent> {
    let stream = StreamId::new(stream).expect("stream id");
    store
        .read_stream(&stream, ReadStream::forward())
        .await
        .unwrap_or_default()
}

fn spawn(bus: &MemoryBus, handler: impl InboxHandler) -> InboxHandle {
    let mut config = InboxConfig::new(command_consumer("inventory"));
    config.min_backoff = Duration::from_millis(5);
    let bus: Arc<dyn Bus> = Arc::new(bus.clone());
    Inbox::new(bus, handler, MemoryCheckpoints::new(), config).spawn()
}

async fn until(what: &str, check: impl Fn() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn a_command_message_goes_to_its_owner_and_reads_back() {
    let command = reserve("tea");
    let (a, b) = (message(&command), message(&command));
    assert_eq!(a.subject, "inventory.commands.Reserve");
    assert_eq!(a.source, "ordering");
    assert_eq!(a.idempotency_key.as_deref(), Some("pm-command-1"));
    assert_eq!(a.id, b.id, "one key, one message id");
    let payload: serde_json::Value = a.decode().expect("json");
    assert_eq!(payload["sku"], "tea");
    assert_eq!(RemoteCommand::from_message(&a).expect("decodes"), command);
    let refund = RemoteCommand::Refund { order_id: ORDER };
    assert_eq!(message(&refund).subject, "payment.commands.Refund");
    assert!(Product::route(&refund).is_none() && Payment::route(&refund).is_some());
}

/// The same command message delivered twice (as a broker without de-duplication, or a
/// redelivery, hands it over) reserves once.
#[tokio::test]
async fn a_command_delivered_twice_reserves_once() {
    let (store, products) = inventory().await;
    let bus = MemoryBus::new();
    let m = message(&reserve("tea"));
    for _ in 0..2 {
        let headers = wire::to_headers(&m);
        bus.publish_raw("inventory", &m.subject, headers, m.payload.clone());
    }
    let inbox = spawn(&bus, CommandInbox::new(products.clone(), store.clone()));
    until("both deliveries handled", || inbox.status().handled == 2).await;
    let reserved: Vec<_> = events(&store, "product-tea")
        .await
        .into_iter()
        .filter(|e| e.event_type == "StockReserved")
        .collect();
    assert_eq!(reserved.len(), 1, "one reservation: {reserved:?}");
    let meta = &reserved[0].metadata;
    assert_eq!(meta.correlation_id, Some(Uuid::from_u128(99)));
    assert_eq!(meta.causation_id, Some(Uuid::from_u128(98)));
    let tea = products.load("tea").await.expect("loads").state;
    assert_eq!(
        (tea.reserved, tea.holds.get(&ORDER)),
        (2, Some(&Hold::Held(2)))
    );
    // It ran under the message's key: the same key now answers the first outcome.
    let again = ProductCommand::Reserve {
        order_id: ORDER,
        quantity: 2,
    };
    let options = tessera_core::CommandOptions::idempotent("pm-command-1");
    let replay = products.handle_with("tea", &again, options).await;
    assert!(replay.expect("replays").replayed);
    inbox.stop().await;
}

/// A Reserve of a product inventory does not have is refused: one `CommandRejected`
/// event in `rejection-{order}`, however often the command comes.
#[tokio::test]
async fn a_refused_command_is_recorded_once_as_an_event() {
    let (store, products) = inventory().await;
    let handler = CommandInbox::new(products, store.clone());
    let m = message(&reserve("ghost"));
    for _ in 0..2 {
        handler.handle(&m).await.expect("a refusal is handled");
    }
    let stream = format!("{REJECTION}-{ORDER}");
    let rejected = events(&store, &stream).await;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].event_type, REJECTED);
    assert_eq!(rejected[0].id, m.derived_event_id(0));
    assert_eq!(rejected[0].metadata.causation_id, Some(m.id));
    let body: CommandRejected = rejected[0].data.decode().expect("decodes");
    assert_eq!(body.command, reserve("ghost"));
    assert_eq!(body.reason, "product not found");
    assert!(events(&store, "product-ghost").await.is_empty());
}

/// Hands each message to `inner`, then, the first time, never returns: a process that
/// dies after its write and before its acknowledgement.
struct DiesAfterWriting<H> {
    inner: H,
    hung: Arc<AtomicUsize>,
}

impl<H: InboxHandler> InboxHandler for DiesAfterWriting<H> {
    async fn handle(&self, message: &Message) -> Result<(), BoxError> {
        self.inner.handle(message).await?;
        if self.hung.fetch_add(1, Ordering::SeqCst) == 0 {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

/// The command inbox dies after the reservation was written and before the ack: the
/// next one gets the message again, and the stock is held once.
#[tokio::test]
async fn an_inbox_dying_before_its_ack_leaves_one_reservation() {
    let (store, products) = inventory().await;
    let bus = MemoryBus::new();
    bus.publish(&[message(&reserve("tea"))])
        .await
        .expect("published");
    let hung = Arc::new(AtomicUsize::new(0));
    let handler = || DiesAfterWriting {
        inner: CommandInbox::new(products.clone(), store.clone()),
        hung: Arc::clone(&hung),
    };
    let first = spawn(&bus, handler());
    until("the write, then the hang", || {
        hung.load(Ordering::SeqCst) == 1
    })
    .await;
    first.abort();
    drop(first);
    let second = spawn(&bus, handler());
    until("the redelivery handled", || second.status().handled == 1).await;
    assert_eq!(hung.load(Ordering::SeqCst), 2, "delivered again");
    let reserved = events(&store, "product-tea")
        .await
        .iter()
        .filter(|e| e.event_type == "StockReserved")
        .count();
    assert_eq!(reserved, 1);
    assert_eq!(products.load("tea").await.expect("loads").state.reserved, 2);
    second.stop().await;
}

#[tokio::test]
async fn a_dispatcher_waits_until_the_owner_handled_its_command() {
    let handled = Handled::new();
    let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
    let wait = handled.expect(a);
    let owner = handled.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        owner.done(a);
    });
    assert!(wait.until_handled(Duration::from_secs(5)).await);
    handled.done(b); // handled before anyone waited: found by the next wait
    assert!(handled.expect(b).until_handled(Duration::ZERO).await);
    assert!(
        !handled
            .expect(c)
            .until_handled(Duration::from_millis(10))
            .await
    );
    handled.done(c); // after the wait gave up: the dispatch again finds it
    assert!(handled.expect(c).until_handled(Duration::ZERO).await);
}
