//! Restart on PostgreSQL in the middle of a batch of sagas: every order still reaches a
//! final status, and stock and payments add up.

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::support::{quantity_of, settings, unique_prefix, TestShop};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_saga_on_postgres() {
    let prefix = unique_prefix();
    let mut slow = settings();
    slow.gateway.latency = std::time::Duration::from_millis(20);
    let first = TestShop::postgres_on(&prefix, slow.clone()).await;
    first.product("lamp", "Lamp", 1500, 30).await;
    first.product("throne", "Throne", 900_000, 10).await; // two of them go over the limit
    let placed: Vec<String> = join_all((0..40).map(|i| {
        let shop = &first;
        async move {
            let lines = match i % 4 {
                0 => json!([{ "sku": "throne", "quantity": 2 }]),
                1 => json!([{ "sku": "lamp", "quantity": 1 }, { "sku": "throne", "quantity": 1 }]),
                _ => json!([{ "sku": "lamp", "quantity": 1 }]),
            };
            let (status, body) = shop
                .post(
                    "/v1/orders",
                    &json!({ "customer_id": format!("r{i}"), "lines": lines }),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            body["order_id"].as_str().expect("id").to_owned()
        }
    }))
    .await;
    // Stop while sagas are in flight, then start a new shop on the same schemas.
    first.stop().await;
    let second = TestShop::postgres_on(&prefix, slow).await;
    let mut orders: Vec<Value> = Vec::new();
    for id in &placed {
        orders.push(second.settled(id).await);
    }
    let confirmed: Vec<&Value> = orders
        .iter()
        .filter(|o| o["status"] == "confirmed")
        .collect();
    assert!(
        orders
            .iter()
            .all(|o| o["status"] == "confirmed" || o["status"] == "rejected"),
        "{orders:?}"
    );
    assert!(!confirmed.is_empty());
    // Payments: captured − refunded equals the confirmed orders' totals.
    let settled_payments = crate::support::eventually("payments settle", || async {
        let mut net = 0;
        for id in &placed {
            let (_, o) = second.get(&format!("/v1/orders/{id}")).await;
            let p = &o["payment"];
            if p["status"] == "requested" {
                return None;
            }
            net += p["captured_cents"].as_i64().unwrap_or(0)
                - p["refunded_cents"].as_i64().unwrap_or(0);
        }
        Some(net)
    })
    .await;
    let totals: i64 = confirmed
        .iter()
        .map(|o| o["total_cents"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(settled_payments, totals);
    // Stock: what is reserved is exactly what confirmed orders hold.
    for sku in ["lamp", "throne"] {
        let held = quantity_of(confirmed.iter().copied(), sku);
        let p = second
            .product_until(sku, "reservations add up", |p| {
                p["reserved"].as_i64() == Some(held)
            })
            .await;
        assert_eq!(
            p["reserved"].as_i64().unwrap_or(-1) + p["available"].as_i64().unwrap_or(-1),
            p["on_hand"].as_i64().unwrap_or(0),
            "{p}"
        );
    }
    second.finish().await;
}
