//! `shop load`: places orders through the API; reports throughput, latency percentiles
//! and how many orders ended in each status. Loopback targets only.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use tessera_core::BoxError;

use super::LoadArgs;

/// Refuses targets that are not on this machine.
fn check_loopback(target: &str) -> Result<String, BoxError> {
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * (sorted.len() - 1) as f64).round();
    let index = format!("{rank:.0}")
        .parse::<usize>()
        .unwrap_or(0)
        .min(sorted.len() - 1);
    sorted[index]
}

/// Runs the load and prints the report.
pub async fn run(args: LoadArgs) -> Result<(), BoxError> {
    let base = check_loopback(&args.target)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let sku = format!("load-{}", fastrand::u32(..));
    let stock = i64::try_from(args.orders)?;
    let created = client
        .post(format!("{base}/v1/products"))
        .json(&json!({ "sku": sku, "name": "load test item", "price_cents": 250, "initial_stock": stock }))
        .send()
        .await?;
    if !created.status().is_success() {
        return Err(format!(
            "creating the product failed: {} {}",
            created.status(),
            created.text().await?
        )
        .into());
    }
    eprintln!(
        "placing {} orders, {} at a time, on {base}",
        args.orders, args.concurrency
    );
    let started = Instant::now();
    let results: Vec<Result<(Duration, String), String>> = stream::iter(0..args.orders)
        .map(|i| {
            let (client, base, sku) = (&client, &base, &sku);
            async move {
                let t = Instant::now();
                let body = json!({ "customer_id": format!("load-{}", i % 50), "lines": [{ "sku": sku, "quantity": 1 }] });
                let response = client.post(format!("{base}/v1/orders")).json(&body).send().await.map_err(|e| e.to_string())?;
                let status = response.status();
                let value: Value = response.json().await.map_err(|e| e.to_string())?;
                if status.as_u16() != 201 {
                    return Err(format!("{status}: {value}"));
                }
                Ok((t.elapsed(), value["order_id"].as_str().unwrap_or_default().to_owned()))
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut latencies = Vec::new();
    let mut ids = Vec::new();
    let mut failures = 0usize;
    for r in results {
        match r {
            Ok((d, id)) => {
                latencies.push(d);
                ids.push(id);
            }
            Err(e) => {
                failures += 1;
                if failures <= 3 {
                    eprintln!("request failed: {e}");
                }
            }
        }
    }
    latencies.sort();
    let placed = latencies.len();
    println!(
        "placed {placed} orders in {:.2}s: {:.1} orders/s; {failures} failed",
        elapsed.as_secs_f64(),
        placed as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    for (label, p) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
        println!(
            "  {label}: {:.1} ms",
            percentile(&latencies, p).as_secs_f64() * 1000.0
        );
    }
    let outcomes = settle(&client, &base, &ids, Duration::from_secs(args.settle_s)).await;
    for (status, n) in outcomes {
        println!("  {status}: {n}");
    }
    Ok(())
}

/// Polls every order until none is pending or `within` passes; counts by status.
async fn settle(
    client: &reqwest::Client,
    base: &str,
    ids: &[String],
    within: Duration,
) -> BTreeMap<String, usize> {
    let started = Instant::now();
    let deadline = started + within;
    loop {
        let statuses: Vec<String> = stream::iter(ids)
            .map(|id| async move {
                let r = client.get(format!("{base}/v1/orders/{id}")).send().await;
                match r {
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
        let pending = counts.get("pending").copied().unwrap_or(0);
        if pending == 0 || Instant::now() >= deadline {
            println!("outcomes after {:.1}s:", started.elapsed().as_secs_f64());
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::check_loopback;

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
