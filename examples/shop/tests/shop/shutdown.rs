//! Shutdown with a deadline: readiness turns 503 at once, new connections are refused,
//! a request in flight is answered if it ends before the deadline and cut at it if not,
//! and the server ends within the deadline and a margin.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use shop::app::App;
use shop::server::RUNNER_GRACE;
use tessera_core::MemoryStore;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::raw::{self, ask, closed_within, product_body, product_head};
use crate::routes::memory_app;
use crate::support::{eventually, settings};

/// A shop served on a free port, its address, and the trigger of its shutdown.
struct Served {
    app: Arc<App<MemoryStore>>,
    base: String,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

async fn serve(deadline: Duration) -> Served {
    let mut s = settings();
    s.limits.shutdown_deadline = deadline;
    let app = memory_app(s);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(shop::server::serve(app.clone(), listener, async {
        let _ = stopped.await;
    }));
    Served {
        app,
        base,
        stop,
        server,
    }
}

/// Waits for `server` to end, `within` at most.
async fn ends_within(server: JoinHandle<std::io::Result<()>>, within: Duration) {
    tokio::time::timeout(within, server)
        .await
        .unwrap_or_else(|_| panic!("the server ends within {within:?}"))
        .expect("server task")
        .expect("serve");
}

/// A request whose body stops after 10 bytes, in flight once the server has its head.
async fn half_sent(base: &str, sku: &str) -> (TcpStream, String) {
    let body = product_body(sku);
    let conn = raw::send(
        base,
        &format!("{}{}", product_head(body.len()), &body[..10]),
    )
    .await;
    // The server reads the head at once; give it a moment on a loaded machine.
    tokio::time::sleep(Duration::from_millis(300)).await;
    (conn, body[10..].to_owned())
}

async fn readiness(app: &Arc<App<MemoryStore>>) -> (u16, serde_json::Value) {
    let req = Request::get("/health/ready")
        .body(Body::empty())
        .expect("request");
    let res = shop::api::router(app.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    let status = res.status().as_u16();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, serde_json::from_slice(&bytes).expect("json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_the_request_in_flight_and_refuses_new_ones() {
    let deadline = Duration::from_secs(5);
    let served = serve(deadline).await;
    assert_eq!(readiness(&served.app).await.0, 200);
    let (mut slow, rest) = half_sent(&served.base, "drained").await;
    let started = Instant::now();
    served
        .stop
        .send(())
        .expect("the server listens for its stop");
    // At once: as soon as the server task has seen the signal, with the request still
    // in flight.
    let draining = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let (status, ready) = readiness(&served.app).await;
            if status == 503 {
                break ready;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("readiness is 503 within a second of the signal");
    assert_eq!(draining["status"], "draining");
    eventually("new connections are refused", || async {
        TcpStream::connect(raw::addr(&served.base)).await.err()
    })
    .await;
    let answered = ask(&mut slow, &rest)
        .await
        .expect("the request in flight is answered");
    assert_eq!(answered.status, 201, "{answered:?}");
    assert_eq!(answered.header("connection"), Some("close"));
    ends_within(served.server, deadline).await;
    assert!(started.elapsed() < deadline, "{:?}", started.elapsed());
    assert!(
        served.app.statuses().is_empty(),
        "every runner was stopped: {:?}",
        served.app.statuses()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_still_running_at_the_deadline_is_cut() {
    let deadline = Duration::from_secs(1);
    let served = serve(deadline).await;
    let (mut slow, _never_sent) = half_sent(&served.base, "cut").await;
    let started = Instant::now();
    served
        .stop
        .send(())
        .expect("the server listens for its stop");
    let margin = RUNNER_GRACE + Duration::from_secs(2);
    ends_within(served.server, deadline + margin).await;
    let took = started.elapsed();
    assert!(took >= deadline, "not before the deadline: {took:?}");
    assert!(
        closed_within(&mut slow, Duration::from_secs(1)).await,
        "the request's connection is closed"
    );
}
