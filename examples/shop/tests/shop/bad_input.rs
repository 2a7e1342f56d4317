//! The bad-input table: each error class, asserted by status and problem `type`, as the
//! OpenAPI document says, and storing nothing.

use std::time::Duration;

use axum::http::header;
use shop::app::App;
use tessera_core::{EventReader, MemoryStore, Position};

use crate::routes::{call, documented, memory_app, Case, T};
use crate::support::{eventually, settings};

/// The heads of the three contexts' logs, once the saga and every runner are done.
async fn settled(app: &App<MemoryStore>) -> [Option<Position>; 3] {
    let heads = || async {
        let s = &app.stores;
        let head = |h: Result<Option<Position>, _>| h.expect("head");
        [
            head(s.ordering.head().await),
            head(s.inventory.head().await),
            head(s.payment.head().await),
        ]
    };
    eventually("the logs settle", || async {
        let before = heads().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let caught_up = app.statuses().iter().all(|(_, _, s)| s.lag_events == 0);
        (caught_up && heads().await == before).then_some(before)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_table() {
    let app = memory_app(settings());
    let r = shop::api::router(app.clone());
    let product = r#"{"sku":"tea","name":"Tea","price_cents":100,"initial_stock":1}"#;
    assert_eq!(
        call(&r, "POST", "/v1/products", Some(product), &[]).await.0,
        201
    );
    // An order that ends rejected (too little stock), to try cancelling it.
    let (_, rejected, _) = call(
        &r,
        "POST",
        "/v1/orders",
        Some(r#"{"customer_id":"c","lines":[{"sku":"tea","quantity":5}]}"#),
        &[],
    )
    .await;
    let rejected = rejected["order_id"].as_str().expect("id").to_owned();
    let order = |lines: &str| format!(r#"{{"customer_id":"c","lines":{lines}}}"#);
    // An order placed with a key, to reuse the key with another body.
    let key = [("Idempotency-Key", "k1")];
    let one = order(r#"[{"sku":"tea","quantity":1}]"#);
    let (status, placed, _) = call(&r, "POST", "/v1/orders", Some(&one), &key).await;
    assert_eq!(status, 201, "{placed}");
    let placed = placed["order_id"].as_str().expect("id").to_owned();
    for (id, want) in [(&rejected, "rejected"), (&placed, "confirmed")] {
        eventually(&format!("order {want}"), || async {
            let (_, o, _) = call(&r, "GET", &format!("/v1/orders/{id}"), None, &[]).await;
            (o["status"] == want).then_some(())
        })
        .await;
    }
    let stored = settled(&app).await;
    let (_, tea, _) = call(&r, "GET", "/v1/products/tea", None, &[]).await;
    let huge = format!(
        r#"{{"customer_id":"{}","lines":[]}}"#,
        "x".repeat(1024 * 1024 + 10)
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "POST",
            "/v1/orders".into(),
            Some("{".into()),
            vec![],
            400,
            "malformed-request",
        ),
        (
            "POST",
            "/v1/orders".into(),
            Some(order(r#"[{"sku":"tea","quantity":"two"}]"#)),
            vec![],
            400,
            "malformed-request",
        ),
        (
            "POST",
            "/v1/orders".into(),
            Some(r#"{"lines":[]}"#.into()),
            vec![],
            400,
            "malformed-request",
        ),
        (
            "POST",
            "/v1/orders".into(),
            Some(order(r#"[{"sku":"tea","quantity":1.5}]"#)),
            vec![],
            400,
            "malformed-request",
        ),
        (
            "POST",
            "/v1/orders".into(),
            Some(order("[]")),
            vec![("content-type", "text/plain")],
            415,
            "unsupported-media-type",
        ),
        (
            "POST",
            "/v1/orders".into(),
            Some(order(r#"[{"sku":"tea","quantity":0}]"#)),
            vec![],
            422,
            "validation-failed",
        ),
        (
            "POST",
            "/v1/orders".into(),
            Some(order(r#"[{"sku":"tea","quantity":-3}]"#)),
            vec![],
            422,
            "validation-failed",
        ),
        (
            "POST",
            "/v1/orders".into(),
            Some(order("[]")),
            vec![],
            422,
            "validation-failed",
        ),
        (
            "POST",
            "/v1/orders".into(),
            Some(order(r#"[{"sku":"nope","quantity":1}]"#)),
            vec![],
            422,
            "unknown-sku",
        ),
        (
            "POST",
            "/v1/orders".into(),
            Some(r#"{"customer_id":"","lines":[{"sku":"tea","quantity":1}]}"#.into()),
            vec![],
            422,
            "validation-failed",
        ),
        (
            "POST",
            "/v1/orders".into(),
            Some(huge),
            vec![],
            413,
            "payload-too-large",
        ),
        (
            "POST",
            "/v1/products".into(),
            Some(r#"{"sku":"cup","name":"Cup","price_cents":-1,"initial_stock":1}"#.into()),
            vec![],
            422,
            "validation-failed",
        ),
        (
            "POST",
            "/v1/products".into(),
            Some(r#"{"sku":"cup","name":"Cup","price_cents":1,"initial_stock":-1}"#.into()),
            vec![],
            422,
            "validation-failed",
        ),
        (
            "POST",
            "/v1/products".into(),
            Some(r#"{"sku":"a b","name":"Cup","price_cents":1,"initial_stock":1}"#.into()),
            vec![],
            422,
            "validation-failed",
        ),
        (
            "POST",
            "/v1/products".into(),
            Some(product.into()),
            vec![],
            409,
            "product-exists",
        ),
        // The request's own fault first, even for a product that exists.
        (
            "POST",
            "/v1/products".into(),
            Some(r#"{"sku":"tea","name":"Tea","price_cents":-1,"initial_stock":1}"#.into()),
            vec![],
            422,
            "validation-failed",
        ),
        (
            "POST",
            "/v1/products/tea/restock".into(),
            Some(r#"{"quantity":0}"#.into()),
            vec![],
            422,
            "validation-failed",
        ),
        (
            "POST",
            "/v1/products/nope/restock".into(),
            Some(r#"{"quantity":1}"#.into()),
            vec![],
            404,
            "not-found",
        ),
        (
            "GET",
            "/v1/products/nope".into(),
            None,
            vec![],
            404,
            "not-found",
        ),
        (
            "GET",
            format!("/v1/orders/{}", uuid::Uuid::new_v4()),
            None,
            vec![],
            404,
            "not-found",
        ),
        (
            "GET",
            "/v1/orders/not-a-uuid".into(),
            None,
            vec![],
            404,
            "not-found",
        ),
        (
            "GET",
            format!("/v1/orders/{rejected}?min_position=abc"),
            None,
            vec![],
            400,
            "malformed-request",
        ),
        (
            "GET",
            "/v1/orders?limit=0".into(),
            None,
            vec![],
            422,
            "validation-failed",
        ),
        (
            "GET",
            "/v1/orders?status=lost".into(),
            None,
            vec![],
            400,
            "malformed-request",
        ),
        (
            "GET",
            "/v1/orders?after=x".into(),
            None,
            vec![],
            400,
            "malformed-request",
        ),
        (
            "GET",
            "/v1/orders?after=9223372036854775808.0".into(),
            None,
            vec![],
            400,
            "malformed-request",
        ),
        (
            "GET",
            "/v1/orders?after=1.9223372036854775808".into(),
            None,
            vec![],
            400,
            "malformed-request",
        ),
        (
            "POST",
            format!("/v1/orders/{rejected}/cancel"),
            None,
            vec![],
            409,
            "order-state",
        ),
        (
            "POST",
            format!("/v1/orders/{}/cancel", uuid::Uuid::new_v4()),
            None,
            vec![],
            404,
            "not-found",
        ),
        (
            "POST",
            "/v1/orders".into(),
            Some(order(r#"[{"sku":"tea","quantity":2}]"#)),
            key.to_vec(),
            422,
            "idempotency-key-reused",
        ),
        // Path parameters that are not UTF-8 once percent-decoded.
        (
            "GET",
            "/v1/orders/%FF".into(),
            None,
            vec![],
            400,
            "malformed-request",
        ),
        (
            "POST",
            "/v1/orders/%C0%AF/cancel".into(),
            None,
            vec![],
            400,
            "malformed-request",
        ),
        (
            "GET",
            "/v1/products/%FF?min_position=1.1".into(),
            None,
            vec![],
            400,
            "malformed-request",
        ),
        (
            "POST",
            "/v1/products/t%E9a/restock".into(),
            Some(r#"{"quantity":1}"#.into()),
            vec![],
            400,
            "malformed-request",
        ),
        (
            "POST",
            "/v1/admin/projections/%FF/rebuild".into(),
            None,
            vec![],
            400,
            "malformed-request",
        ),
        (
            "GET",
            "/v1/products/tea?min_position=".into(),
            None,
            vec![],
            400,
            "malformed-request",
        ),
        (
            "POST",
            "/v1/products/tea/restock".into(),
            Some(r#"{"quantity":1}"#.into()),
            vec![("content-type", "text/plain")],
            415,
            "unsupported-media-type",
        ),
        (
            "POST",
            "/v1/products/tea/restock".into(),
            Some(r#"{"quantity":9223372036854775807}"#.into()),
            vec![],
            422,
            "validation-failed",
        ),
        (
            "POST",
            "/v1/products".into(),
            Some("[]".into()),
            vec![],
            400,
            "malformed-request",
        ),
        (
            "GET",
            "/v1/orders?limit=101".into(),
            None,
            vec![],
            422,
            "validation-failed",
        ),
        (
            "POST",
            "/v1/admin/projections/nope/rebuild".into(),
            None,
            vec![],
            404,
            "not-found",
        ),
        // A product code clients would normalise out of the path.
        (
            "POST",
            "/v1/products".into(),
            Some(r#"{"sku":"..","name":"Dots","price_cents":1,"initial_stock":1}"#.into()),
            vec![],
            422,
            "validation-failed",
        ),
        // Signs are not digits.
        (
            "GET",
            "/v1/products/tea?min_position=%2B1.%2B2".into(),
            None,
            vec![],
            400,
            "malformed-request",
        ),
        (
            "POST",
            "/v1/orders".into(),
            Some(order(r#"[{"sku":"tea","quantity":1}]"#)),
            vec![("Idempotency-Key", "k2"), ("Idempotency-Key", "k3")],
            400,
            "malformed-request",
        ),
        (
            "POST",
            "/v1/orders".into(),
            Some(order(r#"[{"sku":"tea","quantity":1}]"#)),
            vec![("Idempotency-Key", "k\t4")],
            400,
            "malformed-request",
        ),
        ("GET", "/v2/nothing".into(), None, vec![], 404, "not-found"),
        (
            "DELETE",
            "/v1/orders".into(),
            None,
            vec![],
            405,
            "method-not-allowed",
        ),
    ];
    let doc = serde_json::to_value(shop::api::openapi_document()).expect("document");
    for (method, uri, body, headers, want, kind) in cases {
        let (status, problem, h) = call(&r, method, &uri, body.as_deref(), &headers).await;
        let shown: String = problem.to_string().chars().take(300).collect();
        assert_eq!(status, want, "{method} {uri}: {shown}");
        // The OpenAPI document has the answer, unless the route or method is unknown.
        if let Some(response) = documented(&doc, method, &uri, want) {
            let response = response
                .unwrap_or_else(|| panic!("{method} {uri}: {want} is not in the OpenAPI document"));
            assert!(
                response["content"]
                    .get("application/problem+json")
                    .is_some(),
                "{method} {uri}: the OpenAPI document gives {want} as {response}"
            );
        }
        assert_eq!(
            problem["type"],
            format!("{T}{kind}"),
            "{method} {uri}: {shown}"
        );
        assert_eq!(
            h.get(header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap_or("")),
            Some("application/problem+json"),
            "{method} {uri}: {shown}"
        );
        assert!(
            problem["title"].is_string() && problem["detail"].is_string(),
            "{shown}"
        );
        assert_eq!(problem["status"], want);
    }
    // The detail names the bad field.
    let (_, p, _) = call(
        &r,
        "GET",
        "/v1/orders?after=18446744073709551615.0",
        None,
        &[],
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap_or("").starts_with("after:"),
        "{p}"
    );
    let (_, p, _) = call(
        &r,
        "POST",
        "/v1/orders",
        Some(&order(r#"[{"sku":"tea","quantity":"two"}]"#)),
        &[],
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or("")
            .contains("lines[0].quantity"),
        "{p}"
    );
    let (_, p, _) = call(
        &r,
        "POST",
        "/v1/orders",
        Some(&order(
            r#"[{"sku":"tea","quantity":1},{"sku":"tea2","quantity":1}]"#,
        )),
        &[],
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap_or("").contains("lines[1].sku"),
        "{p}"
    );
    let (_, p, _) = call(&r, "GET", "/v1/products/%FF", None, &[]).await;
    assert!(p["detail"].as_str().unwrap_or("").contains("sku"), "{p}");
    // Nothing refused was stored.
    assert_eq!(
        settled(&app).await,
        stored,
        "a refused request stored events"
    );
    let (_, after, _) = call(&r, "GET", "/v1/products/tea", None, &[]).await;
    assert_eq!(after, tea);
    app.shutdown().await;
}
