//! The shop split into services, as separate processes: `shop serve --service` for
//! ordering, inventory and payment, each on a database of its own, the broker between
//! them (NATS JetStream, RabbitMQ), and `shop gateway` in front. Everything goes through
//! the gateway, as a client's requests would.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use shop::service::Service;
use tokio::process::{Child, Command};

use crate::support::{database_url, eventually, TestShop};

/// Which broker the services talk through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Broker {
    Nats,
    Rabbit,
}

/// Three services and a gateway, running as child processes (killed when dropped),
/// their databases and broker namespace removed when dropped.
pub(crate) struct Topology {
    tag: String,
    broker: Broker,
    bus: String,
    databases: BTreeMap<Service, String>,
    addresses: BTreeMap<Service, SocketAddr>,
    gateway: SocketAddr,
    children: BTreeMap<&'static str, Child>,
    logs: std::path::PathBuf,
    /// Extra `serve` flags per service.
    pub(crate) flags: BTreeMap<Service, Vec<String>>,
    /// Extra environment of every process.
    pub(crate) env: BTreeMap<&'static str, String>,
}

fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

fn amqp_base() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn rabbitmqctl(args: &[&str]) {
    let out = std::process::Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl (RabbitMQ's CLI) runs; .ci/run installs RabbitMQ");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn admin_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        Ok(c) => c,
        Err(e) => panic!(
            "PostgreSQL is not usable at {url} ({e}). Start it with `bash scripts/test.sh` \
             (finds, starts or installs it) or `pg_ctlcluster --skip-systemctl-redirect 15 main \
             start`, or set DATABASE_URL."
        ),
    };
    tokio::spawn(connection);
    client
}

