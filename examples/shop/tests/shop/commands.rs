//! The saga's commands to inventory and payment travel as command messages on the bus;
//! an owner's refusal comes back as an event the saga reads as the command's failure.

use std::sync::Arc;

use serde_json::{json, Value};
use shop::app::{memory_parts, App};
use shop::commands::{CommandRejected, RemoteCommand};
use shop::fulfilment::Fulfilment;
use shop::ordering::{Line, OrderCommand};
use shop::settings::Settings;
use tessera_core::process::Status;
use tessera_core::{EventReader, MemoryStore, ReadStream, StreamId};
use tessera_projections::integration::{MemoryBus, MessageKind};
use uuid::Uuid;

use crate::routes::call;
use crate::support::{eventually, settings};

/// A memory shop on a bus the test holds, and its router.
fn shop(settings: Settings) -> (Arc<App<MemoryStore>>, axum::Router, MemoryBus) {
    let saga = Fulfilment {
        payment_timeout: settings.payment_timeout,
    };
    let bus = MemoryBus::new();
    let mut parts = memory_parts("", saga);
    parts.bus = Arc::new(bus.clone());
    let app = App::start(settings, parts);
    let router = shop::api::router(app.clone());
    (app, router, bus)
}

async fn product(r: &axum::Router, sku: &str, price_cents: i64, stock: i64) {
    let body = json!({"sku": sku, "name": sku, "price_cents": price_cents, "initial_stock": stock});
    let (status, body, _) = call(r, "POST", "/v1/products", Some(&body.to_string()), &[]).await;
    assert_eq!(status, 201, "{body}");
}

async fn order(r: &axum::Router, lines: &[(&str, i64)]) -> String {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
        .collect();
    let body = json!({"customer_id": "c1", "lines": lines}).to_string();
    let (status, placed, _) = call(r, "POST", "/v1/orders", Some(&body), &[]).await;
    assert_eq!(status, 201, "{placed}");
    placed["order_id"].as_str().expect("order id").to_owned()
}

/// The order once its saga ended and `check` holds of it.
async fn order_until(
    r: &axum::Router,
    id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    eventually(what, || async {
        let (_, o, _) = call(r, "GET", &format!("/v1/orders/{id}"), None, &[]).await;
        (o["saga"]["status"] == "completed" && check(&o)).then_some(o)
    })
    .await
}

/// The command messages on the bus to `context`, as (name, order id, key).
fn commands_to(bus: &MemoryBus, context: &str) -> Vec<(String, String, String)> {
    bus.messages(context)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|m| m.kind == MessageKind::Command)
        .map(|m| {
            let command = RemoteCommand::from_message(&m).expect("a shop command");
            let key = m.idempotency_key.clone().expect("a key");
            (m.name, command.order_id().to_string(), key)
        })
        .collect()
}

fn names_for(commands: &[(String, String, String)], order: &str) -> Vec<String> {
    commands
        .iter()
        .filter(|(_, o, _)| o == order)
        .map(|(n, _, _)| n.clone())
        .collect()
}

async fn events_of(store: &MemoryStore, stream: &str) -> Vec<(String, Value)> {
    let stream = StreamId::new(stream).expect("stream id");
    store
        .read_stream(&stream, ReadStream::forward())
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.event_type.clone(), e.data.to_value().expect("json")))
        .collect()
}

