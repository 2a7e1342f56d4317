//! Starting shops on a real socket (memory or PostgreSQL), killing one, HTTP helpers,
//! bounded waits.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use shop::app::{memory_parts, postgres_parts, App};
use shop::fulfilment::Fulfilment;
use shop::gateway::Gateway;
use shop::settings::Settings;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Longest any test waits for something to happen.
pub const WAIT: Duration = Duration::from_secs(90);

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Settings for tests: a fast gateway, short read waits, admin routes without a token
/// (as `serve --admin-open` gives).
pub fn settings() -> Settings {
    let mut s = Settings {
        admin_open: true,
        ..Settings::default()
    };
    s.gateway.latency = Duration::from_millis(1);
    s.read_wait = Duration::from_secs(3);
    s.deadline_tick = Duration::from_millis(20);
    s
}

/// A shop serving on 127.0.0.1 on a free port.
pub struct TestShop {
    pub base: String,
    pub client: reqwest::Client,
    /// The schema prefix on PostgreSQL.
    pub prefix: Option<String>,
    /// The shop's simulated payment gateway (its ledger).
    pub gateway: shop::gateway::Gateway,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    /// Split into services: the ordering service, whose catalogue copy must have a
    /// product before it prices an order for it, and how many products were added.
    catalogue: Option<(String, std::sync::atomic::AtomicU64)>,
}

async fn serve<S: tessera_core::EventStore + tessera_core::SnapshotStore>(
    app: Arc<App<S>>,
    prefix: Option<String>,
) -> TestShop {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    serve_on(app, listener, prefix).await
}