/// `DATABASE_URL` with database `name`.
fn url_of(name: &str) -> String {
    let mut url = reqwest::Url::parse(&database_url()).expect("DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// A `nats-server -js` of the test's own (on a free port, its store in a temporary
/// directory), so that the test can SIGKILL it and start it again on the same store.
struct PrivateNats {
    addr: SocketAddr,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl PrivateNats {
    async fn start() -> PrivateNats {
        let addr = free_address();
        let dir = std::env::temp_dir().join(format!("shop-nats-{}", addr.port()));
        let mut server = PrivateNats {
            addr,
            dir,
            child: None,
        };
        server.run().await;
        server
    }

    fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    async fn run(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.addr.port().to_string(),
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server is on the PATH (this test starts its own `nats-server -js`)");
        self.child = Some(child);
        eventually("the private nats-server accepts connections", || async {
            tokio::net::TcpStream::connect(self.addr)
                .await
                .ok()
                .map(drop)
        })
        .await;
    }

    /// SIGKILL: no shutdown, no flush.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("SIGKILL nats-server");
            let _ = child.wait().await;
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Topology {
    /// Databases, a broker namespace and addresses of its own; nothing started yet.
    pub(crate) async fn new(broker: Broker) -> Topology {
        let tag = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let admin = admin_client(&database_url()).await;
        let mut databases = BTreeMap::new();
        for service in Service::ALL {
            let name = format!("{tag}_{service}");
            admin
                .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create a database per service");
            databases.insert(service, url_of(&name));
        }
        let bus = match broker {
            Broker::Nats => nats_url(),
            Broker::Rabbit => {
                rabbitmqctl(&["add_vhost", &tag]);
                rabbitmqctl(&["set_permissions", "-p", &tag, "guest", ".*", ".*", ".*"]);
                let base = amqp_base();
                let root = base.rsplit_once('/').map_or(base.as_str(), |(r, _)| r);
                format!("{root}/{tag}")
            }
        };
        let logs = std::env::temp_dir().join(format!("shop-services-{tag}"));
        std::fs::create_dir_all(&logs).expect("a log directory");
        Topology {
            tag,
            broker,
            bus,
            databases,
            addresses: Service::ALL.iter().map(|s| (*s, free_address())).collect(),
            gateway: free_address(),
            children: BTreeMap::new(),
            logs,
            flags: BTreeMap::new(),
            env: BTreeMap::new(),
        }
    }

    /// Starts the three services and the gateway; waits until the gateway reports all
    /// three ready.
    async fn start(broker: Broker) -> Topology {
        let mut topology = Topology::new(broker).await;
        topology.launch().await;
        topology
    }

    pub(crate) async fn launch(&mut self) {
        for service in Service::ALL {
            self.start_service(service);
        }
        let mut gateway = Command::new(env!("CARGO_BIN_EXE_shop"));
        gateway.args(["gateway", "--listen", &self.gateway.to_string()]);
        for (service, addr) in &self.addresses {
            gateway.args([format!("--{service}"), format!("http://{addr}")]);
        }
        self.spawn("gateway", gateway);
        self.ready().await;
    }

    fn spawn(&mut self, name: &'static str, mut command: Command) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{name}.log")))
            .expect("a log file");
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .env("SHOP_LOG", "warn")
            .envs(&self.env)
            .kill_on_drop(true);
        let child = command.spawn().expect("the shop binary starts");
        self.children.insert(name, child);
    }

    pub(crate) fn start_service(&mut self, service: Service) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_shop"));
        command
            .args(["serve", "--service", service.as_str(), "--admin-open"])
            .args(["--database-url", &self.databases[&service]])
            .args(["--bus", &self.bus, "--bus-prefix", &self.tag])
            .args(["--listen", &self.addresses[&service].to_string()])
            .args(["--payment-latency-ms", "1"])
            .args(self.flags.get(&service).cloned().unwrap_or_default());
        self.spawn(service.as_str(), command);
    }

    /// SIGKILLs `service`'s process, as a crash would.
    pub(crate) async fn kill(&mut self, service: Service) {
        let mut child = self.children.remove(service.as_str()).expect("running");
        child.start_kill().expect("SIGKILL");
        child.wait().await.expect("it ends");
    }

    /// Waits until the gateway answers ready for every service.
    pub(crate) async fn ready(&self) {
        let url = format!("{}/health/ready", self.base());
        let client = reqwest::Client::new();
        eventually(
            &format!("the topology is ready (logs in {:?})", self.logs),
            || async {
                let r = client.get(&url).send().await.ok()?;
                let body: Value = r.json().await.ok()?;
                (body["status"] == "ready").then_some(())
            },
        )
        .await;
    }

    fn base(&self) -> String {
        format!("http://{}", self.gateway)
    }

    /// A client of the gateway, waiting for ordering's catalogue after each product.
    pub(crate) fn shop(&self) -> TestShop {
        let ordering = format!("http://{}", self.addresses[&Service::Ordering]);
        TestShop::remote(self.base(), ordering)
    }

    /// Rows of `sql` on `service`'s database.
    async fn query(&self, service: Service, sql: &str) -> Vec<tokio_postgres::Row> {
        let client = admin_client(&self.databases[&service]).await;
        client.query(sql, &[]).await.expect("query")
    }

    /// The schemas of `service`'s database the shop made.
    async fn schemas(&self, service: Service) -> Vec<String> {
        let sql = "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' \
                   AND nspname NOT IN ('public', 'information_schema') ORDER BY 1";
        let rows = self.query(service, sql).await;
        rows.iter().map(|r| r.get(0)).collect()
    }
}

impl Topology {
    /// What a failed test prints to explain itself: each service's projection status
    /// (lags, a process manager's waiting and retrying commands), the broker's queues,
    /// and the end of each process's log. Runs before the processes are killed.
    fn explain_failure(&self) {
        let services: Vec<(Service, SocketAddr)> =
            self.addresses.iter().map(|(s, a)| (*s, *a)).collect();
        let (tag, broker, logs) = (self.tag.clone(), self.broker, self.logs.clone());
        let report = std::thread::spawn(move || {
            let mut report = String::new();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the failure report");
            runtime.block_on(async {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(3))
                    .build()
                    .expect("a client");
                for (service, addr) in services {
                    let url = format!("http://{addr}/v1/admin/projections");
                    let status = match client.get(&url).send().await {
                        Ok(r) => r.text().await.unwrap_or_else(|e| e.to_string()),
                        Err(e) => e.to_string(),
                    };
                    report.push_str(&format!("{service} projections: {status}\n"));
                }
            });
            if broker == Broker::Rabbit {
                // `list_queues` counts no consumers on quorum queues (RabbitMQ 3.10):
                // `list_consumers` shows them.
                let lists: [(&str, &[&str]); 2] = [
                    (
                        "queues (ready, unacked)",
                        &[
                            "list_queues",
                            "name",
                            "messages_ready",
                            "messages_unacknowledged",
                        ],
                    ),
                    (
                        "consumers",
                        &["list_consumers", "queue_name", "prefetch_count", "active"],
                    ),
                ];
                for (what, args) in lists {
                    // A broker that stopped answering must not hang a failing test.
                    let out = std::process::Command::new("rabbitmqctl")
                        .args(["-t", "10", "-q", "-p", &tag])
                        .args(args)
                        .output();
                    if let Ok(out) = out {
                        report.push_str(&format!("RabbitMQ {what}:\n"));
                        report.push_str(&String::from_utf8_lossy(&out.stdout));
                    }
                }
            }
            let mut names: Vec<_> = std::fs::read_dir(&logs)
                .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
                .unwrap_or_default();
            names.sort();
            for path in names {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(40)..];
                report.push_str(&format!("--- the end of {path:?}:\n{}\n", tail.join("\n")));
            }
            report
        })
        .join();
        if let Ok(report) = report {
            eprintln!("{report}");
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.explain_failure();
        }
        for child in self.children.values_mut() {
            let _ = child.start_kill();
        }
        let children = std::mem::take(&mut self.children);
        let (tag, broker) = (self.tag.clone(), self.broker);
        let databases: Vec<String> = Service::ALL.iter().map(|s| format!("{tag}_{s}")).collect();
        let logs = self.logs.clone();
        let failed = std::thread::panicking();
        // Async cleanup on a runtime of its own: this may run inside the test's.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for cleanup");
            let streams = tag.to_uppercase();
            runtime.block_on(async move {
                for (_, mut child) in children {
                    let _ = child.wait().await;
                }
                let admin = admin_client(&database_url()).await;
                for name in databases {
                    let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = admin.batch_execute(&drop).await;
                }
                if broker == Broker::Nats {
                    if let Ok(bus) = tessera_nats::NatsBus::connect(nats_url()).await {
                        for context in ["ORDERING", "INVENTORY", "PAYMENT"] {
                            let stream = format!("{streams}_{context}");
                            let _ = bus.jetstream().delete_stream(&stream).await;
                        }
                        let dead = format!("{streams}-DEAD");
                        let _ = bus.jetstream().delete_stream(&dead).await;
                    }
                }
            });
            if broker == Broker::Rabbit {
                let _ = std::process::Command::new("rabbitmqctl")
                    .args(["-t", "10", "delete_vhost", &tag])
                    .output();
            }
        })
        .join()
        .expect("cleanup");
        if failed {
            eprintln!("the services' logs are in {logs:?}");
        } else {
            let _ = std::fs::remove_dir_all(&logs);
        }
    }
}

