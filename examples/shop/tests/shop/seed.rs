//! `shop seed` on PostgreSQL: seeded orders are real, settled orders to a served shop.

use std::time::Duration;

use shop::app::{postgres_parts, App};
use shop::cli::seed::seed;
use shop::fulfilment::Fulfilment;

use crate::support::{database_url, eventually, settings, unique_prefix, TestShop};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_orders_are_served_as_settled() {
    let prefix = unique_prefix();
    let mut s = settings();
    s.prefix = prefix.clone();
    let saga = Fulfilment {
        payment_timeout: s.payment_timeout,
    };
    let parts = postgres_parts(&database_url(), &prefix, saga)
        .await
        .expect("PostgreSQL at DATABASE_URL");
    let app = App::start(s, parts);
    let seeded = seed(&app, 12, 3, 4, Duration::from_secs(1))
        .await
        .expect("seed");
    app.shutdown().await;
    assert_eq!((seeded.ids.len(), seeded.confirmed), (12, 12));

    // A server started afterwards on the same schemas shows them as settled.
    let shop = TestShop::postgres_on(&prefix, settings()).await;
    for id in &seeded.ids {
        // Each context's view catches up on its own: wait for all of them.
        eventually(
            &format!("order {id} is shown settled in every view"),
            || async {
                let (status, body) = shop.get(&format!("/v1/orders/{id}")).await;
                (status == 200
                    && body["status"] == "confirmed"
                    && body["payment"]["status"] == "captured"
                    && body["reservation"]["status"] == "reserved"
                    && body["saga"]["status"] == "completed")
                    .then_some(body)
            },
        )
        .await;
    }
    let (status, page) = shop.get("/v1/orders?limit=100").await;
    assert_eq!(status, 200, "{page}");
    let listed = page["items"].as_array().expect("items").len();
    assert_eq!(listed, 12, "{page}");
    let (_, product) = shop.get("/v1/products/seed-0").await;
    assert_eq!(product["reserved"], 4, "{product}");
    shop.finish().await;
}
