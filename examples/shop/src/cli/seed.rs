//! `shop seed`: places orders in process, through the real command handlers, saga,
//! relays, inboxes and payment worker (no HTTP), and waits until every one has settled.
//! Fills a PostgreSQL shop quickly for read and memory measurements; without a database
//! it runs on the in-memory store and measures the pipeline in process, without HTTP.

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use tessera_core::{BoxError, CommandOptions, EventStore, Metadata, SnapshotStore};
use uuid::Uuid;

use super::SeedArgs;
use crate::app::{memory_parts, postgres_parts, App};
use crate::fulfilment::Fulfilment;
use crate::inventory::ProductCommand;
use crate::ordering::{Line, OrderCommand, OrderStatus};
use crate::settings::Settings;

/// How a seeding went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seeded {
    /// Placed orders' ids, in the order they were placed.
    pub ids: Vec<String>,
    /// Of those, how many ended confirmed.
    pub confirmed: usize,
}

/// How long seeding waits for the next order to settle before giving up.
const STALL: Duration = Duration::from_secs(120);

/// Placed orders that may wait for the saga at once, per placing task: placing runs
/// far ahead of the saga otherwise, and orders queued longer than the payment timeout
/// end `payment_timeout` instead of confirmed.
const AHEAD_PER_TASK: usize = 4;