/// Orders of one unit of `sku`, `n` at once; their ids.
async fn place_many(shop: &TestShop, sku: &str, n: usize) -> Vec<String> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (client, base, sku) = (shop.client.clone(), shop.base.clone(), sku.to_owned());
        tasks.spawn(async move {
            let body =
                json!({ "customer_id": format!("c{i}"), "lines": [{ "sku": sku, "quantity": 1 }] });
            let r = client
                .post(format!("{base}/v1/orders"))
                .json(&body)
                .send()
                .await
                .expect("POST /v1/orders");
            let status = r.status().as_u16();
            let body: Value = r.json().await.expect("a JSON body");
            assert_eq!(status, 201, "{body}");
            body["order_id"].as_str().expect("order id").to_owned()
        });
    }
    let mut ids = Vec::with_capacity(n);
    while let Some(id) = tasks.join_next().await {
        ids.push(id.expect("order task"));
    }
    ids
}

/// Each order settled, its saga done, its payment and reservation final, as the
/// gateway composes them.
async fn final_orders(shop: &TestShop, ids: &[String]) -> Vec<Value> {
    let mut orders = Vec::with_capacity(ids.len());
    for id in ids {
        let order = shop
            .order_until(id, "settled with its parts final", |o| {
                match o["status"].as_str() {
                    Some("confirmed") => {
                        o["payment"]["status"] == "captured"
                            && o["reservation"]["status"] == "reserved"
                            && o["saga"]["status"] == "completed"
                    }
                    Some("rejected") => {
                        o["reservation"]["status"] != "pending" && o["saga"]["status"] != "pending"
                    }
                    _ => false,
                }
            })
            .await;
        assert!(order.get("degraded").is_none(), "every part came: {order}");
        orders.push(order);
    }
    orders
}

