//! End to end over a real socket, on the memory store and on PostgreSQL.

use serde_json::json;

use crate::support::TestShop;

/// One test per scenario and backend.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let shop = crate::support::TestShop::memory().await;
                    super::$name(&shop).await;
                    shop.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let shop = crate::support::TestShop::postgres().await;
                    super::$name(&shop).await;
                    shop.finish().await;
                }
            )*
        }
    };
}

on_both!(
    happy_path_confirms,
    out_of_stock_rejects,
    over_limit_is_declined,
    cancel_refunds_and_releases,
    idempotent_retry,
    read_your_writes,
    hostile_input_is_a_client_error
);

/// Returns the order's id (the EventStoreDB tests check its stored events).
pub(crate) async fn happy_path_confirms(shop: &TestShop) -> String {
    shop.product("tea", "Green tea", 450, 10).await;
    let (id, _) = shop.order("alice", &[("tea", 2)]).await;
    let order = shop.settled(&id).await;
    assert_eq!(order["status"], "confirmed", "{order}");
    assert_eq!(order["total_cents"], 900);
    assert_eq!(order["lines"][0]["unit_price_cents"], 450);
    // Each context's view follows the log on its own: the payment, the reservation and
    // the saga may show their outcome a little after the order does.
    let order = shop
        .order_until(
            &id,
            "payment captured, reservation reserved, saga completed",
            |o| {
                o["payment"]["status"] == "captured"
                    && o["reservation"]["status"] == "reserved"
                    && o["saga"]["status"] == "completed"
            },
        )
        .await;
    assert_eq!(order["payment"]["captured_cents"], 900);
    assert_eq!(
        order["saga"]["steps"],
        json!(["reserve tea: done", "payment: done"])
    );
    shop.product_until("tea", "2 reserved", |p| {
        p["reserved"] == 2 && p["available"] == 8 && p["on_hand"] == 10
    })
    .await;
    id
}

/// Returns the order's id (the EventStoreDB tests check its stored events).
pub(crate) async fn out_of_stock_rejects(shop: &TestShop) -> String {
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
    assert_eq!(order["payment"]["status"], "not_requested");
    // The reservation view follows the log on its own, maybe after the order view.
    shop.order_until(&id, "reservation rejected", |o| {
        o["reservation"]["status"] == "rejected"
    })
    .await;
    shop.product_until("pot", "unchanged", |p| {
        p["on_hand"] == 1 && p["reserved"] == 0 && p["available"] == 1
    })
    .await;
    shop.product_until("cup", "released", |p| {
        p["on_hand"] == 5 && p["reserved"] == 0 && p["available"] == 5
    })
    .await;
    id
}

pub(crate) async fn over_limit_is_declined(shop: &TestShop) {
    shop.product("samovar", "Samovar", 600_000, 4).await;
    let (id, _) = shop.order("carol", &[("samovar", 2)]).await; // 1,200,000 > 1,000,000
    let order = shop.settled(&id).await;
    assert_eq!(
        (order["status"].as_str(), order["reason"].as_str()),
        (Some("rejected"), Some("payment_declined")),
        "{order}"
    );
    // The payment and reservation views follow the log on their own.
    let order = shop
        .order_until(&id, "payment declined, reservation released", |o| {
            o["payment"]["status"] == "declined" && o["reservation"]["status"] == "released"
        })
        .await;
    assert_eq!(order["payment"]["decline_reason"], "declined");
    assert_eq!(order["reservation"]["lines"][0]["status"], "released");
    shop.product_until("samovar", "released", |p| {
        p["reserved"] == 0 && p["available"] == 4
    })
    .await;
}