/// Runs `shop seed`: on PostgreSQL when a database is given, else on the in-memory
/// store (an in-process measurement of the pipeline: nothing is kept).
pub async fn run(args: SeedArgs) -> Result<(), BoxError> {
    let mut settings = Settings {
        prefix: args.database.schema_prefix.clone(),
        ..Settings::default()
    };
    settings.gateway.latency = Duration::from_millis(args.payment_latency_ms);
    settings.resilience.max_concurrent = usize::from(args.payment_concurrency);
    let saga = Fulfilment {
        payment_timeout: settings.payment_timeout,
    };
    let (seeded, secs, store) = match args.database.database_url.as_deref() {
        Some(url) => {
            let parts = postgres_parts(url, &settings.prefix, saga).await?;
            let (seeded, secs) = timed(App::start(settings, parts), &args).await;
            (seeded?, secs, "postgres")
        }
        None => {
            eprintln!(
                "shop seed: no --database-url (or DATABASE_URL): seeding the in-memory store, \
                 which is gone when seeding ends (a measurement of the pipeline in process)"
            );
            let parts = memory_parts(&settings.prefix, saga);
            let (seeded, secs) = timed(App::start(settings, parts), &args).await;
            (seeded?, secs, "memory")
        }
    };
    if let Some(path) = &args.ids_file {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        for id in &seeded.ids {
            writeln!(file, "{id}")?;
        }
    }
    println!(
        "workload=shop-seed store={store} orders={} confirmed={} seconds={secs:.2} orders_per_s={:.1}",
        seeded.ids.len(),
        seeded.confirmed,
        seeded.ids.len() as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// Seeds `app` as `args` say, shuts it down, and gives the outcome with the seconds
/// from the start of seeding (stocking the products, then placing) to the last order
/// settled, not counting the shutdown.
async fn timed<S: EventStore + SnapshotStore>(
    app: Arc<App<S>>,
    args: &SeedArgs,
) -> (Result<Seeded, BoxError>, f64) {
    let started = Instant::now();
    let result = seed(
        &app,
        args.orders,
        args.skus,
        args.concurrency,
        Duration::from_secs(5),
    )
    .await;
    let secs = started.elapsed().as_secs_f64();
    app.shutdown().await;
    (result, secs)
}

/// Places `orders` one-unit orders on `app`, round robin over `skus` products (created,
/// or restocked when they exist, with enough stock), `concurrency` at a time, printing
/// a progress line every `every`; returns once every order has left `pending`.
pub async fn seed<S: EventStore + SnapshotStore>(
    app: &Arc<App<S>>,
    orders: usize,
    skus: usize,
    concurrency: usize,
    every: Duration,
) -> Result<Seeded, BoxError> {
    let skus = stock(app, orders, skus).await?;
    let placed = Arc::new(Mutex::new(Vec::new()));
    let settled_so_far = Arc::new(AtomicUsize::new(0));
    let placing = tokio::spawn(place_all(
        app.clone(),
        skus,
        orders,
        concurrency,
        placed.clone(),
        settled_so_far.clone(),
    ));
    let started = Instant::now();
    let (mut settled, mut confirmed) = (0, 0);
    let mut last_progress = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let ids: Vec<String> = {
            let placed = placed.lock().unwrap_or_else(PoisonError::into_inner);
            placed[settled..].to_vec()
        };
        for id in ids {
            match app.orders.load(&id).await?.state.status {
                Some(OrderStatus::Pending) | None => break,
                Some(status) => {
                    settled += 1;
                    confirmed += usize::from(status == OrderStatus::Confirmed);
                    last_progress = Instant::now();
                }
            }
        }
        settled_so_far.store(settled, Ordering::Relaxed);
        if settled == orders && placing.is_finished() {
            break;
        }
        if placing.is_finished() && last_progress.elapsed() > STALL {
            return Err(format!("order {settled} has not settled within {STALL:?}").into());
        }
        if last_report.elapsed() >= every {
            last_report = Instant::now();
            let n = placed.lock().unwrap_or_else(PoisonError::into_inner).len();
            eprintln!(
                "seed: {n}/{orders} placed, {settled} settled ({confirmed} confirmed) in {:.0}s, {:.1} orders/s",
                started.elapsed().as_secs_f64(),
                settled as f64 / started.elapsed().as_secs_f64().max(1e-9)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    placing.await??;
    let ids = std::mem::take(&mut *placed.lock().unwrap_or_else(PoisonError::into_inner));
    Ok(Seeded { ids, confirmed })
}

/// Adds products `seed-0`… (or restocks them) with stock for `orders` between them.
async fn stock<S: EventStore + SnapshotStore>(
    app: &App<S>,
    orders: usize,
    skus: usize,
) -> Result<Vec<(String, i64)>, BoxError> {
    let skus = skus.max(1);
    let quantity = i64::try_from(orders.div_ceil(skus).max(1))?;
    let mut products = Vec::new();
    for i in 0..skus {
        let sku = format!("seed-{i}");
        let product = app.products.load(&sku).await?.state;
        let command = if product.exists {
            ProductCommand::Restock { quantity }
        } else {
            ProductCommand::Add {
                sku: sku.clone(),
                name: format!("seeded item {i}"),
                price_cents: 250,
                initial_stock: quantity,
            }
        };
        app.products.handle(&sku, &command).await?;
        let price = app.products.load(&sku).await?.state.price_cents;
        products.push((sku, price));
    }
    Ok(products)
}

/// Places the orders as `POST /v1/orders` would, pushing each id once placed; order
/// `i` waits until fewer than `concurrency * AHEAD_PER_TASK` placed orders are unsettled.
async fn place_all<S: EventStore + SnapshotStore>(
    app: Arc<App<S>>,
    skus: Vec<(String, i64)>,
    orders: usize,
    concurrency: usize,
    placed: Arc<Mutex<Vec<String>>>,
    settled: Arc<AtomicUsize>,
) -> Result<(), BoxError> {
    let ahead = concurrency.max(1).saturating_mul(AHEAD_PER_TASK);
    let mut results = stream::iter(0..orders)
        .map(|i| {
            let (app, (sku, price), settled) = (&app, &skus[i % skus.len()], &settled);
            async move {
                while i.saturating_sub(settled.load(Ordering::Relaxed)) >= ahead {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let order_id = Uuid::new_v4();
                let correlation_id = Uuid::new_v4();
                let command = OrderCommand::Place {
                    order_id,
                    customer_id: format!("seed-{}", i % 1000),
                    lines: vec![Line {
                        sku: sku.clone(),
                        quantity: 1,
                        unit_price_cents: *price,
                    }],
                    correlation_id: Some(correlation_id),
                };
                let options =
                    CommandOptions::default().with_metadata(Metadata::correlated(correlation_id));
                let id = order_id.to_string();
                app.orders.handle_with(&id, &command, options).await?;
                Ok::<_, BoxError>(id)
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(id) = results.next().await {
        let id = id?;
        placed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tessera_core::process::Status;

    use super::{run, seed};
    use crate::app::{memory_parts, App};
    use crate::cli::{Database, SeedArgs};
    use crate::fulfilment::Fulfilment;
    use crate::ordering::OrderStatus;
    use crate::settings::Settings;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_a_database_seeding_runs_on_the_memory_store() {
        let args = SeedArgs {
            orders: 25,
            skus: 1,
            concurrency: 8,
            ids_file: Some(std::env::temp_dir().join(format!("seed-{}.txt", uuid::Uuid::new_v4()))),
            payment_latency_ms: 0,
            payment_concurrency: 4,
            database: Database {
                database_url: None,
                schema_prefix: String::new(),
            },
        };
        let path = args.ids_file.clone().expect("a path");
        run(args).await.expect("seeded in memory");
        let ids = std::fs::read_to_string(&path).expect("ids written");
        std::fs::remove_file(&path).expect("removed");
        assert_eq!(ids.lines().count(), 25, "every placed order's id");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn seeded_orders_are_settled_by_the_real_saga() {
        let mut settings = Settings::default();
        settings.gateway.latency = Duration::from_millis(1);
        settings.deadline_tick = Duration::from_millis(20);
        let saga = Fulfilment {
            payment_timeout: settings.payment_timeout,
        };
        let app = App::start(settings, memory_parts("", saga));
        let seeded = seed(&app, 30, 3, 8, Duration::from_millis(100))
            .await
            .expect("seed");
        assert_eq!(seeded.ids.len(), 30);
        assert_eq!(seeded.confirmed, 30);
        let mut unique = seeded.ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 30, "every order has its own id");
        for id in &seeded.ids {
            let order = app.orders.load(id).await.expect("load").state;
            assert_eq!(order.status, Some(OrderStatus::Confirmed), "{id}");
            let saga = app
                .saga
                .instance(id)
                .await
                .expect("saga")
                .expect("instance");
            assert_eq!(saga.status, Status::Completed, "{id}");
        }
        for i in 0..3 {
            let product = app
                .products
                .load(&format!("seed-{i}"))
                .await
                .expect("product");
            assert!(product.state.exists, "seed-{i} was added");
        }
        // Seeding again restocks the same products and adds orders.
        let again = seed(&app, 6, 3, 4, Duration::from_millis(100))
            .await
            .expect("again");
        assert_eq!((again.ids.len(), again.confirmed), (6, 6));
        app.shutdown().await;
    }
}
