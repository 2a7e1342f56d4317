//! `shop load`: places orders through the API over several products (or one, `--hot`),
//! closed loop (`--concurrency` in flight) or open loop at a fixed rate (`--rate`),
//! watches them settle, then reads them back; reports throughput, latency percentiles,
//! place → confirmed latency, settled orders per second, outcomes and (with
//! `--database-url`) PostgreSQL transactions per order, and ends with one `key=value`
//! summary line. Loopback targets only.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use tessera_core::BoxError;

use super::LoadArgs;

mod pgstats;
mod place;
mod report;
mod watch;

pub(super) use report::Phase;
use report::{read_targets, Pacing, Summary};

/// Refuses targets that are not on this machine.
pub(super) fn check_loopback(target: &str) -> Result<String, BoxError> {
    let url = reqwest::Url::parse(target).map_err(|e| format!("--target {target:?}: {e}"))?;
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(format!(
            "--target {target:?}: the load generator only targets loopback addresses"
        )
        .into());
    }
    Ok(target.trim_end_matches('/').to_owned())
}

/// Runs the load and prints the report, then the summary line.
pub async fn run(args: LoadArgs) -> Result<(), BoxError> {
    let base = check_loopback(&args.target)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let stats = match args.database_url.as_deref() {
        Some(url) => Some(pgstats::Stats::connect(url).await?),
        None => None,
    };
    let mut summary = Summary::default();
    let mut ids = Vec::new();
    if args.orders > 0 {
        let skus = if args.hot { 1 } else { args.skus };
        let skus = create_products(&client, &base, args.orders, skus).await?;
        summary.skus = skus.len();
        summary.hot = args.hot;
        if args.hot {
            println!("hot product: {}", skus[0]);
        }
        let before = match &stats {
            Some(s) => Some(s.read().await?),
            None => None,
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let watcher = tokio::spawn(watch::watch(
            client.clone(),
            base.clone(),
            rx,
            Duration::from_millis(args.poll_ms),
            Duration::from_secs(args.settle_s),
        ));
        let started = Instant::now();
        let phase = match args.rate {
            Some(rate) => {
                eprintln!(
                    "placing {} orders over {} products at {rate}/s (open loop) on {base}",
                    args.orders,
                    skus.len()
                );
                let rate = rate as f64;
                let open = place::open(&client, &base, &skus, args.orders, rate, &tx).await;
                summary.pacing = Pacing::Open {
                    rate,
                    offered_per_s: open.offered_per_s,
                };
                ids = open.ids;
                open.phase
            }
            None => {
                eprintln!(
                    "placing {} orders over {} products, {} at a time, on {base}",
                    args.orders,
                    skus.len(),
                    args.concurrency
                );
                summary.pacing = Pacing::Closed(args.concurrency);
                let (phase, placed) =
                    place::closed(&client, &base, &skus, args.orders, args.concurrency, &tx).await;
                ids = placed;
                phase
            }
        };
        drop(tx);
        let placed_at = Instant::now();
        print!("{}", phase.describe("placed orders"));
        summary.place = phase;
        summary.watched = watcher.await?;
        // Until the last order was seen settled, or the watch gave up waiting.
        let last = match summary.watched.last {
            Some(t) if summary.watched.unsettled == 0 => t.into_std(),
            _ => Instant::now(),
        };
        summary.span = last.saturating_duration_since(started);
        summary.settle = last.saturating_duration_since(placed_at);
        if let (Some(stats), Some(before)) = (&stats, before) {
            eprintln!(
                "waiting {}s for PostgreSQL to publish its counters",
                args.stats_wait_s
            );
            tokio::time::sleep(Duration::from_secs(args.stats_wait_s)).await;
            summary.committed = Some(before.until(&stats.read().await?));
        }
        print!("{}", summary.describe_settling());
        // Every order once more, one by one: the outcomes, and a check on the watcher.
        summary.outcomes = settle(&client, &base, &ids, Duration::ZERO).await;
        for (status, n) in &summary.outcomes {
            println!("  {status}: {n}");
        }
    }
    if args.read_existing && ids.len() < args.reads {
        let existing = list_orders(&client, &base, args.reads - ids.len()).await?;
        eprintln!("read {} existing order ids", existing.len());
        ids.extend(existing);
    }
    if args.reads > 0 && !ids.is_empty() {
        let targets = read_targets(&ids, args.reads);
        let phase = get(&client, &base, &targets, args.concurrency).await;
        print!("{}", phase.describe("read orders"));
        summary.get = phase;
    }
    println!("{}", summary.line());
    Ok(())
}

/// Creates `skus` products (at least one) with enough stock for `orders` between them.
async fn create_products(
    client: &reqwest::Client,
    base: &str,
    orders: usize,
    skus: usize,
) -> Result<Vec<String>, BoxError> {
    let run = fastrand::u32(..);
    let skus = skus.max(1);
    // One more each for the warm-up order of `until_orderable`.
    let stock = i64::try_from(orders.div_ceil(skus))? + 1;
    let mut created = Vec::new();
    for i in 0..skus {
        let sku = format!("load-{run}-{i}");
        let body = json!({ "sku": sku, "name": "load test item", "price_cents": 250, "initial_stock": stock });
        let response = client
            .post(format!("{base}/v1/products"))
            .json(&body)
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(format!(
                "creating product {sku} failed: {} {}",
                response.status(),
                response.text().await?
            )
            .into());
        }
        created.push(sku);
    }
    until_orderable(client, base, &created).await?;
    Ok(created)
}

