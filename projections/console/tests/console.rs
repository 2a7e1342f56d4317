//! The console's router end to end over the memory store: the shell, every API route's
//! pages and cursors, bad input as problem+json, the authorization check and the actions.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tessera_console::{ActionError, Console, Denied, Operations, RebuildInfo, RunnerInfo};
use tessera_core::{EventAppender, ExpectedVersion, MemoryStore, Metadata, NewEvent, StreamId};
use tower::ServiceExt;
use uuid::Uuid;

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 22).await.expect("body");
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (parts.status, parts.headers, value)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    let (s, _, v) = call(app, Method::GET, uri, Some("t0ken")).await;
    (s, v)
}

async fn append(store: &MemoryStore, stream: &str, kind: &str, correlation: Option<Uuid>, n: u64) {
    let events = (0..n)
        .map(|i| {
            let meta = Metadata {
                correlation_id: correlation,
                ..Metadata::default()
            };
            NewEvent::json(kind, &json!({ "n": i, "note": "<b>not markup</b>" }))
                .expect("json")
                .with_metadata(meta)
        })
        .collect();
    store
        .append(
            &StreamId::new(stream).expect("id"),
            ExpectedVersion::Any,
            events,
        )
        .await
        .expect("append");
}

#[derive(Default, Clone)]
struct FakeOps {
    asked: Arc<Mutex<Vec<String>>>,
}

impl Operations for FakeOps {
    fn runners(&self) -> Vec<RunnerInfo> {
        vec![RunnerInfo {
            name: "orders_view".into(),
            kind: "projection".into(),
            context: "orders".into(),
            state: "live".into(),
            checkpoint: "3.0".into(),
            lag_events: 2,
            lag_ms: 40,
            held_back_events: 0,
            applied: 3,
            last_error: None,
            failed_event: None,
            backlog: None,
            rebuildable: true,
            restartable: true,
        }]
    }
    fn rebuilds(&self) -> Vec<RebuildInfo> {
        vec![RebuildInfo {
            name: "orders_view".into(),
            done: 5,
            total: 10,
            finished: false,
            error: None,
        }]
    }
    fn rebuild(&self, name: &str) -> Result<(), ActionError> {
        self.asked.lock().unwrap().push(format!("rebuild {name}"));
        match name {
            "orders_view" => Ok(()),
            "busy" => Err(ActionError::Conflict(
                "a rebuild of busy is already running".into(),
            )),
            _ => Err(ActionError::Unknown(format!(
                "no projection named {name:?}"
            ))),
        }
    }
    fn restart(&self, name: &str) -> Result<(), ActionError> {
        self.asked.lock().unwrap().push(format!("restart {name}"));
        Err(ActionError::Conflict(format!("{name} is live, not failed")))
    }
}

fn console(store: &MemoryStore, ops: &FakeOps) -> Router {
    let inner = Console::new("Test <console>")
        .store("orders", store.clone())
        .operations(ops.clone())
        .authorize(|method: &Method, headers: &HeaderMap| {
            let bearer = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            match bearer {
                Some("Bearer t0ken") => Ok(()),
                Some(_) => Err(Denied::unauthorized("wrong token")),
                None if method == Method::GET => Err(Denied::unauthorized("token needed")),
                None => Err(Denied::forbidden("token needed")),
            }
        })
        .router();
    Router::new().nest_service("/ops/console", inner)
}

