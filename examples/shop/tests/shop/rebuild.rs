//! Rebuilding every projection while orders are placed: queries never fail, and the
//! results afterwards are the ones before plus the new orders. A rebuild's progress
//! counts the events it applies.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use std::time::Duration;

use serde_json::Value;
use shop::app::{memory_parts, postgres_parts, App};
use shop::cli::seed::seed;
use shop::fulfilment::Fulfilment;
use tessera_core::{EventFilter, EventReader, EventStore, Position, ReadAll, SnapshotStore};

use crate::support::{database_url, drop_schemas, eventually, settings, unique_prefix, TestShop};

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

/// The events of `log` passing `filter`, at or before `up_to`.
async fn events_up_to<S: EventReader>(log: &S, filter: EventFilter, up_to: Position) -> u64 {
    let read = ReadAll::after(Position::START, 1_000_000).filter(filter);
    let events = log.read_all(read).await.expect("read the log");
    events.iter().filter(|e| e.position <= up_to).count() as u64
}

/// The orders view's rebuild reads the `order` category of the ordering log, which also
/// holds the saga's inbox: its progress totals the order events up to the head at the
/// start (not the whole log), `done` reaches that total, and the time left is reckoned
/// in the same events.
async fn rebuild_progress_counts_what_it_applies<S: EventStore + SnapshotStore>(app: Arc<App<S>>) {
    let seeded = seed(&app, 6, 2, 3, Duration::from_secs(1))
        .await
        .expect("seed");
    assert_eq!(seeded.confirmed, 6);
    // Seeding reads each order's stream, which shows a commit at once; the log's readers
    // (and so the rebuild's head) see it only once no older transaction on the server is
    // still open. Wait until the orders' last events are visible to readers, so that
    // none becomes visible during the rebuild.
    let mut last = Position::START;
    for id in &seeded.ids {
        let stream = tessera_core::StreamId::from_parts("order", id).expect("stream id");
        let newest = app
            .stores
            .ordering
            .read_stream(&stream, tessera_core::ReadStream::backward().limit(1))
            .await
            .expect("read the order");
        last = last.max(newest.first().expect("an order event").position);
    }
    app.wait_for(&app.views.orders.name(), last, Duration::from_secs(30))
        .await
        .expect("the orders' events visible to readers");
    let mut seen = Vec::new();
    let applied = app
        .rebuild("ordering_orders", |p| seen.push(p.clone()))
        .await
        .expect("rebuild");
    let first = seen.first().expect("progress reported");
    let head = first.target.expect("a head at the start");
    let log = &app.stores.ordering;
    let wanted = events_up_to(log, app.views.orders.filter(), head).await;
    let whole = events_up_to(log, EventFilter::all(), head).await;
    assert!(whole > wanted, "the log holds more than the view reads");
    assert_eq!(
        first.total_estimate, wanted,
        "the total is the events the rebuild applies: {first:?}"
    );
    for p in &seen {
        assert!(p.done <= p.total_estimate, "{p:?}");
        if p.done == p.total_estimate {
            assert_eq!(p.eta, Some(Duration::ZERO), "nothing left: {p:?}");
        }
    }
    let last = seen.last().expect("progress");
    assert!(last.finished, "{last:?}");
    assert_eq!((last.done, last.total_estimate), (applied, applied));
    assert_eq!(applied, wanted, "nothing arrived during the rebuild");
    app.shutdown().await;
}

fn saga() -> Fulfilment {
    Fulfilment {
        payment_timeout: settings().payment_timeout,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_rebuild_progress_counts_what_it_applies() {
    let app = App::start(settings(), memory_parts("", saga()));
    rebuild_progress_counts_what_it_applies(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rebuild_progress_counts_what_it_applies() {
    let prefix = unique_prefix();
    let mut s = settings();
    s.prefix = prefix.clone();
    let parts = postgres_parts(&database_url(), &prefix, saga())
        .await
        .expect("PostgreSQL at DATABASE_URL");
    rebuild_progress_counts_what_it_applies(App::start(s, parts)).await;
    drop_schemas(&prefix).await;
}
