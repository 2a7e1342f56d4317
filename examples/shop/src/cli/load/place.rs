//! Placing the orders: closed loop (a fixed number in flight, each sent when one
//! answers) or open loop (on a fixed schedule, whether or not earlier ones answered).

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use tessera_core::Position;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::report::Phase;
use super::watch::Placed;

/// Most requests the open loop keeps in flight: below the server's default
/// `--max-requests` (512), so the load never makes the server shed it. When the shop
/// answers too slowly for the rate, sending falls behind the schedule, and the
/// latencies (measured from the schedule) show it.
pub const IN_FLIGHT: usize = 256;

/// Why an order was not placed.
enum NotPlaced {
    /// Refused by admission control (503 `backlogged`): the server asked to come back.
    Refused(String),
    /// Any other failure.
    Failed(String),
}

/// `POST /v1/orders` of one unit of `sku`; the id and position of a `201`, which goes
/// to the watcher as well.
async fn post_order(
    client: &reqwest::Client,
    base: &str,
    sku: &str,
    i: usize,
    placed: &UnboundedSender<Placed>,
) -> Result<String, NotPlaced> {
    let body = json!({ "customer_id": format!("load-{}", i % 50), "lines": [{ "sku": sku, "quantity": 1 }] });
    let response = client
        .post(format!("{base}/v1/orders"))
        .json(&body)
        .send()
        .await
        .map_err(|e| NotPlaced::Failed(e.to_string()))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| NotPlaced::Failed(e.to_string()))?;
    let at = Instant::now();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status.as_u16() != 201 {
        let refused = value["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("/backlogged"));
        let error = format!("{status}: {text}");
        return Err(if refused {
            NotPlaced::Refused(error)
        } else {
            NotPlaced::Failed(error)
        });
    }
    let id = value["order_id"].as_str().unwrap_or_default().to_owned();
    let position = value["position"]
        .as_str()
        .and_then(|p| p.parse::<Position>().ok());
    // The watcher gone (it gave up) only loses timings.
    let _ = placed.send(Placed {
        id: id.clone(),
        position,
        at,
    });
    Ok(id)
}

/// Places `orders` orders of one unit, round robin over `skus`, `concurrency` in
/// flight; returns the phase (latency from each send) and the ids placed.
pub async fn closed(
    client: &reqwest::Client,
    base: &str,
    skus: &[String],
    orders: usize,
    concurrency: usize,
    placed: &UnboundedSender<Placed>,
) -> (Phase, Vec<String>) {
    let started = Instant::now();
    let results: Vec<Result<(Duration, String), NotPlaced>> = stream::iter(0..orders)
        .map(|i| async move {
            let t = Instant::now();
            let id = post_order(client, base, &skus[i % skus.len()], i, placed).await?;
            Ok((t.elapsed(), id))
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    collect(results, started.elapsed())
}

/// How an open-loop placing went.
pub struct Open {
    /// Latency of each order from the instant it was due, not sent: a send held back
    /// by [`IN_FLIGHT`] counts its wait.
    pub phase: Phase,
    /// The ids placed.
    pub ids: Vec<String>,
    /// Orders sent per second, first send to last (the rate asked for, unless the
    /// shop held sending back).
    pub offered_per_s: f64,
}

/// Places `orders` orders of one unit, round robin over `skus`, order `i` due at
/// `i / rate` seconds from the start, each sent when due (open loop, at most
/// [`IN_FLIGHT`] in flight).
pub async fn open(
    client: &reqwest::Client,
    base: &str,
    skus: &[String],
    orders: usize,
    rate: f64,
    placed: &UnboundedSender<Placed>,
) -> Open {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    let mut last_send = started;
    for i in 0..orders {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        last_send = Instant::now();
        let (client, base, placed) = (client.clone(), base.to_owned(), placed.clone());
        let sku = skus[i % skus.len()].clone();
        tasks.spawn(async move {
            let id = post_order(&client, &base, &sku, i, &placed).await;
            drop(slot);
            id.map(|id| (due.elapsed(), id))
        });
    }
    let sent = last_send.saturating_duration_since(started).as_secs_f64();
    let offered_per_s = if orders > 1 && sent > 0.0 {
        (orders - 1) as f64 / sent
    } else {
        0.0
    };
    let results = tasks.join_all().await;
    let (phase, ids) = collect(results, started.elapsed());
    Open {
        phase,
        ids,
        offered_per_s,
    }
}

/// The phase and ids of `results`, the first three failures logged; those admission
/// control refused also count as refused.
fn collect(
    results: Vec<Result<(Duration, String), NotPlaced>>,
    elapsed: Duration,
) -> (Phase, Vec<String>) {
    let (mut latencies, mut ids, mut failures, mut refused) = (Vec::new(), Vec::new(), 0, 0);
    for r in results {
        match r {
            Ok((d, id)) => {
                latencies.push(d);
                ids.push(id);
            }
            Err(e) => {
                failures += 1;
                let e = match e {
                    NotPlaced::Refused(e) => {
                        refused += 1;
                        e
                    }
                    NotPlaced::Failed(e) => e,
                };
                if failures <= 3 {
                    eprintln!("request failed: {e}");
                }
            }
        }
    }
    (
        Phase::new(latencies, failures, elapsed).with_refused(refused),
        ids,
    )
}
