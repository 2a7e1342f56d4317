//! The operator console at `/admin`, in a real headless browser (Chromium through
//! WebDriver), on the memory store and on PostgreSQL: the admin token asked for, an
//! order's stream followed to its events and its correlation chain, a runner's lag
//! rising under load and falling back, a rebuild watched to 100 %, a failed saga instance
//! found, an unknown stream shown as a clear page, keyboard navigation and the
//! accessibility checks on every page. Screenshots go to `target/console-screenshots/`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use shop::app::{memory_parts, postgres_parts, App};
use shop::commands::{CommandRejected, RemoteCommand, REJECTED};
use shop::fulfilment::Fulfilment;
use shop::secret::Token;
use tessera_core::{EventStore, ExpectedVersion, NewEvent, SnapshotStore, StreamId};
use tokio::net::TcpListener;

use crate::browser::Browser;
use crate::support::{database_url, drop_schemas, serve_on, settings, unique_prefix, TestShop};

const TOKEN: &str = "console-test-token";

async fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, base)
}

/// Test settings with the admin token set, the browser's origin allowed, and a payment
/// gateway slow enough (40 ms a call, 16 at once) that the payment worker falls behind
/// under a burst of orders, so its lag shows.
fn console_settings(base: &str) -> shop::settings::Settings {
    let mut s = settings();
    s.admin_open = false;
    s.admin_token = Some(Token::from(TOKEN));
    s.origins = vec![base.to_owned()];
    s.gateway.latency = Duration::from_millis(40);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_browser_on_memory() {
    let (listener, base) = listener().await;
    let settings = console_settings(&base);
    let saga = Fulfilment {
        payment_timeout: settings.payment_timeout,
    };
    let app = App::start(settings, memory_parts("", saga));
    let shop = serve_on(app.clone(), listener, None).await;
    scenario("memory", &shop, &app).await;
    shop.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_browser_on_postgres() {
    let (listener, base) = listener().await;
    let mut settings = console_settings(&base);
    let prefix = unique_prefix();
    settings.prefix = prefix.clone();
    let saga = Fulfilment {
        payment_timeout: settings.payment_timeout,
    };
    let parts = postgres_parts(&database_url(), &prefix, saga)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not usable at {} ({e}). Start it with `bash scripts/test.sh`.",
                database_url()
            )
        });
    let app = App::start(settings, parts);
    let shop = serve_on(app.clone(), listener, Some(prefix.clone())).await;
    scenario("postgres", &shop, &app).await;
    shop.finish().await;
    drop_schemas(&prefix).await;
}

