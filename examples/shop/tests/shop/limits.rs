//! The server's limits over a real socket: the header-read and idle timeouts, load
//! shedding, the rate limit, the request timeout, and the sizes of a request's head.

use std::time::{Duration, Instant};

use crate::raw::{self, ask, closed_within, exchange, product_body, product_head};
use crate::routes::T;
use crate::support::{eventually, settings, TestShop};
use futures_util::future::join_all;

/// An answer `status` of problem type `kind`, as `application/problem+json`.
fn assert_problem(answer: &raw::Answer, status: u16, kind: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(answer.body["type"], format!("{T}{kind}"), "{answer:?}");
    assert!(answer.body["instance"].is_string(), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_slow_to_send_its_head_is_disconnected_while_others_are_served() {
    let mut s = settings();
    s.limits.header_read_timeout = Duration::from_secs(1);
    let shop = TestShop::memory_with(s).await;
    let started = Instant::now();
    let mut slow = raw::send(&shop.base, "GET /health/li").await;
    let mut silent = raw::send(&shop.base, "").await;
    for _ in 0..5 {
        assert_eq!(shop.get("/health/live").await.0, 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the others were served while the slow client was still connected"
    );
    assert!(closed_within(&mut slow, Duration::from_secs(4)).await);
    assert!(closed_within(&mut silent, Duration::from_secs(1)).await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "closed at the header timeout, not before: {took:?}"
    );
    assert_eq!(shop.get("/health/live").await.0, 200);
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_outlives_the_header_timeout_and_closes_at_the_idle_timeout() {
    let mut s = settings();
    s.limits.header_read_timeout = Duration::from_secs(1);
    s.limits.idle_timeout = Duration::from_secs(3);
    let shop = TestShop::memory_with(s).await;
    let request = "GET /health/live HTTP/1.1\r\nHost: shop\r\n\r\n";
    let mut conn = raw::send(&shop.base, "").await;
    let first = ask(&mut conn, request).await.expect("an answer");
    assert_eq!(first.status, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = ask(&mut conn, request)
        .await
        .expect("still open after the header timeout");
    assert_eq!(second.status, 200);
    let idle = Instant::now();
    assert!(closed_within(&mut conn, Duration::from_secs(6)).await);
    let took = idle.elapsed();
    assert!(
        took >= Duration::from_millis(2800) && took < Duration::from_secs(6),
        "closed at the idle timeout: {took:?}"
    );
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_over_the_concurrency_limit_is_shed_and_health_still_answers() {
    let mut s = settings();
    s.limits.max_requests = 2;
    let shop = TestShop::memory_with(s).await;
    // Two requests hold both slots: their bodies stop half-way.
    let body = product_body("held");
    let head = product_head(body.len());
    let hold = format!("{head}{}", &body[..10]);
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(raw::send(&shop.base, &hold).await);
    }
    let shed = |r: &reqwest::Response| {
        r.status() == 503
            && r.headers().get("retry-after").and_then(|v| v.to_str().ok()) == Some("1")
    };
    let url = format!("{}/v1/products/tea", shop.base);
    let last = std::sync::Mutex::new(String::new());
    let started = std::time::Instant::now();
    let taken = tokio::time::timeout(crate::support::WAIT, async {
        loop {
            let r = shop.client.get(&url).send().await.expect("request");
            if shed(&r) {
                return;
            }
            *last.lock().unwrap() = format!("{:?} after {:?}", r.status(), started.elapsed());
            // A held request that reached the server after a probe took its slot was
            // shed (answered): it holds nothing, so send it again.
            for conn in &mut held {
                let mut byte = [0u8; 1];
                if !matches!(conn.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock) {
                    *conn = raw::send(&shop.base, &hold).await;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    })
    .await;
    assert!(
        taken.is_ok(),
        "both slots never seemed taken; the last probe got {}",
        last.lock().unwrap()
    );
    let flood = join_all((0..30).map(|_| shop.client.get(&url).send())).await;
    for r in flood {
        let r = r.expect("an answer");
        assert!(shed(&r), "{r:?}");
        let body: serde_json::Value = r.json().await.expect("problem");
        assert_eq!(body["type"], format!("{T}overloaded"));
    }
    for path in ["/health/live", "/health/ready", "/metrics"] {
        assert_eq!(shop.get(path).await.0, 200, "{path} is never shed");
    }
    // The held requests end (their clients leave): the slots free up.
    drop(held);
    eventually("the slots are free again", || async {
        let (status, _) = shop.get("/v1/products/tea").await;
        (status == 404).then_some(())
    })
    .await;
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let mut s = settings();
    s.limits.rate_per_s = 1;
    s.limits.rate_burst = 2;
    let shop = TestShop::memory_with(s).await;
    for _ in 0..2 {
        assert_eq!(
            shop.get("/v1/products/tea").await.0,
            404,
            "within the burst"
        );
    }
    let r = shop
        .client
        .get(format!("{}/v1/products/tea", shop.base))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&wait), "{wait}");
    let body: serde_json::Value = r.json().await.expect("problem");
    assert_eq!(body["type"], format!("{T}rate-limited"));
    assert_eq!(
        shop.get("/health/live").await.0,
        200,
        "health is not limited"
    );
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(
        shop.get("/v1/products/tea").await.0,
        404,
        "let through after Retry-After"
    );
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_its_timeout_gets_503_or_408_when_its_body_is_late() {
    let mut s = settings();
    s.limits.request_timeout = Duration::from_secs(1);
    s.read_wait = Duration::from_secs(10);
    let shop = TestShop::memory_with(s).await;
    // The server is slow: a read waits for a position the read model never reaches.
    let waits = "/v1/products/tea?min_position=1000000.1000000";
    let request = format!("GET {waits} HTTP/1.1\r\nHost: shop\r\n\r\n");
    let slow_server = exchange(&shop.base, &request).await.expect("503");
    assert_problem(&slow_server, 503, "timeout");
    assert_eq!(slow_server.header("retry-after"), Some("1"));
    // The client is slow: its body stops half-way.
    let body = product_body("late");
    let half = format!("{}{}", product_head(body.len()), &body[..10]);
    let slow_client = exchange(&shop.base, &half).await.expect("408");
    assert_problem(&slow_client, 408, "request-timeout");
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_uri_or_header_gets_its_problem() {
    let shop = TestShop::memory().await;
    let get =
        |path: &str, header: &str| format!("GET {path} HTTP/1.1\r\nHost: shop\r\n{header}\r\n");
    let long = "a".repeat(9 * 1024);
    let uri = exchange(&shop.base, &get(&format!("/v1/products/{long}"), "")).await;
    assert_problem(&uri.expect("414"), 414, "uri-too-long");
    let big = format!("X-Big: {}\r\n", "b".repeat(17 * 1024));
    let header = exchange(&shop.base, &get("/health/live", &big)).await;
    assert_problem(&header.expect("431"), 431, "header-too-large");
    // Far beyond the limit, hyper refuses the head before the shop sees it.
    let huge = format!("X-Huge: {}\r\n", "c".repeat(200 * 1024));
    let refused = exchange(&shop.base, &get("/health/live", &huge)).await;
    assert!(
        refused.as_ref().is_none_or(|a| a.status == 431),
        "{refused:?}: a bare 431 or the connection closed"
    );
    // Within the limits, the same requests are answered.
    assert_eq!(
        shop.get(&format!("/v1/products/{}", &long[..100])).await.0,
        404
    );
    shop.stop().await;
}

/// The value of the sample `name` (no labels) in the shop's `/metrics`.
async fn sample(shop: &TestShop, name: &str) -> u64 {
    let text = shop
        .client
        .get(format!("{}/metrics", shop.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in {text}"))
}

/// With `max_backlog` 1 and a slow payment gateway, orders placed back to back put the
/// pipeline behind: new orders are then refused with a 503 `backlogged` problem and
/// `Retry-After`, nothing of them stored, while every order taken settles; once the
/// pipeline has caught up, orders are taken again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_refused_while_the_pipeline_is_backlogged_and_taken_again_after() {
    let mut s = settings();
    s.gateway.latency = Duration::from_millis(300);
    s.max_backlog = 1;
    let shop = TestShop::memory_with(s).await;
    shop.product("flash", "Flash", 100, 10_000).await;
    let body = serde_json::json!({"customer_id": "c", "lines": [{"sku": "flash", "quantity": 1}]});
    let (first, _) = shop.post_with_key("/v1/orders", "first", &body).await;
    assert_eq!(first, 201);
    let (mut taken, mut refusal) = (Vec::new(), None);
    for _ in 0..2_000 {
        let r = shop
            .client
            .post(format!("{}/v1/orders", shop.base))
            .json(&body)
            .send()
            .await
            .expect("request");
        if r.status() == 201 {
            let placed: serde_json::Value = r.json().await.expect("json");
            taken.push(placed["order_id"].as_str().expect("id").to_owned());
            continue;
        }
        let answer = raw::Answer::of(r).await;
        refusal = Some(answer);
        break;
    }
    let refusal = refusal.expect("a refusal once the pipeline is behind");
    assert_problem(&refusal, 503, "backlogged");
    assert_eq!(refusal.header("retry-after"), Some("1"), "{refusal:?}");
    // While refusing: a retry of an order already taken is answered as the first time,
    // a new keyed order is refused.
    let (status, again) = shop.post_with_key("/v1/orders", "first", &body).await;
    assert_eq!(status, 201, "a retry is answered: {again}");
    let (status, new) = shop.post_with_key("/v1/orders", "second", &body).await;
    assert_eq!(status, 503, "{new}");
    assert!(sample(&shop, "shop_orders_refused_total").await >= 1);
    assert_eq!(
        sample(&shop, "shop_orders_placed_total").await,
        taken.len() as u64 + 1,
        "a refused order is not stored"
    );
    for id in &taken {
        let order = shop.settled(id).await;
        assert_eq!(order["status"], "confirmed", "{order}");
    }
    eventually("orders taken again", || async {
        (shop.post("/v1/orders", &body).await.0 == 201).then_some(())
    })
    .await;
    assert_eq!(sample(&shop, "shop_admission_refusing").await, 0);
    shop.finish().await;
}
