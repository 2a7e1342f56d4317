//! `/metrics` serves, after the shop's own series, what the libraries record through
//! the `metrics` facade (append latency, runner lag) and the per-route latency
//! histogram, rendered by the Prometheus recorder.

use crate::routes::{call, memory_app, place_tea_order};
use crate::support::{eventually, settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_shows_in_the_recorded_metrics() {
    let app = memory_app(settings());
    let r = shop::api::router(app.clone());
    place_tea_order(&r).await;
    let wanted = [
        "tessera_append_duration_seconds_bucket{store=\"memory\",outcome=\"ok\",le=",
        "tessera_runner_lag_seconds{runner=\"ordering_orders\"}",
        "tessera_commands_total{category=\"order\",outcome=\"ok\"}",
        "tessera_breaker_state{route=\"payment_gateway\"} ",
        "tessera_runner_events_applied_total{runner=\"ordering_orders\"}",
        "tessera_relay_published_total{relay=\"inventory_relay\"}",
        "shop_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/orders\",status_class=\"2xx\",le=",
    ];
    let text = eventually("/metrics shows the recorded series", || async {
        let (status, text, _) = call(&r, "GET", "/metrics", None, &[]).await;
        assert_eq!(status, 200);
        let text = text.as_str().unwrap_or_default().to_owned();
        wanted.iter().all(|w| text.contains(w)).then_some(text)
    })
    .await;
    // The shop's own series come first, as they were, and no family is declared twice.
    assert!(
        text.starts_with("# HELP shop_http_requests_total"),
        "{text}"
    );
    let mut declared: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    let all = declared.len();
    declared.sort_unstable();
    declared.dedup();
    assert_eq!(declared.len(), all, "a family declared twice:\n{text}");
    app.shutdown().await;
}