/// Places one warm-up order (not counted) for each of `skus`, again while the shop
/// does not know the product yet (split into services, ordering prices from its copy
/// of the catalogue, which follows inventory by a few milliseconds), and waits until
/// they settled, so that their work is not counted in the run's.
async fn until_orderable(
    client: &reqwest::Client,
    base: &str,
    skus: &[String],
) -> Result<(), BoxError> {
    let started = Instant::now();
    let mut ids = Vec::with_capacity(skus.len());
    for sku in skus {
        let body =
            json!({ "customer_id": "load-warm-up", "lines": [{ "sku": sku, "quantity": 1 }] });
        loop {
            let response = client
                .post(format!("{base}/v1/orders"))
                .json(&body)
                .send()
                .await?;
            let status = response.status();
            if status.is_success() {
                let placed: serde_json::Value = response.json().await?;
                ids.push(placed["order_id"].as_str().unwrap_or_default().to_owned());
                break;
            }
            let text = response.text().await?;
            let unknown =
                status == reqwest::StatusCode::UNPROCESSABLE_ENTITY && text.contains("unknown-sku");
            if !unknown || started.elapsed() > Duration::from_secs(30) {
                return Err(format!("warm-up order for {sku} failed: {status} {text}").into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    for id in &ids {
        loop {
            let response = client.get(format!("{base}/v1/orders/{id}")).send().await?;
            let order: serde_json::Value = response.json().await?;
            if order["status"] != "pending" && order["saga"]["status"] != "pending" {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!("warm-up order {id} did not settle in 60 s").into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    println!(
        "products orderable after {:.0} ms ({} warm-up orders, not counted)",
        started.elapsed().as_secs_f64() * 1e3,
        skus.len()
    );
    Ok(())
}

/// `GET /v1/orders/{id}` for every target; a request fails unless it answers 200.
async fn get(client: &reqwest::Client, base: &str, targets: &[&str], concurrency: usize) -> Phase {
    let started = Instant::now();
    let results: Vec<Result<Duration, String>> = stream::iter(targets)
        .map(|id| async move {
            let t = Instant::now();
            let response = client
                .get(format!("{base}/v1/orders/{id}"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response.bytes().await.map_err(|e| e.to_string())?;
            if status.as_u16() != 200 {
                return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
            }
            Ok(t.elapsed())
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed();
    let (mut latencies, mut failures) = (Vec::new(), 0);
    for r in results {
        match r {
            Ok(d) => latencies.push(d),
            Err(e) => {
                failures += 1;
                if failures <= 3 {
                    eprintln!("read failed: {e}");
                }
            }
        }
    }
    Phase::new(latencies, failures, elapsed)
}

/// Up to `limit` order ids from `GET /v1/orders`, oldest first.
async fn list_orders(
    client: &reqwest::Client,
    base: &str,
    limit: usize,
) -> Result<Vec<String>, BoxError> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    while ids.len() < limit {
        let mut request = client
            .get(format!("{base}/v1/orders"))
            .query(&[("limit", "100")]);
        if let Some(cursor) = &after {
            request = request.query(&[("after", cursor)]);
        }
        let page: Value = request.send().await?.error_for_status()?.json().await?;
        let items = page["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        ids.extend(
            items
                .iter()
                .filter_map(|o| o["order_id"].as_str().map(str::to_owned))
                .take(limit - ids.len()),
        );
        match page["next"].as_str() {
            Some(next) if !items.is_empty() => after = Some(next.to_owned()),
            _ => break,
        }
    }
    Ok(ids)
}

/// The outcome of an order that answers 404: not in the order view yet.
const NOT_YET: &str = "not_yet_visible";

/// Polls every order until none is pending or invisible, or `within` passed; counts
/// the statuses seen last.
async fn settle(
    client: &reqwest::Client,
    base: &str,
    ids: &[String],
    within: Duration,
) -> BTreeMap<String, usize> {
    let started = Instant::now();
    let deadline = started.checked_add(within);
    loop {
        let statuses: Vec<String> = stream::iter(ids)
            .map(|id| async move {
                let r = client.get(format!("{base}/v1/orders/{id}")).send().await;
                match r {
                    // Placed, but the order view has not caught up with it yet.
                    Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => NOT_YET.to_owned(),
                    Ok(r) => r
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|v| v["status"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| "unreadable".to_owned()),
                    Err(_) => "unreachable".to_owned(),
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let mut counts = BTreeMap::new();
        for s in statuses {
            *counts.entry(s).or_insert(0) += 1;
        }
        let waiting =
            counts.get("pending").copied().unwrap_or(0) + counts.get(NOT_YET).copied().unwrap_or(0);
        if waiting == 0 || deadline.is_some_and(|d| Instant::now() >= d) {
            println!("outcomes after {:.1}s:", started.elapsed().as_secs_f64());
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::{Json, Router};
    use serde_json::json;

    use super::{check_loopback, settle, NOT_YET};

    /// An order that answers 404 twice, then pending once, then confirmed.
    #[tokio::test]
    async fn settling_waits_for_orders_the_view_does_not_show_yet() {
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        let app = Router::new().route(
            "/v1/orders/{id}",
            get(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    match n {
                        0 | 1 => (StatusCode::NOT_FOUND, Json(json!({ "status": 404 }))),
                        2 => (StatusCode::OK, Json(json!({ "status": "pending" }))),
                        _ => (StatusCode::OK, Json(json!({ "status": "confirmed" }))),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        let ids = vec!["o-1".to_owned()];
        let counts = settle(&client, &base, &ids, Duration::from_secs(20)).await;
        assert_eq!(counts.get("confirmed"), Some(&1), "{counts:?}");
        assert_eq!(counts.get(NOT_YET), None, "{counts:?}");
        assert_eq!(asked.load(Ordering::SeqCst), 4);
        server.abort();
    }

    #[test]
    fn only_loopback_targets() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1/",
            "http://[::1]:8080",
            "http://127.9.9.9",
        ] {
            assert!(check_loopback(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:8080",
            "http://192.168.1.2",
            "http://example.com",
            "not a url",
        ] {
            assert!(check_loopback(bad).is_err(), "{bad}");
        }
    }
}