/// The flash sale through the topology: 200 orders at once for 50 in stock confirm
/// exactly 50; the others are rejected out of stock and hold nothing.
async fn sells_exactly_its_stock(shop: &TestShop) {
    shop.product("flash", "Flash sale kettle", 1_000, 50).await;
    let ids = place_many(shop, "flash", 200).await;
    let orders = final_orders(shop, &ids).await;
    let confirmed: Vec<&Value> = orders
        .iter()
        .filter(|o| o["status"] == "confirmed")
        .collect();
    assert_eq!(confirmed.len(), 50, "exactly the stock is sold");
    for order in &orders {
        if order["status"] == "rejected" {
            assert_eq!(order["reason"], "out_of_stock", "{order}");
            assert_eq!(order["payment"]["status"], "not_requested", "{order}");
        } else {
            assert_eq!(order["payment"]["captured_cents"], 1_000, "{order}");
        }
    }
    shop.product_until("flash", "sold out", |p| {
        p["on_hand"] == 50 && p["reserved"] == 50 && p["available"] == 0
    })
    .await;
}

/// A confirmed order cancelled through the gateway is refunded and released.
async fn cancel_refunds_and_releases(shop: &TestShop) {
    shop.product("kettle", "Kettle", 4_000, 3).await;
    let (id, _) = shop.order("dave", &[("kettle", 1)]).await;
    assert_eq!(shop.settled(&id).await["status"], "confirmed");
    let (status, body) = shop
        .post(&format!("/v1/orders/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
    let order = shop
        .order_until(&id, "cancelled, refunded and released", |o| {
            o["status"] == "cancelled"
                && o["payment"]["status"] == "refunded"
                && o["reservation"]["status"] == "released"
                && o["saga"]["status"] == "completed"
        })
        .await;
    assert_eq!(order["payment"]["refunded_cents"], 4_000);
    assert_eq!(order["saga"]["reason"], "cancelled");
    shop.product_until("kettle", "released", |p| {
        p["reserved"] == 0 && p["available"] == 3
    })
    .await;
}

/// No service has another's data: each database holds its own context's schemas, and
/// each log only its own streams.
async fn each_database_holds_its_own(topology: &Topology) {
    let owned: [(Service, &[&str], &[&str]); 3] = [
        (
            Service::Ordering,
            &["catalogue", "fulfilment", "fulfilment_inbox", "ordering"],
            &["order", "inbox"],
        ),
        (
            Service::Inventory,
            &["inventory"],
            &["product", "rejection"],
        ),
        (Service::Payment, &["payment"], &["payment", "rejection"]),
    ];
    for (service, schemas, categories) in owned {
        for schema in topology.schemas(service).await {
            assert!(
                schemas
                    .iter()
                    .any(|s| schema == *s || schema.starts_with(&format!("{s}_"))),
                "{service}'s database has schema {schema:?}, not one of its own"
            );
            assert!(
                !schema.starts_with("ordering") || service == Service::Ordering,
                "{service} has ordering's {schema}"
            );
        }
        let sql = format!("SELECT DISTINCT category FROM {service}.events ORDER BY 1");
        for row in topology.query(service, &sql).await {
            let category: String = row.get(0);
            assert!(
                categories.contains(&category.as_str()),
                "{service}'s log holds {category} streams"
            );
        }
    }
    let sql = "SELECT DISTINCT category FROM catalogue.events";
    let catalogue = topology.query(Service::Ordering, sql).await;
    let categories: Vec<String> = catalogue.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        categories,
        ["product"],
        "the catalogue copy holds products only"
    );
}

/// The whole shop through the gateway on `broker`.
async fn the_shop_as_services(broker: Broker) {
    let topology = Topology::start(broker).await;
    let shop = topology.shop();
    crate::e2e::happy_path_confirms(&shop).await;
    crate::e2e::out_of_stock_rejects(&shop).await;
    crate::e2e::over_limit_is_declined(&shop).await;
    cancel_refunds_and_releases(&shop).await;
    sells_exactly_its_stock(&shop).await;
    each_database_holds_its_own(&topology).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_as_services_on_nats() {
    the_shop_as_services(Broker::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_as_services_on_rabbitmq() {
    the_shop_as_services(Broker::Rabbit).await;
}

/// Per order, how many times `event_type` is in `service`'s log (by `order_id`).
async fn per_order(
    topology: &Topology,
    service: Service,
    event_type: &str,
) -> BTreeMap<String, i64> {
    let sql = format!(
        "SELECT data->>'order_id', count(*) FROM {service}.events \
         WHERE event_type = '{event_type}' GROUP BY 1"
    );
    let rows = topology.query(service, &sql).await;
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// Every order of `ids` confirmed (each 300 cents), with exactly one capture in the
/// payment log and one reservation in the inventory log, and no capture of another.
async fn each_confirmed_once(topology: &Topology, shop: &TestShop, ids: &[String]) {
    for order in final_orders(shop, ids).await {
        assert_eq!(order["status"], "confirmed", "{order}");
        assert_eq!(order["payment"]["captured_cents"], 300, "{order}");
    }
    let captured = per_order(topology, Service::Payment, "PaymentCaptured").await;
    let reserved = per_order(topology, Service::Inventory, "StockReserved").await;
    for id in ids {
        assert_eq!(captured.get(id), Some(&1), "order {id}: captured once");
        assert_eq!(reserved.get(id), Some(&1), "order {id}: reserved once");
    }
    assert_eq!(captured.len(), ids.len(), "no capture for another order");
}

/// `victim` SIGKILLed while 120 orders are placed, restarted a moment later: every order
/// is confirmed once, with one capture and one reservation each.
async fn survives_a_killed_service(victim: Service) {
    let mut topology = Topology::start(Broker::Nats).await;
    let shop = topology.shop();
    shop.product("tea", "Tea", 300, 1_000).await;
    let first = place_many(&shop, "tea", 60).await;
    topology.kill(victim).await;
    // Orders keep coming while it is down: ordering takes them, the saga waits.
    let during = place_many(&shop, "tea", 30).await;
    // The gateway shows an order without the part of the service that is down.
    let part = if victim == Service::Payment {
        "payment"
    } else {
        "reservation"
    };
    let order = shop
        .order_until(&during[0], "shown without the part that is down", |o| {
            o["degraded"] == json!([part])
        })
        .await;
    assert!(order[part].is_null(), "{order}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    topology.start_service(victim);
    topology.ready().await;
    let after = place_many(&shop, "tea", 30).await;
    let ids: Vec<String> = first.into_iter().chain(during).chain(after).collect();
    each_confirmed_once(&topology, &shop, &ids).await;
    let n = i64::try_from(ids.len()).expect("a few orders");
    shop.product_until("tea", "exactly the orders reserved", |p| {
        p["reserved"] == n && p["available"] == 1_000 - n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payment_service_killed_mid_load_charges_each_order_once() {
    survives_a_killed_service(Service::Payment).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_service_killed_mid_load_reserves_each_order_once() {
    survives_a_killed_service(Service::Inventory).await;
}

/// The broker SIGKILLed while orders are placed and restarted on its store: every order
/// is confirmed once, with one capture and one reservation each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_killed_mid_load_loses_and_doubles_nothing() {
    let mut nats = PrivateNats::start().await;
    let mut topology = Topology::new(Broker::Nats).await;
    topology.bus = nats.url();
    topology.launch().await;
    let shop = topology.shop();
    shop.product("tea", "Tea", 300, 1_000).await;
    let first = place_many(&shop, "tea", 60).await;
    nats.kill().await;
    // Orders are taken while the broker is down: the saga's commands wait in its outbox.
    let during = place_many(&shop, "tea", 30).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.run().await;
    let after = place_many(&shop, "tea", 30).await;
    let ids: Vec<String> = first.into_iter().chain(during).chain(after).collect();
    each_confirmed_once(&topology, &shop, &ids).await;
    drop(topology);
}

/// Reads `shop up`'s output until the line that says the topology is ready; returns
/// that line (all lines go to `seen` for the failure message).
async fn until_up(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
    seen: &mut String,
) -> String {
    let wait = async {
        while let Some(line) = lines.next_line().await.expect("shop up's output") {
            seen.push_str(&line);
            seen.push('\n');
            if line.starts_with("shop up: gateway at ") {
                return line;
            }
        }
        panic!("shop up ended before it was ready:\n{seen}");
    };
    tokio::time::timeout(crate::support::WAIT, wait)
        .await
        .expect("shop up is ready in time")
}

/// `shop up` makes the databases, starts the topology, serves orders through its
/// gateway; when one of its processes dies it stops the others and fails; SIGTERM
/// stops them all and it exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shop_up_runs_the_topology_and_stops_it_whole() {
    use tokio::io::AsyncBufReadExt;
    let topology = Topology::new(Broker::Nats).await; // for its names and cleanup
    let prefix = format!("{}up", topology.tag);
    let up = |prefix: &str, listen: SocketAddr| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_shop"));
        command
            .args([
                "up",
                "--database-url",
                &database_url(),
                "--bus",
                &nats_url(),
            ])
            .args(["--bus-prefix", &topology.tag, "--database-prefix", prefix])
            .args(["--listen", &listen.to_string()])
            .env("SHOP_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command.spawn().expect("shop up starts")
    };
    let listen = free_address();
    let mut child = up(&prefix, listen);
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = String::new();
    let ready = until_up(&mut lines, &mut seen).await;
    assert!(ready.contains(&format!("http://{listen}")), "{ready}");
    let shop = TestShop::remote(format!("http://{listen}"), String::new());
    let (status, body) = shop
        .post(
            "/v1/products",
            &json!({ "sku": "tea", "name": "Tea", "price_cents": 300, "initial_stock": 5 }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let added = body["position"]
        .as_str()
        .expect("the product's position")
        .to_owned();
    let admin = admin_client(&url_of(&format!("{prefix}_inventory"))).await;
    let rows = admin
        .query("SELECT count(*) FROM inventory.events", &[])
        .await
        .expect("inventory's own database holds its log");
    assert_eq!(rows[0].get::<_, i64>(0), 1, "the product's event");
    // One of them dies: `shop up` stops the others and fails, naming it.
    let pattern = format!("serve --service payment --database-url .*/{prefix}_payment");
    let killed = std::process::Command::new("pkill")
        .args(["-KILL", "-f", &pattern])
        .status()
        .expect("pkill");
    assert!(killed.success(), "the payment service was running");
    let status = tokio::time::timeout(crate::support::WAIT, child.wait())
        .await
        .expect("shop up ends when one of its processes dies")
        .expect("its status");
    assert!(!status.success(), "a process that died is a failure");
    while let Ok(Some(line)) = lines.next_line().await {
        seen.push_str(&line);
        seen.push('\n');
    }
    assert!(seen.contains("payment ended"), "{seen}");
    assert!(
        tokio::net::TcpStream::connect(listen).await.is_err(),
        "the gateway was stopped too"
    );
    // Again on the same databases (kept), stopped with SIGTERM: every process ends, 0.
    let mut child = up(&prefix, listen);
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    until_up(&mut lines, &mut seen).await;
    // Read at the product's position: the payment service was killed right after the
    // product was added, and `shop up` stopped inventory with it, perhaps before its
    // read model had applied the event; restarted, the read model catches up first.
    let (status, body) = shop
        .get(&format!("/v1/products/tea?min_position={added}"))
        .await;
    assert_eq!((status, &body["on_hand"]), (200, &json!(5)), "{body}");
    let pid = child.id().expect("running").to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(term.success());
    let status = tokio::time::timeout(crate::support::WAIT, child.wait())
        .await
        .expect("shop up stops on SIGTERM")
        .expect("its status");
    while let Ok(Some(line)) = lines.next_line().await {
        seen.push_str(&line);
        seen.push('\n');
    }
    assert!(status.success(), "{status}:\n{seen}");
    for name in ["ordering", "inventory", "payment", "gateway"] {
        assert!(
            seen.contains(&format!("shop up: {name} stopped")),
            "{name}:\n{seen}"
        );
    }
    let admin = admin_client(&database_url()).await;
    for service in Service::ALL {
        let drop = format!("DROP DATABASE IF EXISTS \"{prefix}_{service}\" WITH (FORCE)");
        admin.batch_execute(&drop).await.expect("drop");
    }
}

/// A payment the payment service cannot get answered (its gateway always fails) is
/// timed out by the saga in ordering, declined by payment, and the stock released, as
/// all-in-one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_payment_times_out_across_services() {
    let mut topology = Topology::new(Broker::Nats).await;
    let flags = |f: &[&str]| f.iter().map(|s| (*s).to_owned()).collect();
    topology
        .flags
        .insert(Service::Payment, flags(&["--payment-failure-rate", "1"]));
    topology
        .flags
        .insert(Service::Ordering, flags(&["--payment-timeout-s", "1"]));
    topology.launch().await;
    crate::e2e::unanswered_payment_times_out(&topology.shop()).await;
}