/// A Reserve for a product inventory does not know is refused: inventory records
/// `CommandRejected` in its log, its relay publishes it, the ordering inbox puts it in
/// `inbox-{order}`, and the saga releases the line it held and rejects the order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserve_of_an_unknown_product_comes_back_as_a_rejection_event() {
    let (app, r, bus) = shop(settings());
    product(&r, "tea", 450, 5).await;
    // The API refuses an unknown sku, so the order is placed on the handler itself.
    let order_id = Uuid::new_v4();
    let line = |sku: &str| Line {
        sku: sku.to_owned(),
        quantity: 1,
        unit_price_cents: 450,
    };
    let place = OrderCommand::Place {
        order_id,
        customer_id: "c1".into(),
        lines: vec![line("tea"), line("ghost")],
        correlation_id: None,
    };
    app.orders
        .handle(&order_id.to_string(), &place)
        .await
        .expect("placed");
    let id = order_id.to_string();
    let order = order_until(&r, &id, "the order rejected", |o| o["status"] == "rejected").await;
    assert_eq!(order["reason"], "out_of_stock", "{order}");
    let rejected = events_of(&app.stores.inventory, &format!("rejection-{id}")).await;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let (kind, body) = &rejected[0];
    assert_eq!(kind, "CommandRejected");
    let body: CommandRejected = serde_json::from_value(body.clone()).expect("a rejection");
    assert_eq!(
        (body.command, body.reason.as_str()),
        (
            RemoteCommand::Reserve {
                order_id,
                sku: "ghost".into(),
                quantity: 1
            },
            "product not found"
        )
    );
    let inbox = events_of(&app.stores.ordering, &format!("inbox-{id}")).await;
    let kinds: Vec<&str> = inbox.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["StockReserved", "CommandRejected"]);
    let saga = app
        .saga
        .instance(&id)
        .await
        .expect("read")
        .expect("instance");
    assert_eq!(saga.status, Status::Completed);
    assert_eq!(
        saga.reason.as_deref(),
        Some("reservation failed: product not found")
    );
    let commands = commands_to(&bus, "inventory");
    assert_eq!(names_for(&commands, &id), ["Reserve", "Reserve", "Release"]);
    let tea = eventually("tea released", || async {
        let (_, p, _) = call(&r, "GET", "/v1/products/tea", None, &[]).await;
        (p["available"] == 5 && p["reserved"] == 0).then_some(p)
    })
    .await;
    assert_eq!(tea["on_hand"], 5, "{tea}");
    app.shutdown().await;
}

/// Declined, cancelled (refunded and released) and timed-out orders end as they did when
/// the saga called the handlers, each command once on the bus with its own key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_flows_end_as_before_through_the_bus() {
    let (app, r, bus) = shop(settings());
    product(&r, "samovar", 600_000, 4).await;
    product(&r, "kettle", 4000, 3).await;
    let declined = order(&r, &[("samovar", 2)]).await; // 1,200,000 > the gateway's limit
    let cancelled = order(&r, &[("kettle", 1)]).await;
    let o = order_until(&r, &declined, "declined", |o| o["status"] == "rejected").await;
    assert_eq!(o["reason"], "payment_declined", "{o}");
    order_until(&r, &cancelled, "confirmed", |o| o["status"] == "confirmed").await;
    let path = format!("/v1/orders/{cancelled}/cancel");
    let (status, body, _) = call(&r, "POST", &path, Some("{}"), &[]).await;
    assert_eq!(status, 202, "{body}");
    let o = order_until(&r, &cancelled, "refunded and released", |o| {
        o["status"] == "cancelled"
            && o["saga"]["reason"] == "cancelled"
            && o["payment"]["status"] == "refunded"
            && o["reservation"]["status"] == "released"
    })
    .await;
    assert_eq!(o["payment"]["refunded_cents"], 4000, "{o}");
    let payment = commands_to(&bus, "payment");
    assert_eq!(names_for(&payment, &declined), ["RequestPayment"]);
    assert_eq!(
        names_for(&payment, &cancelled),
        ["RequestPayment", "Refund"]
    );
    let inventory = commands_to(&bus, "inventory");
    assert_eq!(names_for(&inventory, &declined), ["Reserve", "Release"]);
    assert_eq!(names_for(&inventory, &cancelled), ["Reserve", "Release"]);
    let mut keys: Vec<&String> = payment
        .iter()
        .chain(&inventory)
        .map(|(_, _, k)| k)
        .collect();
    let all = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), all, "one key per command");
    app.shutdown().await;

    let mut silent = settings();
    silent.gateway.failure_rate = 1.0;
    silent.payment_timeout = std::time::Duration::from_millis(800);
    silent.resilience.retry.max_attempts = 2;
    silent.resilience.retry.min_delay = std::time::Duration::from_millis(5);
    let (app, r, bus) = shop(silent);
    product(&r, "clock", 700, 2).await;
    let timed_out = order(&r, &[("clock", 1)]).await;
    let o = order_until(&r, &timed_out, "timed out", |o| {
        o["status"] == "rejected"
            && o["payment"]["decline_reason"] == "timeout"
            && o["reservation"]["status"] == "released"
    })
    .await;
    assert_eq!(o["reason"], "payment_timeout", "{o}");
    let payment = commands_to(&bus, "payment");
    assert_eq!(
        names_for(&payment, &timed_out),
        ["RequestPayment", "TimeOutPayment"]
    );
    app.shutdown().await;
}