#[tokio::test]
async fn the_shell_names_its_mount_point_and_is_served_without_a_token() {
    let (store, ops) = (MemoryStore::new(), FakeOps::default());
    let app = console(&store, &ops);
    for uri in ["/ops/console", "/ops/console/"] {
        let (status, headers, body) = call(&app, Method::GET, uri, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        let html = body.as_str().expect("html");
        assert!(
            html.contains(r#"<base href="/ops/console/">"#),
            "{uri}: {html}"
        );
        assert!(headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("default-src 'none'"));
    }
    let (status, headers, _) =
        call(&app, Method::GET, "/ops/console/assets/console.js", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
}

#[tokio::test]
async fn the_api_refuses_without_the_check_passing_as_problem_json() {
    let (store, ops) = (MemoryStore::new(), FakeOps::default());
    let app = console(&store, &ops);
    let (status, headers, body) = call(&app, Method::GET, "/ops/console/api/overview", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(body["detail"], "token needed");
    // A refusal is no more cacheable than an answer.
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let (status, _, _) = call(
        &app,
        Method::POST,
        "/ops/console/api/runners/orders_view/rebuild",
        Some("nope"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        ops.asked.lock().unwrap().is_empty(),
        "a refused action never reaches the service"
    );
    let (status, body) = get(&app, "/ops/console/api/overview").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["title"], "Test <console>");
    assert_eq!(body["stores"][0]["name"], "orders");
}

#[tokio::test]
async fn categories_streams_and_a_stream_page_by_page() {
    let (store, ops) = (MemoryStore::new(), FakeOps::default());
    for i in 0..7 {
        append(&store, &format!("order-{i}"), "OrderPlaced", None, 1).await;
    }
    append(&store, "order-3", "OrderPaid", None, 24).await;
    for c in ["Zeta-1", "alpha-1", "beta_x-1"] {
        append(&store, c, "Other", None, 1).await;
    }
    let app = console(&store, &ops);
    // Categories in byte order, a page of two at a time.
    let mut seen = Vec::new();
    let mut uri = "/ops/console/api/stores/orders/categories?limit=2".to_owned();
    loop {
        let (status, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["supported"], true);
        seen.extend(
            body["categories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned()),
        );
        match body["next_after"].as_str() {
            Some(after) => {
                uri = format!("/ops/console/api/stores/orders/categories?limit=2&after={after}")
            }
            None => break,
        }
    }
    assert_eq!(seen, ["Zeta", "alpha", "beta_x", "order"]);
    // The order category's streams, three at a time, each once with its version.
    let mut streams = Vec::new();
    let mut uri = "/ops/console/api/stores/orders/streams?category=order&limit=3".to_owned();
    loop {
        let (status, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for s in body["streams"].as_array().unwrap() {
            streams.push((
                s["stream_id"].as_str().unwrap().to_owned(),
                s["version"].as_u64().unwrap(),
            ));
        }
        match body["next_after"].as_str() {
            Some(after) => {
                uri = format!(
                    "/ops/console/api/stores/orders/streams?category=order&limit=3&after={after}"
                )
            }
            None => break,
        }
    }
    let expected: Vec<(String, u64)> = (0..7)
        .map(|i| (format!("order-{i}"), if i == 3 { 24 } else { 0 }))
        .collect();
    assert_eq!(streams, expected);
    // One stream, ten events a page, forward then backward; the payload is JSON, not markup.
    let (status, body) = get(
        &app,
        "/ops/console/api/stores/orders/streams/order-3?limit=10",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["version"].as_u64(), body["next_from"].as_u64()),
        (Some(24), Some(10))
    );
    assert_eq!(body["events"][1]["type"], "OrderPaid");
    assert_eq!(body["events"][1]["data"]["note"], "<b>not markup</b>");
    let (_, body) = get(
        &app,
        "/ops/console/api/stores/orders/streams/order-3?limit=10&from=20",
    )
    .await;
    assert_eq!(body["events"].as_array().unwrap().len(), 5);
    assert!(body["next_from"].is_null());
    let (_, body) = get(
        &app,
        "/ops/console/api/stores/orders/streams/order-3?limit=10&direction=backward",
    )
    .await;
    assert_eq!(
        (
            body["events"][0]["version"].as_u64(),
            body["next_from"].as_u64()
        ),
        (Some(24), Some(14))
    );
}

#[tokio::test]
async fn the_log_from_a_position_filtered_and_a_correlation_chain() {
    let (store, ops) = (MemoryStore::new(), FakeOps::default());
    let corr = Uuid::new_v4();
    append(&store, "order-1", "OrderPlaced", Some(corr), 1).await;
    append(&store, "product-9", "StockReserved", None, 3).await;
    append(&store, "payment-1", "PaymentCaptured", Some(corr), 1).await;
    append(&store, "order-1", "OrderConfirmed", Some(corr), 1).await;
    let app = console(&store, &ops);
    let (status, body) = get(&app, "/ops/console/api/stores/orders/log?limit=2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let next = body["next_after"]
        .as_str()
        .expect("a full page has a cursor")
        .to_owned();
    let (_, rest) = get(
        &app,
        &format!("/ops/console/api/stores/orders/log?limit=50&after={next}"),
    )
    .await;
    let types: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["events"].as_array().unwrap())
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "StockReserved",
            "StockReserved",
            "StockReserved",
            "PaymentCaptured",
            "OrderConfirmed"
        ]
    );
    let (_, body) = get(&app, "/ops/console/api/stores/orders/log?category=order,payment&type=OrderConfirmed,PaymentCaptured").await;
    let types: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["PaymentCaptured", "OrderConfirmed"]);
    let (status, body) = get(&app, &format!("/ops/console/api/correlated/{corr}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let chain: Vec<&str> = body["stores"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(chain, ["OrderPlaced", "PaymentCaptured", "OrderConfirmed"]);
}

#[tokio::test]
async fn bad_input_is_a_clear_client_error() {
    let (store, ops) = (MemoryStore::new(), FakeOps::default());
    append(&store, "order-1", "OrderPlaced", None, 1).await;
    let app = console(&store, &ops);
    for (uri, status, needle) in [
        (
            "/ops/console/api/stores/nope/log",
            StatusCode::NOT_FOUND,
            "no store named",
        ),
        (
            "/ops/console/api/stores/orders/streams/order-404",
            StatusCode::NOT_FOUND,
            "holds no event",
        ),
        (
            "/ops/console/api/stores/orders/log?after=12",
            StatusCode::BAD_REQUEST,
            "after",
        ),
        (
            "/ops/console/api/stores/orders/log?after=-1.0",
            StatusCode::BAD_REQUEST,
            "after",
        ),
        (
            "/ops/console/api/stores/orders/log?limit=0",
            StatusCode::BAD_REQUEST,
            "limit",
        ),
        (
            "/ops/console/api/stores/orders/log?limit=100000",
            StatusCode::BAD_REQUEST,
            "limit",
        ),
        (
            "/ops/console/api/stores/orders/streams/order-1?from=x",
            StatusCode::BAD_REQUEST,
            "from",
        ),
        (
            "/ops/console/api/stores/orders/streams/order-1?direction=up",
            StatusCode::BAD_REQUEST,
            "direction",
        ),
        (
            "/ops/console/api/correlated/not-a-uuid",
            StatusCode::BAD_REQUEST,
            "UUID",
        ),
        (
            "/ops/console/api/processes/nope/instances",
            StatusCode::NOT_FOUND,
            "no process manager",
        ),
        (
            "/ops/console/api/nothing-here",
            StatusCode::NOT_FOUND,
            "no such console API route",
        ),
    ] {
        let (s, headers, body) = call(&app, Method::GET, uri, Some("t0ken")).await;
        assert_eq!(s, status, "{uri}: {body}");
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "application/problem+json",
            "{uri}"
        );
        assert!(
            body["detail"].as_str().unwrap().contains(needle),
            "{uri}: {body}"
        );
    }
    // Nothing stored was touched.
    let (_, body) = get(&app, "/ops/console/api/stores/orders/streams/order-1").await;
    assert_eq!(body["version"], 0);
}

#[tokio::test]
async fn actions_reach_the_service_and_its_refusals_come_back_as_4xx() {
    let (store, ops) = (MemoryStore::new(), FakeOps::default());
    let app = console(&store, &ops);
    let (status, body) = get(&app, "/ops/console/api/runners").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["runners"][0]["name"], "orders_view");
    assert_eq!(body["rebuilds"][0]["total"], 10);
    for (uri, status) in [
        (
            "/ops/console/api/runners/orders_view/rebuild",
            StatusCode::ACCEPTED,
        ),
        (
            "/ops/console/api/runners/busy/rebuild",
            StatusCode::CONFLICT,
        ),
        (
            "/ops/console/api/runners/ghost/rebuild",
            StatusCode::NOT_FOUND,
        ),
        (
            "/ops/console/api/runners/orders_view/restart",
            StatusCode::CONFLICT,
        ),
    ] {
        let (s, _, body) = call(&app, Method::POST, uri, Some("t0ken")).await;
        assert_eq!(s, status, "{uri}: {body}");
    }
    assert_eq!(
        *ops.asked.lock().unwrap(),
        [
            "rebuild orders_view",
            "rebuild busy",
            "rebuild ghost",
            "restart orders_view"
        ]
    );
}
