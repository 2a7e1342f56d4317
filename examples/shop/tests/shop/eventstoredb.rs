//! The shop on EventStoreDB: end to end against the in-process fake server of
//! `tessera-eventstoredb-fake` (events there, read models and saga in memory), and the
//! honest failure mode with EventStoreDB unreachable: commands answer 503
//! problem+json (never a 5xx of another kind, never a hang) and the server stays up.
//!
//! The fake models the gRPC API the client uses, not a real server (see its crate
//! docs): nothing here ran against a real EventStoreDB.

use std::sync::{Arc, Mutex};

use serde_json::json;
use shop::inventory::{Product, ProductCommand};
use tessera_core::testkit::Forward;
use tessera_core::{
    CommandHandler, CommandOptions, EventId, EventReader, ReadStream, RecordedEvent, StoreError,
    StreamId, Version,
};
use tessera_eventstoredb::EventStoreDbStore;
use tessera_eventstoredb_fake::FakeServer;

use crate::support::TestShop;

/// A closed port; the client gives up after one short discovery attempt.
const CLOSED: &str = "esdb://127.0.0.1:9?tls=false&maxDiscoverAttempts=1&discoveryInterval=10&gossipTimeout=200&defaultDeadline=2000";

/// The event types of `stream` in `context`, read back from the fake through a client
/// of its own (the shop keeps each context's streams under `{context}:`).
async fn stored_types(fake: &FakeServer, context: &str, stream: &str) -> Vec<String> {
    let store = EventStoreDbStore::connect_with_prefix(&fake.url(), &format!("{context}:"))
        .expect("client");
    let stream = StreamId::new(stream).expect("valid");
    store
        .read_stream(&stream, ReadStream::forward())
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

/// The memory and PostgreSQL end-to-end scenarios, run on the fake, then the events
/// checked in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_confirmed_on_the_fake_eventstoredb() {
    let fake = FakeServer::start().await;
    let shop = TestShop::eventstoredb(&fake.url()).await;
    let id = crate::e2e::happy_path_confirms(&shop).await;

    // The events are in the fake server, not in some memory store.
    assert_eq!(
        stored_types(&fake, "ordering", &format!("order-{id}")).await,
        ["OrderPlaced", "OrderConfirmed"]
    );
    assert_eq!(
        stored_types(&fake, "inventory", "product-tea").await,
        ["ProductAdded", "StockReserved"]
    );
    assert_eq!(
        stored_types(&fake, "payment", &format!("payment-{id}")).await,
        ["PaymentRequested", "PaymentCaptured"]
    );
    shop.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_stock_order_is_rejected_on_the_fake_eventstoredb() {
    let fake = FakeServer::start().await;
    let shop = TestShop::eventstoredb(&fake.url()).await;
    let id = crate::e2e::out_of_stock_rejects(&shop).await;

    assert_eq!(
        stored_types(&fake, "ordering", &format!("order-{id}")).await,
        ["OrderPlaced", "OrderRejected"]
    );
    assert_eq!(
        stored_types(&fake, "inventory", "product-pot").await,
        ["ProductAdded", "ReservationRejected"]
    );
    assert_eq!(
        stored_types(&fake, "inventory", "product-cup").await,
        ["ProductAdded", "StockReserved", "ReservationReleased"]
    );
    assert!(
        stored_types(&fake, "payment", &format!("payment-{id}"))
            .await
            .is_empty(),
        "no payment was requested"
    );
    shop.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_eventstoredb_gives_503_problems() {
    let shop = TestShop::eventstoredb(CLOSED).await;
    let body = json!({"sku": "tea-01", "name": "Tea", "price_cents": 450, "initial_stock": 3});
    let (status, problem) = shop.post("/v1/products", &body).await;
    assert_eq!(status, 503, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("unavailable")),
        "{problem}"
    );
    let (status, _) = shop.get("/health/live").await;
    assert_eq!(status, 200);
    shop.finish().await;
}

/// The fake EventStoreDB with one race staged: the first `find_event` (a keyed
/// command's check for an earlier run of itself) answers what it found, and then,
/// before the answer arrives, another run of the same keyed command lands.
#[derive(Clone)]
struct Racing {
    inner: EventStoreDbStore,
    other_run: Arc<Mutex<Option<OtherRun>>>,
}

/// The other run: its handler (on the fake directly) and its options (the same key).
type OtherRun = (CommandHandler<Product, EventStoreDbStore>, CommandOptions);

impl Forward for Racing {
    type Inner = EventStoreDbStore;

    fn inner(&self) -> &EventStoreDbStore {
        &self.inner
    }

    async fn find_event(
        &self,
        stream: &StreamId,
        id: EventId,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        let found = self.inner.find_event(stream, id).await;
        let other = self.other_run.lock().expect("lock").take();
        if let Some((handler, options)) = other {
            handler
                .handle_with("jar", &ProductCommand::Restock { quantity: 3 }, options)
                .await
                .expect("the other run lands");
        }
        found
    }
}

/// Two runs of one keyed restock, the second landing just after the first checked for
/// it: EventStoreDB takes repeated ids when the expected version is current, so a run
/// that loaded after that landing would append them again. The stock rises once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_command_racing_its_own_retry_lands_once_on_the_fake_eventstoredb() {
    let fake = FakeServer::start().await;
    let store = EventStoreDbStore::connect_with_prefix(&fake.url(), "inventory:").expect("client");
    let plain = CommandHandler::<Product, _>::new(store.clone(), ());
    let add = ProductCommand::Add {
        sku: "jar".into(),
        name: "Jar".into(),
        price_cents: 500,
        initial_stock: 2,
    };
    plain.handle("jar", &add).await.expect("added");
    let keyed = CommandOptions {
        idempotency_key: Some("restock-1".into()),
        ..CommandOptions::default()
    };
    let racing = Racing {
        inner: store.clone(),
        other_run: Arc::new(Mutex::new(Some((plain.clone(), keyed.clone())))),
    };
    let out = CommandHandler::<Product, _>::new(racing, ())
        .handle_with("jar", &ProductCommand::Restock { quantity: 3 }, keyed)
        .await
        .expect("the retry succeeds");
    assert_eq!(out.version, Some(Version(1)), "{out:?}");
    assert_eq!(
        stored_types(&fake, "inventory", "product-jar").await,
        ["ProductAdded", "ProductRestocked"],
        "the restock is stored once"
    );
    let state = plain.load("jar").await.expect("load").state;
    assert_eq!(state.on_hand, 5);
}
