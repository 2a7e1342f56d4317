//! The shop on EventStoreDB. No server can run here, so this checks the honest failure
//! mode: with EventStoreDB unreachable, commands answer 503 problem+json (never a 5xx
//! of another kind, never a hang) and the server stays up.

use serde_json::json;

use crate::support::TestShop;

/// A closed port; the client gives up after one short discovery attempt.
const CLOSED: &str = "esdb://127.0.0.1:9?tls=false&maxDiscoverAttempts=1&discoveryInterval=10&gossipTimeout=200&defaultDeadline=2000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_eventstoredb_gives_503_problems() {
    let shop = TestShop::eventstoredb(CLOSED).await;
    let body = json!({"sku": "tea-01", "name": "Tea", "price_cents": 450, "initial_stock": 3});
    let (status, problem) = shop.post("/v1/products", &body).await;
    assert_eq!(status, 503, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("unavailable")),
        "{problem}"
    );
    let (status, _) = shop.get("/health/live").await;
    assert_eq!(status, 200);
    shop.finish().await;
}
