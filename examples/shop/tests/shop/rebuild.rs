//! Rebuilding every projection while orders are placed: queries never fail, and the
//! results afterwards are the ones before plus the new orders.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;

use crate::support::{eventually, TestShop};

const PROJECTIONS: [&str; 4] = [
    "ordering_orders",
    "inventory_products",
    "inventory_reservations",
    "payment_payments",
];

/// Every order, by id, read page by page.
async fn all_orders(shop: &TestShop) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/orders?limit=7&after={a}"),
            None => "/v1/orders?limit=7".to_owned(),
        };
        let (status, page) = shop.get(&path).await;
        assert_eq!(status, 200, "{page}");
        for o in page["items"].as_array().expect("items") {
            out.insert(o["order_id"].as_str().expect("id").to_owned(), o.clone());
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => return out,
        }
    }
}

async fn rebuild_under_load(shop: TestShop) {
    shop.product("book", "Book", 1200, 1000).await;
    let mut first = Vec::new();
    for i in 0..20 {
        first.push(shop.order(&format!("b{i}"), &[("book", 1)]).await.0);
    }
    for id in &first {
        shop.settled(id).await;
    }
    let before = all_orders(&shop).await;
    let shop = Arc::new(shop);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (shop, stop, ids) = (shop.clone(), stop.clone(), first.clone());
        tokio::spawn(async move {
            let mut reads = 0u32;
            while !stop.load(Ordering::SeqCst) {
                for id in ids.iter().step_by(5) {
                    let (status, o) = shop.get(&format!("/v1/orders/{id}")).await;
                    assert_eq!(status, 200, "a query failed during the rebuild: {o}");
                    assert_ne!(
                        o["status"], "pending",
                        "a rebuild showed an older state: {o}"
                    );
                }
                let (status, p) = shop.get("/v1/products/book").await;
                assert_eq!(status, 200, "{p}");
                let (status, page) = shop.get("/v1/orders?limit=5").await;
                assert_eq!(status, 200, "{page}");
                reads += 1;
            }
            reads
        })
    };
    let writer = {
        let shop = shop.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..20 {
                ids.push(shop.order(&format!("n{i}"), &[("book", 1)]).await.0);
            }
            ids
        })
    };
    for name in PROJECTIONS {
        let (status, body) = shop
            .post(
                &format!("/v1/admin/projections/{name}/rebuild"),
                &serde_json::json!({}),
            )
            .await;
        assert_eq!(status, 202, "{name}: {body}");
    }
    eventually("every rebuild took over", || async {
        let (_, s) = shop.get("/v1/admin/projections").await;
        let rebuilds = &s["rebuilds"];
        for name in PROJECTIONS {
            assert!(
                rebuilds[name]["error"].is_null(),
                "{name}: {}",
                rebuilds[name]
            );
        }
        PROJECTIONS
            .iter()
            .all(|n| rebuilds[*n]["finished"] == true)
            .then_some(())
    })
    .await;
    let new = writer.await.expect("writer");
    for id in &new {
        shop.settled(id).await;
    }
    stop.store(true, Ordering::SeqCst);
    assert!(reader.await.expect("reader") > 0);
    let after = all_orders(&shop).await;
    assert_eq!(after.len(), before.len() + new.len());
    for (id, order) in &before {
        assert_eq!(
            after.get(id),
            Some(order),
            "order {id} changed across the rebuild"
        );
    }
    for id in &new {
        assert!(after.contains_key(id), "new order {id} missing");
    }
    shop.product_until("book", "40 reserved", |p| {
        p["reserved"] == 40 && p["available"] == 960
    })
    .await;
    match Arc::try_unwrap(shop) {
        Ok(shop) => shop.finish().await,
        Err(_) => panic!("shop still shared"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_rebuild_under_load() {
    rebuild_under_load(TestShop::memory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rebuild_under_load() {
    rebuild_under_load(TestShop::postgres().await).await;
}
