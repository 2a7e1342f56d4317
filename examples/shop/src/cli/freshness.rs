//! `shop freshness`: how soon a write shows in the shop's reads, at idle. Creates
//! products one at a time (`POST /v1/products`), and after each `201` reads the product
//! back (`GET /v1/products/{sku}`) back to back until it is there; reports the time
//! from the `201` to the first `200`, and the round trip of a read that finds it at
//! once, which bounds the measurement's resolution.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tessera_core::BoxError;

use super::load::{check_loopback, Phase};
use super::FreshnessArgs;

/// Gives up on a write not visible after this long.
const GIVE_UP: Duration = Duration::from_secs(5);

/// Runs the probe and prints the report, then one `key=value` summary line.
pub async fn run(args: FreshnessArgs) -> Result<(), BoxError> {
    let base = check_loopback(&args.target)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let pause = Duration::from_millis(args.pause_ms);
    let (mut delays, mut reads, mut at_once) = (Vec::new(), Vec::new(), 0usize);
    let started = Instant::now();
    for i in 0..args.writes {
        let sku = format!("fresh-{run}-{i}");
        let body =
            json!({"sku": sku, "name": "freshness probe", "price_cents": 100, "initial_stock": 1});
        let created = client
            .post(format!("{base}/v1/products"))
            .json(&body)
            .send()
            .await?;
        if created.status() != reqwest::StatusCode::CREATED {
            let status = created.status();
            let text = created.text().await.unwrap_or_default();
            return Err(format!("POST /v1/products answered {status}: {text}").into());
        }
        let answered = Instant::now();
        let mut tries = 0usize;
        loop {
            let sent = Instant::now();
            let got = client
                .get(format!("{base}/v1/products/{sku}"))
                .send()
                .await?;
            tries += 1;
            match got.status() {
                reqwest::StatusCode::OK => {
                    delays.push(answered.elapsed());
                    if tries == 1 {
                        at_once += 1;
                        reads.push(sent.elapsed());
                    }
                    break;
                }
                reqwest::StatusCode::NOT_FOUND if answered.elapsed() < GIVE_UP => {}
                status => {
                    return Err(format!(
                        "GET /v1/products/{sku} answered {status} {:.1} ms after the 201",
                        answered.elapsed().as_secs_f64() * 1000.0
                    )
                    .into())
                }
            }
        }
        tokio::time::sleep(pause).await;
    }
    let visible = Phase::new(delays, 0, started.elapsed());
    let first_read = Phase::new(reads, 0, started.elapsed());
    print!("{}", visible.describe("201 to visible, writes"));
    if first_read.count() > 0 {
        print!(
            "{}",
            first_read.describe("reads that found the write at once")
        );
    }
    println!(
        "workload=shop-freshness writes={} pause_ms={} visible_p50_ms={:.2} visible_p90_ms={:.2} visible_p99_ms={:.2} visible_max_ms={:.2} at_once={at_once} read_p50_ms={:.2}",
        args.writes,
        args.pause_ms,
        visible.ms(0.5),
        visible.ms(0.9),
        visible.ms(0.99),
        visible.ms(1.0),
        first_read.ms(0.5),
    );
    Ok(())
}