/// Serves `app` on `listener` (bound first when the settings must name the address,
/// as the admin routes' allowed origins do).
pub async fn serve_on<S: tessera_core::EventStore + tessera_core::SnapshotStore>(
    app: Arc<App<S>>,
    listener: TcpListener,
    prefix: Option<String>,
) -> TestShop {
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let gateway = app.gateway.clone();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(shop::server::serve(app, listener, async {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    TestShop {
        base,
        client,
        prefix,
        gateway,
        stop: Some(tx),
        task: Some(task),
        catalogue: None,
    }
}

impl TestShop {
    /// A shop served elsewhere (the gateway of the split shop at `base`), whose ordering
    /// service at `ordering` keeps a catalogue copy: [`TestShop::product`] waits until
    /// the copy has each product it adds. Nothing to stop or drop.
    pub fn remote(base: String, ordering: String) -> Self {
        TestShop {
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            prefix: None,
            gateway: Gateway::new(Settings::default().gateway),
            stop: None,
            task: None,
            catalogue: Some((ordering, std::sync::atomic::AtomicU64::new(0))),
        }
    }

    /// On the embedded memory store.
    pub async fn memory_with(settings: Settings) -> Self {
        let saga = Fulfilment {
            payment_timeout: settings.payment_timeout,
        };
        serve(App::start(settings, memory_parts("", saga)), None).await
    }

    /// Events in EventStoreDB at `esdb_url`, everything else in memory.
    pub async fn eventstoredb(esdb_url: &str) -> Self {
        let settings = settings();
        let saga = Fulfilment {
            payment_timeout: settings.payment_timeout,
        };
        let parts = shop::app::eventstoredb_parts(esdb_url, None, "", saga)
            .await
            .expect("parts");
        serve(App::start(settings, parts), None).await
    }

    pub async fn memory() -> Self {
        Self::memory_with(settings()).await
    }

    /// On PostgreSQL, in schemas named with `prefix`.
    pub async fn postgres_on(prefix: &str, settings: Settings) -> Self {
        let gateway = Gateway::new(settings.gateway);
        Self::postgres_with_gateway(prefix, settings, gateway).await
    }

    /// On PostgreSQL, in schemas named with `prefix`, charging through `gateway` (a
    /// clone of another shop's shares its ledger).
    pub async fn postgres_with_gateway(
        prefix: &str,
        mut settings: Settings,
        gateway: Gateway,
    ) -> Self {
        settings.prefix = prefix.to_owned();
        let saga = Fulfilment {
            payment_timeout: settings.payment_timeout,
        };
        let parts = match postgres_parts(&database_url(), prefix, saga).await {
            Ok(p) => p,
            Err(e) => panic!(
                "PostgreSQL is not usable at {} ({e}). Start it with `bash scripts/test.sh` (finds, \
                 starts or installs it) or `pg_ctlcluster --skip-systemctl-redirect 15 main start`, \
                 or set DATABASE_URL.",
                database_url()
            ),
        };
        let app = App::start_with_gateway(settings, parts, gateway);
        serve(app, Some(prefix.to_owned())).await
    }

    /// On PostgreSQL in fresh, uniquely named schemas.
    pub async fn postgres() -> Self {
        Self::postgres_on(&unique_prefix(), settings()).await
    }

    /// Stops the server and every runner, keeping the data.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("server stops in time")
                .expect("server task")
                .expect("serve");
        }
    }

    /// Stops, then drops the PostgreSQL schemas it made.
    pub async fn finish(self) {
        let prefix = self.prefix.clone();
        self.stop().await;
        if let Some(prefix) = prefix {
            drop_schemas(&prefix).await;
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("request");
        status_json(r).await
    }

    pub async fn post_with_key(&self, path: &str, key: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("request");
        status_json(r).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        status_json(r).await
    }

    pub async fn product(&self, sku: &str, name: &str, price_cents: i64, stock: i64) -> String {
        let (status, body) = self
            .post("/v1/products", &json!({ "sku": sku, "name": name, "price_cents": price_cents, "initial_stock": stock }))
            .await;
        assert_eq!(status, 201, "{body}");
        if let Some((ordering, added)) = &self.catalogue {
            let added = added.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let status = format!("{ordering}/v1/admin/projections");
            eventually(&format!("ordering's catalogue has {sku}"), || async {
                let r = self.client.get(&status).send().await.ok()?;
                let body: Value = r.json().await.ok()?;
                let inboxes = body["inboxes"].as_array()?;
                let inbox = inboxes.iter().find(|i| i["name"] == "catalogue_inbox")?;
                (inbox["handled"].as_u64()? >= added).then_some(())
            })
            .await;
        }
        body["position"].as_str().expect("position").to_owned()
    }

    /// Places an order; returns (order id, position).
    pub async fn order(&self, customer: &str, lines: &[(&str, i64)]) -> (String, String) {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(s, q)| json!({ "sku": s, "quantity": q }))
            .collect();
        let (status, body) = self
            .post(
                "/v1/orders",
                &json!({ "customer_id": customer, "lines": lines }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["order_id"].as_str().expect("id").to_owned(),
            body["position"].as_str().expect("position").to_owned(),
        )
    }

    /// Waits until the order is no longer pending; returns it.
    pub async fn settled(&self, id: &str) -> Value {
        eventually(&format!("order {id} settles"), || async {
            let (status, body) = self.get(&format!("/v1/orders/{id}")).await;
            (status == 200 && body["status"] != "pending").then_some(body)
        })
        .await
    }

    /// Waits until `check` holds for the order (each view it shows catches up on its own).
    pub async fn order_until(&self, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        eventually(&format!("order {id}: {what}"), || async {
            let (status, body) = self.get(&format!("/v1/orders/{id}")).await;
            (status == 200 && check(&body)).then_some(body)
        })
        .await
    }

    /// Waits until `check` holds for the product.
    pub async fn product_until(
        &self,
        sku: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(&format!("product {sku}: {what}"), || async {
            let (status, body) = self.get(&format!("/v1/products/{sku}")).await;
            (status == 200 && check(&body)).then_some(body)
        })
        .await
    }
}

/// A shop on a tokio runtime of its own, so that a test can kill it.
pub struct Killable {
    /// The shop (its server, runners and workers run on `runtime`).
    pub shop: TestShop,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Killable {
    /// [`TestShop::postgres_with_gateway`] on a new two-thread runtime.
    pub async fn postgres(prefix: &str, settings: Settings, gateway: Gateway) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the shop");
        let prefix = prefix.to_owned();
        let shop = runtime
            .spawn(async move { TestShop::postgres_with_gateway(&prefix, settings, gateway).await })
            .await
            .expect("the shop starts");
        Self {
            shop,
            runtime: Some(runtime),
        }
    }

    /// Kills the shop as a crash would: its runtime is shut down without waiting, so
    /// every task (server, runners, the saga's worker, the payment worker, calls to the
    /// gateway in the air, the database connections) is dropped at its next await. No
    /// batch is drained, no checkpoint moved, no stop signal sent.
    pub fn kill(self) {
        drop(self);
    }
}

impl Drop for Killable {
    fn drop(&mut self) {
        // Also on a failing test: dropping a runtime inside another one would panic.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn status_json(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Polls `probe` until it yields a value, failing after [`WAIT`].
pub async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A unique schema prefix: `t` + 10 hex digits + `_`.
pub fn unique_prefix() -> String {
    format!("t{}_", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// Drops every schema whose name starts with `prefix`.
pub async fn drop_schemas(prefix: &str) {
    let (client, conn) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("connect for cleanup");
    let conn = tokio::spawn(conn);
    let rows = client
        .query("SELECT nspname FROM pg_namespace", &[])
        .await
        .expect("list schemas");
    for row in rows {
        let name: String = row.get(0);
        if name.starts_with(prefix) {
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .await
                .expect("drop schema");
        }
    }
    drop(client);
    let _ = conn.await;
}

/// The quantity of `sku` the given orders (as the API shows them) hold.
pub fn quantity_of<'a>(orders: impl IntoIterator<Item = &'a Value>, sku: &str) -> i64 {
    orders
        .into_iter()
        .flat_map(|o| o["lines"].as_array().cloned().unwrap_or_default())
        .filter(|l| l["sku"] == sku)
        .map(|l| l["quantity"].as_i64().unwrap_or(0))
        .sum()
}