async fn js(b: &Browser, script: &str) -> Value {
    b.client()
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

async fn accessible(b: &Browser, page: &str) {
    let problems = b.accessibility_problems().await;
    assert!(
        problems.is_empty(),
        "accessibility problems on {page}: {problems:#?}"
    );
}

/// One browser test at a time: each runs Chromium and a burst of orders, and two at
/// once would starve the other tests of this binary on a two-core machine.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn scenario<S: EventStore + SnapshotStore>(
    backend: &str,
    shop: &TestShop,
    app: &Arc<App<S>>,
) {
    let _turn = ONE_BROWSER.lock().await;
    let console = format!("{}/admin", shop.base);
    shop.product("tea", "Green tea", 450, 100_000).await;
    let (id, _) = shop.order("alice", &[("tea", 2)]).await;
    shop.order_until(&id, "saga completed", |o| {
        o["status"] == "confirmed" && o["saga"]["status"] == "completed"
    })
    .await;

    let b = Browser::start().await;
    // Without the token the pages say what is missing; the shell itself loads.
    b.goto(&console).await;
    b.wait_for_text(".alert", "admin token").await;
    accessible(&b, "the token prompt").await;
    b.fill("#token", TOKEN).await;
    b.click("#token-form button").await;
    b.wait_for_text("#page-title", "Streams in ordering").await;
    b.screenshot(&format!("{backend}-streams")).await;
    accessible(&b, "streams").await;

    // The order's category, its stream, its events.
    b.click("a[href='#/streams/ordering/order']").await;
    let stream = format!("order-{id}");
    b.wait_for(&format!("tr[data-stream='{stream}'] a")).await;
    b.click(&format!("tr[data-stream='{stream}'] a")).await;
    b.wait_for_text("#page-title", &stream).await;
    b.wait_for_text("table.events", "OrderPlaced").await;
    b.wait_for_text("table.events", "OrderConfirmed").await;
    b.click("tr[data-event-version='0'] summary").await;
    let payload = b.text("tr[data-event-version='0'] pre.payload").await;
    assert!(
        payload.contains(&id),
        "the payload names the order: {payload}"
    );
    b.screenshot(&format!("{backend}-stream")).await;
    accessible(&b, "a stream").await;
    // Its correlation chain reaches the other contexts' events.
    b.click("tr[data-event-version='0'] a.correlation").await;
    b.wait_for_text("#page-title", "Correlation").await;
    let chain = b.wait_for_text("table.chain", "StockReserved").await;
    let chain = chain.text().await.expect("chain text");
    for (store, event) in [
        ("inventory", "StockReserved"),
        ("payment", "PaymentCaptured"),
    ] {
        assert!(
            chain.contains(store) && chain.contains(event),
            "{event} in {store}: {chain}"
        );
    }
    accessible(&b, "a correlation chain").await;

    // An unknown stream is a clear page, not an error.
    b.goto(&format!("{console}#/stream/ordering/order-nothing-here"))
        .await;
    b.wait_for_text(".alert", "holds no event").await;

    // Projections: a runner's lag rises under a burst of orders, then falls back to 0.
    b.goto(&format!("{console}#/projections")).await;
    b.wait_for("tr[data-runner$='ordering_orders']").await;
    accessible(&b, "projections").await;
    // Each worker places 30 orders, and goes on until the page has shown a lag (the
    // page samples once a second: on the memory store 240 orders could all settle
    // between two samples, as in one CI run), at most 2,000 orders each.
    let seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let burst = {
        let client = shop.client.clone();
        let base = shop.base.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for worker in 0..8 {
                let (client, base, seen) = (client.clone(), base.clone(), seen.clone());
                tasks.spawn(async move {
                    let more = |i: usize| i < 30 || (i < 2_000 && !seen.load(Ordering::SeqCst));
                    for i in (0..).take_while(|i| more(*i)) {
                        let body = serde_json::json!({
                            "customer_id": format!("load-{worker}-{i}"),
                            "lines": [{ "sku": "tea", "quantity": 1 }],
                        });
                        let res = client
                            .post(format!("{base}/v1/orders"))
                            .json(&body)
                            .send()
                            .await
                            .expect("place");
                        assert!(res.status().is_success(), "placing: {}", res.status());
                    }
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.expect("placing task");
            }
        })
    };
    let max_lag = r"return Math.max(0, ...[...document.querySelectorAll('tr[data-runner]')]
        .map(r => Number(r.dataset.maxLag || 0)));";
    let lagging = r"return [...document.querySelectorAll('tr[data-runner]')]
        .filter(r => Number(r.dataset.maxLag || 0) > 0).map(r => r.dataset.runner);";
    let mut rose = false;
    for _ in 0..120 {
        if js(&b, max_lag).await.as_u64().unwrap_or(0) > 0 {
            rose = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    seen.store(true, Ordering::SeqCst);
    assert!(
        rose,
        "no runner's lag rose above 0 on the page during the burst"
    );
    let who = js(&b, lagging).await;
    b.screenshot(&format!("{backend}-projections-under-load"))
        .await;
    burst.await.expect("burst");
    let caught_up = r"return [...document.querySelectorAll('tr[data-runner]')]
        .every(r => r.dataset.lag === '0');";
    let mut settled = false;
    for _ in 0..240 {
        if js(&b, caught_up).await == Value::Bool(true) {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(settled, "the lag of {who} did not fall back to 0");

    // A rebuild, confirmed, watched to 100 %.
    b.click("tr[data-runner$='ordering_orders'] button.rebuild")
        .await;
    let question = b.accept_confirm().await;
    assert!(
        question.starts_with("Rebuild ") && question.contains("ordering_orders?"),
        "{question}"
    );
    b.wait_for_text(
        "tr[data-runner$='ordering_orders'] .rebuild-percent",
        "100 %",
    )
    .await;
    b.screenshot(&format!("{backend}-projections")).await;

    // A saga instance fails: inventory refuses to release the order's stock (recorded
    // as the owner would, in the inbox stream the saga reads).
    let rejected = CommandRejected {
        order_id: id.parse().expect("uuid"),
        command: RemoteCommand::Release {
            order_id: id.parse().expect("uuid"),
            sku: "tea".into(),
        },
        reason: "the warehouse refuses".into(),
    };
    let inbox = StreamId::from_parts("inbox", &id).expect("stream");
    app.stores
        .ordering
        .append(
            &inbox,
            ExpectedVersion::Any,
            vec![NewEvent::json(REJECTED, &rejected).expect("json")],
        )
        .await
        .expect("append");
    b.goto(&format!("{console}#/processes")).await;
    b.wait_for_text("tr[data-process='fulfilment'] td.count-failed", "1")
        .await;
    accessible(&b, "process managers").await;
    b.click("tr[data-process='fulfilment'] td.count-failed a")
        .await;
    b.wait_for(&format!("tr[data-instance='{id}'] a")).await;
    b.click(&format!("tr[data-instance='{id}'] a")).await;
    b.wait_for_text("#instance-status", "failed").await;
    b.wait_for_text("main", "the warehouse refuses").await;
    b.wait_for_text("table.commands", "dispatched").await;
    b.screenshot(&format!("{backend}-instance")).await;
    accessible(&b, "an instance").await;

    // Resilience: the payment gateway's guard.
    b.goto(&format!("{console}#/resilience")).await;
    b.wait_for_text("tr[data-guard='payment_gateway']", "closed")
        .await;
    accessible(&b, "resilience").await;

    // Keyboard: the first Tab reaches the skip link, the next the first section.
    b.goto(&console).await;
    b.wait_for_text("#page-title", "Streams").await;
    b.press_key(fantoccini::key::Key::Tab).await;
    assert!(
        b.is_focused("#skip").await,
        "Tab first reaches the skip link"
    );
    b.press_key(fantoccini::key::Key::Tab).await;
    assert_eq!(b.active_element_text().await.trim(), "Streams");
    b.close().await;
}
