//! The shop on EventStoreDB: end to end against the in-process fake server of
//! `tessera-eventstoredb-fake` (events there, read models and saga in memory), and the
//! honest failure mode with EventStoreDB unreachable: commands answer 503
//! problem+json (never a 5xx of another kind, never a hang) and the server stays up.
//!
//! The fake models the gRPC API the client uses, not a real server (see its crate
//! docs): nothing here ran against a real EventStoreDB.

use serde_json::{json, Value};
use tessera_core::{EventReader, ReadStream, StreamId};
use tessera_eventstoredb::EventStoreDbStore;
use tessera_eventstoredb_fake::FakeServer;

use crate::support::{eventually, TestShop};

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

async fn order_when(
    shop: &TestShop,
    id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    eventually(what, || async {
        let (status, order) = shop.get(&format!("/v1/orders/{id}")).await;
        (status == 200 && check(&order)).then_some(order)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_confirmed_on_the_fake_eventstoredb() {
    let fake = FakeServer::start().await;
    let shop = TestShop::eventstoredb(&fake.url()).await;
    shop.product("tea", "Green tea", 450, 10).await;
    let (id, _) = shop.order("alice", &[("tea", 2)]).await;
    assert_eq!(shop.settled(&id).await["status"], "confirmed");
    // Each context's read model catches up on its own: wait for all of them.
    let order = order_when(&shop, &id, "payment, reservation and saga settle", |o| {
        o["payment"]["status"] == "captured"
            && o["reservation"]["status"] == "reserved"
            && o["saga"]["status"] == "completed"
    })
    .await;
    assert_eq!(order["status"], "confirmed", "{order}");
    assert_eq!(order["total_cents"], 900);
    assert_eq!(order["payment"]["captured_cents"], 900);
    assert_eq!(
        order["saga"]["steps"],
        json!(["reserve tea: done", "payment: done"])
    );
    shop.product_until("tea", "2 reserved", |p| {
        p["on_hand"] == 10 && p["reserved"] == 2 && p["available"] == 8
    })
    .await;

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
    shop.product("pot", "Tea pot", 2500, 1).await;
    shop.product("cup", "Cup", 300, 5).await;
    // The first line is reserved, the second refused: the first is released again.
    let (id, _) = shop.order("bob", &[("cup", 2), ("pot", 3)]).await;
    let order = shop.settled(&id).await;
    assert_eq!(
        (order["status"].as_str(), order["reason"].as_str()),
        (Some("rejected"), Some("out_of_stock")),
        "{order}"
    );
    let order = order_when(&shop, &id, "reservation rejected", |o| {
        o["reservation"]["status"] == "rejected"
    })
    .await;
    assert_eq!(order["payment"]["status"], "not_requested", "{order}");
    shop.product_until("pot", "unchanged", |p| {
        p["on_hand"] == 1 && p["reserved"] == 0 && p["available"] == 1
    })
    .await;
    shop.product_until("cup", "released", |p| {
        p["on_hand"] == 5 && p["reserved"] == 0 && p["available"] == 5
    })
    .await;

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