async fn cancel_refunds_and_releases(shop: &TestShop) {
    shop.product("kettle", "Kettle", 4000, 3).await;
    let (id, _) = shop.order("dave", &[("kettle", 1)]).await;
    assert_eq!(shop.settled(&id).await["status"], "confirmed");
    shop.product_until("kettle", "reserved", |p| p["reserved"] == 1)
        .await;
    let (status, body) = shop
        .post(&format!("/v1/orders/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "cancelled");
    // Each view follows the log on its own: wait for all three, not just the last.
    let order = shop
        .order_until(&id, "cancelled, refunded and released", |o| {
            o["status"] == "cancelled"
                && o["payment"]["status"] == "refunded"
                && o["reservation"]["status"] == "released"
        })
        .await;
    assert_eq!(order["payment"]["refunded_cents"], 4000);
    // The log says refunded only once the gateway did: its ledger holds nothing more.
    let payment = uuid::Uuid::parse_str(&id).expect("order id");
    let refunded = shop::gateway::Account {
        captured_cents: 4000,
        refunded_cents: 4000,
    };
    assert_eq!(shop.gateway.account(payment), refunded);
    assert_eq!(shop.gateway.account(payment).net_cents(), 0);
    let order = shop
        .order_until(&id, "saga compensated", |o| {
            o["saga"]["status"] == "completed" && o["saga"]["reason"] == "cancelled"
        })
        .await;
    assert_eq!(
        order["saga"]["steps"],
        json!(["reserve kettle: compensated", "payment: compensated"])
    );
    shop.product_until("kettle", "released", |p| {
        p["reserved"] == 0 && p["available"] == 3
    })
    .await;
    // Cancelling again records nothing, so nothing reacts, and moves no money.
    let (status, body) = shop
        .post(&format!("/v1/orders/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(body["position"].is_null(), "nothing recorded: {body}");
    let order = shop.settled(&id).await;
    assert_eq!(
        (
            order["payment"]["status"].as_str(),
            order["payment"]["refunded_cents"].as_i64()
        ),
        (Some("refunded"), Some(4000)),
        "{order}"
    );
    assert_eq!(shop.gateway.account(payment), refunded);
}

async fn idempotent_retry(shop: &TestShop) {
    shop.product("mug", "Mug", 800, 10).await;
    let body = json!({ "customer_id": "erin", "lines": [{ "sku": "mug", "quantity": 1 }] });
    let (s1, first) = shop
        .post_with_key("/v1/orders", "erin-order-1", &body)
        .await;
    let (s2, again) = shop
        .post_with_key("/v1/orders", "erin-order-1", &body)
        .await;
    assert_eq!((s1, s2), (201, 201), "{first} {again}");
    assert_eq!(first, again, "the retry answers the first response");
    shop.settled(first["order_id"].as_str().expect("id")).await;
    let (_, page) = shop.get("/v1/orders?customer_id=erin").await;
    assert_eq!(
        page["items"].as_array().map(Vec::len),
        Some(1),
        "one order only: {page}"
    );
    shop.product_until("mug", "one reserved", |p| p["reserved"] == 1)
        .await;
    let other = json!({ "customer_id": "erin", "lines": [{ "sku": "mug", "quantity": 2 }] });
    let (status, problem) = shop
        .post_with_key("/v1/orders", "erin-order-1", &other)
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["type"],
        "https://tessera.example/problems/idempotency-key-reused"
    );
    product_writes_are_idempotent(shop).await;
}

/// Adding and restocking a product with an `Idempotency-Key`: a retry answers the first
/// position and writes nothing; the key with another body is a 422 that writes nothing.
async fn product_writes_are_idempotent(shop: &TestShop) {
    let reused = "https://tessera.example/problems/idempotency-key-reused";
    let add = json!({ "sku": "jar", "name": "Jar", "price_cents": 500, "initial_stock": 2 });
    let (s1, first) = shop.post_with_key("/v1/products", "jar-add", &add).await;
    let (s2, again) = shop.post_with_key("/v1/products", "jar-add", &add).await;
    assert_eq!((s1, s2), (201, 201), "{first} {again}");
    assert_eq!(first, again, "the retry answers the first response");
    let other = json!({ "sku": "jar", "name": "Jar", "price_cents": 600, "initial_stock": 2 });
    let (status, problem) = shop.post_with_key("/v1/products", "jar-add", &other).await;
    assert_eq!(
        (status, &problem["type"]),
        (422, &json!(reused)),
        "{problem}"
    );
    // Without the key, adding it again is the usual conflict.
    let (status, problem) = shop.post("/v1/products", &add).await;
    assert_eq!(status, 409, "{problem}");

    let path = "/v1/products/jar/restock";
    let three = json!({ "quantity": 3 });
    let (s1, first) = shop.post_with_key(path, "jar-r1", &three).await;
    let (s2, again) = shop.post_with_key(path, "jar-r1", &three).await;
    assert_eq!((s1, s2), (200, 200), "{first} {again}");
    assert_eq!(first, again, "the retry answers the first position");
    let (status, problem) = shop
        .post_with_key(path, "jar-r1", &json!({ "quantity": 4 }))
        .await;
    assert_eq!(
        (status, &problem["type"]),
        (422, &json!(reused)),
        "{problem}"
    );
    let (status, _) = shop.post_with_key(path, "jar-r2", &three).await;
    assert_eq!(status, 200, "another key is another restock");
    shop.product_until("jar", "2 + 3 + 3 on hand", |p| p["on_hand"] == 8)
        .await;
    let (_, product) = shop.get("/v1/products/jar").await;
    assert_eq!(product["price_cents"], 500, "{product}");
}

async fn read_your_writes(shop: &TestShop) {
    let position = shop.product("pen", "Pen", 150, 100).await;
    let (status, product) = shop
        .get(&format!("/v1/products/pen?min_position={position}"))
        .await;
    assert_eq!(status, 200, "{product}");
    assert_eq!(product["available"], 100);
    for i in 0..5 {
        let (id, position) = shop.order(&format!("frank{i}"), &[("pen", 1)]).await;
        let (status, order) = shop
            .get(&format!("/v1/orders/{id}?min_position={position}"))
            .await;
        assert_eq!(status, 200, "the order is readable at once: {order}");
        assert_eq!(order["order_id"], id.as_str());
    }
    // A position the log will not reach in time: 503 with Retry-After.
    let r = shop
        .client
        .get(format!(
            "{}/v1/products/pen?min_position=999999999.999999999",
            shop.base
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let problem: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        problem["type"],
        "https://tessera.example/problems/read-model-behind"
    );
}

/// A gateway that never answers: the deadline rejects the order as `payment_timeout`.
fn silent_gateway() -> shop::settings::Settings {
    let mut s = crate::support::settings();
    s.gateway.failure_rate = 1.0;
    s.payment_timeout = std::time::Duration::from_millis(800);
    s.resilience.retry.max_attempts = 2;
    s.resilience.retry.min_delay = std::time::Duration::from_millis(5);
    s
}

pub(crate) async fn unanswered_payment_times_out(shop: &TestShop) {
    shop.product("clock", "Clock", 700, 2).await;
    let (id, _) = shop.order("gina", &[("clock", 1)]).await;
    let order = shop.settled(&id).await;
    assert_eq!(
        (order["status"].as_str(), order["reason"].as_str()),
        (Some("rejected"), Some("payment_timeout")),
        "{order}"
    );
    let order = shop
        .order_until(&id, "payment declined as timed out", |o| {
            o["payment"]["decline_reason"] == "timeout" && o["reservation"]["status"] == "released"
        })
        .await;
    assert_eq!(order["payment"]["status"], "declined");
    shop.product_until("clock", "released", |p| {
        p["reserved"] == 0 && p["available"] == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_unanswered_payment_times_out() {
    let shop = TestShop::memory_with(silent_gateway()).await;
    unanswered_payment_times_out(&shop).await;
    shop.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unanswered_payment_times_out() {
    let shop = TestShop::postgres_on(&crate::support::unique_prefix(), silent_gateway()).await;
    unanswered_payment_times_out(&shop).await;
    shop.finish().await;
}

/// A gateway slower than the payment deadline that still takes the money: each call
/// takes 1 to 3 s, the deadline is 200 ms.
fn late_gateway() -> shop::settings::Settings {
    let mut s = crate::support::settings();
    s.gateway.latency = std::time::Duration::from_secs(2);
    s.payment_timeout = std::time::Duration::from_millis(200);
    s
}

/// The deadline rejects the order; the capture that follows is refunded at the gateway.
async fn late_capture_is_refunded(shop: &TestShop) {
    shop.product("lamp", "Lamp", 1200, 2).await;
    let (id, _) = shop.order("hana", &[("lamp", 1)]).await;
    let order = shop.settled(&id).await;
    assert_eq!(
        (order["status"].as_str(), order["reason"].as_str()),
        (Some("rejected"), Some("payment_timeout")),
        "{order}"
    );
    let payment = uuid::Uuid::parse_str(&id).expect("order id");
    let account = crate::support::eventually("the late capture is refunded", || async {
        let account = shop.gateway.account(payment);
        (account.refunded_cents > 0).then_some(account)
    })
    .await;
    assert_eq!(
        (account.captured_cents, account.net_cents()),
        (1200, 0),
        "{account:?}"
    );
    let order = shop
        .order_until(&id, "payment declined as timed out", |o| {
            o["payment"]["decline_reason"] == "timeout"
        })
        .await;
    assert_eq!(
        (
            order["status"].as_str(),
            order["payment"]["status"].as_str()
        ),
        (Some("rejected"), Some("declined")),
        "{order}"
    );
    assert_eq!(order["payment"]["captured_cents"], 0, "{order}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_late_capture_is_refunded() {
    let shop = TestShop::memory_with(late_gateway()).await;
    late_capture_is_refunded(&shop).await;
    shop.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_late_capture_is_refunded() {
    let shop = TestShop::postgres_on(&crate::support::unique_prefix(), late_gateway()).await;
    late_capture_is_refunded(&shop).await;
    shop.finish().await;
}

/// A transaction left open elsewhere on the server holds back what every reader sees:
/// the admin status and `/metrics` say so while the runners stay live, and the order
/// settles once the transaction ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_long_open_transaction_shows_as_held_back() {
    let shop = TestShop::postgres().await;
    shop.product("tea", "Tea", 450, 10).await;
    let (raw, conn) =
        tokio_postgres::connect(&crate::support::database_url(), tokio_postgres::NoTls)
            .await
            .expect("connect");
    tokio::spawn(conn);
    raw.batch_execute("BEGIN; SELECT pg_current_xact_id();")
        .await
        .expect("open a transaction");
    let (id, _) = shop.order("alice", &[("tea", 1)]).await;
    let runner = crate::support::eventually("a runner reports held-back events", || async {
        let (status, body) = shop.get("/v1/admin/projections").await;
        assert_eq!(status, 200, "{body}");
        body["runners"].as_array()?.iter().find_map(|r| {
            (r["held_back_events"].as_u64() > Some(0) && r["held_back_ms"].is_u64())
                .then(|| r["name"].as_str().unwrap_or_default().to_owned())
        })
    })
    .await;
    let (_, metrics) = shop.get("/metrics").await;
    let line = format!("tessera_runner_held_back_events{{runner=\"{runner}\"}} ");
    let text = metrics.as_str().unwrap_or_default();
    assert!(
        text.lines()
            .any(|l| l.starts_with(&line) && !l.ends_with(" 0")),
        "{line}… missing from:\n{text}"
    );
    assert_eq!(
        shop.get(&format!("/v1/orders/{id}")).await.0,
        404,
        "nothing visible yet"
    );
    raw.batch_execute("COMMIT").await.expect("commit");
    assert_eq!(shop.settled(&id).await["status"], "confirmed");
    shop.finish().await;
}

/// Input PostgreSQL would refuse (a NUL in text) is refused first, as a 4xx.
async fn hostile_input_is_a_client_error(shop: &TestShop) {
    shop.product("nut", "Nut", 10, 10).await;
    let nul = json!({ "customer_id": "a\u{0}b", "lines": [{ "sku": "nut", "quantity": 1 }] });
    assert_eq!(shop.post("/v1/orders", &nul).await.0, 422);
    let name = json!({ "sku": "bolt", "name": "B\u{0}", "price_cents": 1, "initial_stock": 1 });
    assert_eq!(shop.post("/v1/products", &name).await.0, 422);
    assert_eq!(shop.get("/v1/products/a%00b").await.0, 404);
    assert_eq!(shop.get("/v1/orders?customer_id=a%00b").await.0, 422);
    let (status, _) = shop
        .get("/v1/orders?customer_id=%F0%9F%8D%B5&status=pending")
        .await;
    assert_eq!(status, 200);
}
