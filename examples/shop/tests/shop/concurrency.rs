//! 200 orders for a product with stock 50, placed at once: exactly 50 confirmed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::future::join_all;
use serde_json::json;

use crate::support::TestShop;

async fn two_hundred_orders_for_fifty(shop: TestShop) {
    shop.product("widget", "Widget", 100, 50).await;
    shop.product_until("widget", "visible", |p| p["available"] == 50)
        .await;
    let shop = Arc::new(shop);
    // Watch the stock while the orders are processed: never negative, always adding up.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (shop, done) = (shop.clone(), done.clone());
        tokio::spawn(async move {
            let mut samples = 0;
            while !done.load(Ordering::SeqCst) {
                let (status, p) = shop.get("/v1/products/widget").await;
                assert_eq!(status, 200, "{p}");
                let (on_hand, reserved, available) = (
                    p["on_hand"].as_i64(),
                    p["reserved"].as_i64(),
                    p["available"].as_i64(),
                );
                let (Some(on_hand), Some(reserved), Some(available)) =
                    (on_hand, reserved, available)
                else {
                    panic!("{p}")
                };
                assert!(available >= 0 && reserved >= 0, "negative stock: {p}");
                assert_eq!(reserved + available, on_hand, "{p}");
                samples += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            samples
        })
    };
    let placed = join_all((0..200).map(|i| {
        let shop = shop.clone();
        async move {
            let body = json!({ "customer_id": format!("c{i}"), "lines": [{ "sku": "widget", "quantity": 1 }] });
            let (status, body) = shop.post("/v1/orders", &body).await;
            assert_eq!(status, 201, "{body}");
            body["order_id"].as_str().expect("id").to_owned()
        }
    }))
    .await;
    let mut confirmed = 0;
    let mut out_of_stock = 0;
    for id in &placed {
        let order = shop.settled(id).await;
        match (order["status"].as_str(), order["reason"].as_str()) {
            (Some("confirmed"), _) => confirmed += 1,
            (Some("rejected"), Some("out_of_stock")) => out_of_stock += 1,
            other => panic!("unexpected outcome {other:?}: {order}"),
        }
    }
    assert_eq!((confirmed, out_of_stock), (50, 150));
    shop.product_until("widget", "sold out", |p| {
        p["available"] == 0 && p["reserved"] == 50 && p["on_hand"] == 50
    })
    .await;
    done.store(true, Ordering::SeqCst);
    assert!(watcher.await.expect("watcher") > 0);
    match Arc::try_unwrap(shop) {
        Ok(shop) => shop.finish().await,
        Err(_) => panic!("shop still shared"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_two_hundred_orders_for_fifty() {
    two_hundred_orders_for_fifty(TestShop::memory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_hundred_orders_for_fifty() {
    two_hundred_orders_for_fifty(TestShop::postgres().await).await;
}
