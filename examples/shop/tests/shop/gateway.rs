//! The API gateway (`shop gateway`) in front of an all-in-one shop on the memory store,
//! each of the three services reached through a TCP proxy of its own, so that one can be
//! stopped while the others answer. Also the all-in-one server's own JWT checks.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, FromArgMatches};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::Method;
use serde_json::{json, Value};
use shop::api_gateway::{Config, Gateway};
use shop::jwt::{JwtArgs, Verifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::support::{eventually, settings, TestShop};

const SECRET: &[u8] = b"a test secret of 32 bytes or more";
const PROBLEMS: &str = "https://tessera.example/problems/";

/// Method, path, body, headers, the status expected.
type Case<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Vec<(&'a str, &'a str)>,
    u16,
);

/// A TCP proxy to `target` that can be stopped (its listener and every connection
/// through it closed) and started again on the same address.
struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        Self {
            addr,
            target,
            task: Some(tokio::spawn(relay(listener, target))),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    async fn restart(&mut self) {
        self.stop();
        let listener = eventually("the proxy's address is free again", || async {
            TcpListener::bind(self.addr).await.ok()
        })
        .await;
        self.task = Some(tokio::spawn(relay(listener, self.target)));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accepts and relays until aborted; aborting drops the connections' set, closing them.
async fn relay(listener: TcpListener, target: SocketAddr) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        connections.spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

/// A shop, a proxy per service to it, and a gateway in front.
struct Front {
    shop: TestShop,
    /// Ordering, inventory, payment.
    proxies: [Proxy; 3],
    base: String,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Front {
    async fn start(configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_on(TestShop::memory().await, configure).await
    }

    async fn start_on(shop: TestShop, configure: impl FnOnce(&mut Config)) -> Self {
        let target: SocketAddr = shop
            .base
            .trim_start_matches("http://")
            .parse()
            .expect("shop addr");
        let proxies = [
            Proxy::start(target).await,
            Proxy::start(target).await,
            Proxy::start(target).await,
        ];
        let mut config = Config::new(&proxies[0].url(), &proxies[1].url(), &proxies[2].url());
        config.calls.timeout = Duration::from_secs(5);
        configure(&mut config);
        let gateway = Gateway::new(config).expect("gateway");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(shop::api_gateway::serve(gateway, listener, async {
            let _ = rx.await;
        }));
        Self {
            shop,
            proxies,
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            stop: Some(tx),
            task: Some(task),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (u16, HeaderMap, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, body)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, HeaderMap, Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        self.send(Method::GET, path, None, &headers).await
    }

    async fn metrics(&self) -> String {
        let r = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics");
        r.text().await.expect("text")
    }

    async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
        for p in &mut self.proxies {
            p.stop();
        }
        self.shop.stop().await;
    }
}

/// An RSA key for the RS256 tests only (2048 bits, PKCS #8, made with `openssl genpkey
/// -algorithm RSA`: rcgen, on ring, cannot make RSA keys).
const RSA_KEY: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC1Ia5GxFijxcn7
JF8E23o2wkjopLhNBN1xz6ukc/drW+4pJOCiyTT99TsAmmgMcytV/vd5PzhD1OT8
T40jRiIxgU5hubkAcWRurokbn45yGWvnA14wZI91zwHOwiXTuTLvRAPy4cvAMqHK
cMxq6U2feCGEvqKx9gT0gqPtorkF/hEaCjrutT1xjhSpNKDU6HZa/Gpy0WjCq9j/
z2Y5pS33mByhaYHBXlRacGhECT8wFp+QzYX4hrqM6l+G1JdvA9gCsEXbvJ6JpSqS
+kZWpCFthTZRTrutgAfngso3O4CQa5l63spJqnUaPbUTeGRSsA2hl02GuMmXHiT4
M73b1sbzAgMBAAECggEAM8ls6/PAShbHQGQuPJPJtfVHZiiOPwsIiz0uXGcBkvLm
PWI7TZ+MZJ2kIHCFFiYpej1bIRHXsuEgFRljh3XKWfAX6m3wvHUvG0wQjFLKpcmp
5ZM7b0eZErw8TpKIwSd+rhT6sgsnt4xiYKBueZS5qkHtB2h/2LS3xvbBCrTPBKyb
I8carRKgGBQF2J/056hB1SAJmMjwt+IRy9k5443WJ/c/95S2wwcXMf3AzUUDcYY0
CKi0C6LzvpECqIpIZXmgLKMMLZeMLoX04v2KPVJCwouwK7+JIhPcU+7tXPN8CAYU
9RYYewzbJDASdxq/cC5XqPcuThkRKa6mV9Z7l0ISbQKBgQDsxIRZJUEFBgKG4g81
ZuKOtH5hhCC38AS8SoQA+3/HS2ovnsoXgZThn3AhoNlEvm02gJyimDKmBfP36fQz
XU4KUxEN123CYKdkLKtst0fZZHpvEhUulKSp1fk617nhgN5YRMiNN5XIlghZWp47
HV7LkYxwQ/x6k3IX8kOmkTeI/QKBgQDD2DwseiHvoXLd5/dO+edc1bDlqkuma9wG
Ok4OcQIfLEJdoc7k6EKvhTg2eXb/5RD/jNLHS5pAil4pPHmi9DExmkq2Wf0s4/k9
hDBTNpqL/rUJZQFmcAs6cI5fPDDlpAwcWsNR/h9F+O46wk9+UcW/B2Az+q5+Czye
oX50YJNKrwKBgQDKCde2Cmg1VS+K0hSQST9C7xp5NDqHOzWPRzblb7dV5TCzehiR
fm4BKgCRcaR1WNnxDEadKKrvqVzKTMWpnxEdFk0TNqXenIO6o7OUjcGt7GPdq9yP
ZyAsHP8UC0n+9+zD/c31U11pUT3GoeEsKJ/frk/c7Obh4jgV3xGDbZ+qMQKBgA48
fcNN7YGZ3tu6rQOUrvjUn9NSGcWzOX9KZbovBNR3Ryu/Q2boa1CPApMTKU9Yu2+Y
MQpDuKbQaB/fQYhS7/CHIr82s2y79bY/EbQ61+ktTsOsD/n+UxKgc/kASx2mWysE
fgZLzsIrYkXrMhQgpZtJUfj1VBHdhz6Qxrx2+L4JAoGAWwu7nOS9jbYXvKk8hd2e
kJx1Suyit1jmAZp/KYH7zzTKo6QPs2P09VYrx94QQ5m4RkyDVamP/3v/vaflY8YI
IamF5wGS7i5NJAT/CNyhYy2lqJJktxwiITfm3m66+FsR8UfHPlz5IVu3GoAw+Elm
JwGA8HYyZ4+b18d56F4yVU8=
-----END PRIVATE KEY-----
";

/// [`RSA_KEY`]'s public half (`openssl pkey -pubout`).
const RSA_PUBLIC_KEY: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtSGuRsRYo8XJ+yRfBNt6
NsJI6KS4TQTdcc+rpHP3a1vuKSTgosk0/fU7AJpoDHMrVf73eT84Q9Tk/E+NI0Yi
MYFOYbm5AHFkbq6JG5+Ochlr5wNeMGSPdc8BzsIl07ky70QD8uHLwDKhynDMaulN
n3ghhL6isfYE9IKj7aK5Bf4RGgo67rU9cY4UqTSg1Oh2WvxqctFowqvY/89mOaUt
95gcoWmBwV5UWnBoRAk/MBafkM2F+Ia6jOpfhtSXbwPYArBF27yeiaUqkvpGVqQh
bYU2UU67rYAH54LKNzuAkGuZet7KSap1Gj21E3hkUrANoZdNhrjJlx4k+DO929bG
8wIDAQAB
-----END PUBLIC KEY-----
";

/// Another RSA key, for tokens the verifier must refuse.
const OTHER_RSA_KEY: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDFGYPSWdyVFjQN
maUYnaj9oKnUk8laGprbVfPUZhCyu7YnHTOC5mm9TkGdwfDCRLCE9+thYib2AgLy
EP9hTIAx8q40Yog8Uj84dkQqTOtyzJlrM7qfgr7hOT4KCzfeWdfu23Fb6vA5B1zP
8GVApTCWgdsHUC8ySmoAny9/W15ogoZ292W3lFgwp3h/g7YdQ1JsuOuD+T0vVuK9
6re7KQwZesZFnmnwHmjN3zDnr9jk4IrVbA34qd48B4vm51MpLOfJ2OZNdPvfYQvR
1h8RxUT9y+OWqJq8gShhkEulAwfn2M6EEWtc8XmZ8ycQ1efe27Noiwl25YOao1WI
V7BOD1dxAgMBAAECggEAXZCiMk40V5XFuhsQ86GMYnJNjLtnX123251u9YpKLP7N
Fr5XALHuyk4G+iPh7eb7wPOMCpu0kR4dVdpZ0U+mn49rwTRxJemJV31VGJuRPdsA
jZJt6mD/yh0JZW0z5VrTFfGYW6Eoznm/RnsBJfIFIb2dQ1h+PypyLb9jpdqy83sF
Hwdfn6OZL5tssxg/D4WzLdOzmK5cqd1Go8mobu0w/BoFBxxs74I6IYDgn7mCxn/P
q2ovy+4Ruhxl+Q9QO7pdJpYHs4KvEsc5NTwoySKGASiZB161pp0RtR/Rl6tQnxZu
TcjNuQYB2LDod0bYLd1iqk9i+/3NUIssk8d0KeCNfQKBgQDw0gz8KnXa+gUNrxvN
vsraO+eEfDNg35+MNGrcNBVaGjKJTqRT4AZT5DSmi+UJOzhFC/pk05/RhdvtVANq
Hl+rhsP+86V3tF3bCtfQdo56Qbql8ejI73VEgUPof9ZIj+5cAHjcso54vO08xWcF
aB+ZrieqiDc2W4nQPwd4nnp8lwKBgQDRhfjZH2v6sqi7+gsFn6Sgan5D8t1GvxlY
QaDebXKrqKSpJSTTPStD+W6eZgLTz1Kxmrkh8qPi3AVbEiB0NlFfC3RvdsFy5HMk
CSHBdWz+GaVx0CphNu8z3WOtMtfgELR/VRp7k57TjQsKU7u2GPtO6XriwF0j+ioo
azTqXgFlNwKBgQCLB/nPK4RXI7j/KXVX1yqty5/h8QKIjxJBk5GOB9O77Rv4AZsF
gXSlwj5TWLimF7Zoxn2M8FB4WluaLMK75UU+ddN5wZhp/4ugBiaKh6fCFWh4nazT
NMvy/N4DwKopwk7OdsdQQxXVxt0AFMdha7eytcTYw0N88mQiAgGCNZxpiQKBgDPk
EUB81rpNGxsLD0XCRvxvw3vCn2jRFU7VWikcRCUdbEJz743dfWSlVu8l5pdcpmdU
IXu14z7hLPZkI+OEPFzksl6Us85no9iN5m1KTscTxPTOEGDpQQ7AStpvWCWnHXzX
r+phIhnUuaJCIKA1ya++hW+5IpgxcdV2z7EnvQK7AoGBAL4QiTYGD9li/NV04p8g
HxADhTLx1PzGRiLanlam6HaxDXkUJZxDiERz1XU4HYfpVkj59qgv3/IhGZkgtRPk
ealeJPrPXLruL1CenSWjHXXCsJrEapKE11V1AEkc0JGJVH1Ex+09Fvue7bO9SOaF
g9QNNAiXlvg3tLjY9PiOVGDR
-----END PRIVATE KEY-----
";

/// A token with `claims`, HS256 with [`SECRET`].
fn token(claims: &Value) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .expect("token")
}

fn claims(sub: &str) -> Value {
    json!({ "sub": sub, "aud": "shop", "exp": jsonwebtoken::get_current_timestamp() + 3600 })
}

fn problem_type(body: &Value) -> &str {
    body["type"]
        .as_str()
        .and_then(|t| t.strip_prefix(PROBLEMS))
        .unwrap_or("")
}

/// One raw exchange: status, content type, body bytes.
async fn raw(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<u8>) {
    let method: Method = method.parse().expect("method");
    let mut req = client.request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req.body(body.to_owned());
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let kind = r
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, kind, r.bytes().await.expect("bytes").to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_problems_pass_through_byte_for_byte() {
    let front = Front::start(|_| {}).await;
    let (status, _, _) = front
        .send(
            Method::POST,
            "/v1/products",
            Some(&json!({ "sku": "tea", "name": "Tea", "price_cents": 450, "initial_stock": 5 })),
            &[],
        )
        .await;
    assert_eq!(status, 201, "a product created through the gateway");
    let json = ("content-type", "application/json");
    let order = r#"{"customer_id":"c","lines":[{"sku":"tea","quantity":1}]}"#;
    let cases: Vec<Case<'_>> = vec![
        ("POST", "/v1/orders", Some("{"), vec![json], 400),
        (
            "POST",
            "/v1/orders",
            Some(r#"{"customer_id":"c","lines":[{"sku":"tea","quantity":"two"}]}"#),
            vec![json],
            400,
        ),
        (
            "POST",
            "/v1/orders",
            Some(order),
            vec![("content-type", "text/plain")],
            415,
        ),
        (
            "POST",
            "/v1/orders",
            Some(r#"{"customer_id":"c","lines":[]}"#),
            vec![json],
            422,
        ),
        (
            "POST",
            "/v1/orders",
            Some(r#"{"customer_id":"c","lines":[{"sku":"nope","quantity":1}]}"#),
            vec![json],
            422,
        ),
        (
            "POST",
            "/v1/orders",
            Some(order),
            vec![json, ("idempotency-key", "")],
            400,
        ),
        (
            "POST",
            "/v1/products",
            Some(r#"{"sku":"tea","name":"Tea","price_cents":1,"initial_stock":1}"#),
            vec![json],
            409,
        ),
        (
            "POST",
            "/v1/products/tea/restock",
            Some(r#"{"quantity":0}"#),
            vec![json],
            422,
        ),
        ("GET", "/v1/products/nope", None, vec![], 404),
        ("GET", "/v1/products/tea?min_position=x", None, vec![], 400),
        ("GET", "/v1/orders?limit=0", None, vec![], 422),
        ("GET", "/v1/orders/not-an-id", None, vec![], 404),
        ("POST", "/v1/orders/not-an-id/cancel", None, vec![], 404),
        (
            "GET",
            "/v1/payments/3f1c0c52-8c1b-4a43-9d1e-000000000000",
            None,
            vec![],
            404,
        ),
        ("DELETE", "/v1/orders", None, vec![], 405),
        ("GET", "/v1/nothing", None, vec![], 404),
    ];
    for (method, path, body, headers, want) in cases {
        let correlation = uuid::Uuid::new_v4().to_string();
        let mut headers = headers.clone();
        headers.push(("x-correlation-id", &correlation));
        let direct = raw(
            &front.client,
            method,
            &format!("{}{path}", front.shop.base),
            body,
            &headers,
        )
        .await;
        let through = raw(
            &front.client,
            method,
            &format!("{}{path}", front.base),
            body,
            &headers,
        )
        .await;
        assert_eq!(
            direct.0,
            want,
            "{method} {path}: {}",
            String::from_utf8_lossy(&direct.2)
        );
        assert_eq!(
            (through.0, &through.1, String::from_utf8_lossy(&through.2)),
            (direct.0, &direct.1, String::from_utf8_lossy(&direct.2)),
            "{method} {path}: the same answer through the gateway"
        );
        assert_eq!(through.1, "application/problem+json", "{method} {path}");
    }
    // An order placed twice with one key is one order; composed, it is the all-in-one view.
    let key = [("idempotency-key", "gw-key-1")];
    let body: Value = serde_json::from_str(order).expect("json");
    let (s1, _, first) = front
        .send(Method::POST, "/v1/orders", Some(&body), &key)
        .await;
    let (s2, _, again) = front
        .send(Method::POST, "/v1/orders", Some(&body), &key)
        .await;
    assert_eq!((s1, s2), (201, 201), "{first} {again}");
    assert_eq!(
        first["order_id"], again["order_id"],
        "the key was passed on"
    );
    let id = first["order_id"].as_str().expect("id");
    let path = format!("/v1/orders/{id}");
    front
        .shop
        .order_until(id, "confirmed, paid and reserved", |o| {
            o["status"] == "confirmed"
                && o["saga"]["status"] == "completed"
                && o["payment"]["status"] == "captured"
                && o["reservation"]["status"] == "reserved"
        })
        .await;
    let direct = raw(
        &front.client,
        "GET",
        &format!("{}{path}", front.shop.base),
        None,
        &[],
    )
    .await;
    let through = raw(
        &front.client,
        "GET",
        &format!("{}{path}", front.base),
        None,
        &[],
    )
    .await;
    assert_eq!(through.0, 200);
    assert_eq!(
        String::from_utf8_lossy(&through.2),
        String::from_utf8_lossy(&direct.2),
        "the composed view is the all-in-one one"
    );
    let (_, _, page) = front.get("/v1/orders?customer_id=c", None).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
    front.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_down_degrades_the_order_and_opens_then_closes_its_breaker() {
    let mut front = Front::start(|c| {
        c.calls.breaker.failure_threshold = 2;
        c.calls.breaker.cool_down = Duration::from_millis(500);
        c.calls.breaker.success_threshold = 1;
    })
    .await;
    front.shop.product("tea", "Tea", 450, 5).await;
    let (id, _) = front.shop.order("c", &[("tea", 1)]).await;
    front.shop.settled(&id).await;
    let path = format!("/v1/orders/{id}");
    let (status, _, ready) = front.get("/health/ready", None).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["services"]["payment"]["status"], "ready", "{ready}");

    front.proxies[2].stop();
    let (status, _, order) = front.get(&path, None).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["degraded"], json!(["payment"]), "{order}");
    assert_eq!(order["payment"], Value::Null);
    assert_eq!(
        order["reservation"]["status"], "reserved",
        "the parts it has"
    );
    assert_eq!(order["status"], "confirmed");
    assert!(order["saga"].is_object(), "{order}");
    let (status, _, ready) = front.get("/health/ready", None).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["status"], "not_ready");
    assert_eq!(
        ready["services"]["payment"]["status"], "unreachable",
        "{ready}"
    );
    assert_eq!(ready["services"]["ordering"]["status"], "ready", "{ready}");
    let (status, headers, problem) = front.get(&format!("/v1/payments/{id}"), None).await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem_type(&problem), "upstream-unavailable");
    assert!(headers.contains_key(RETRY_AFTER));
    // Two calls without an answer (the order shown, its payment asked): open.
    let metrics = front.metrics().await;
    assert!(
        metrics.contains("shop_gateway_breaker_state{service=\"payment\",state=\"open\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("shop_gateway_breaker_state{service=\"ordering\",state=\"closed\"} 1"));
    // The libraries' gauges of the named guards are served too (their values are
    // process-wide, shared with the other tests' gateways, so only their presence).
    assert!(
        metrics.contains("tessera_breaker_state{route=\"gateway_payment\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("shop_gateway_breaker_opened_total{service=\"payment\"} 1"));
    assert!(
        metrics.contains(
            "shop_gateway_request_duration_seconds_count{route=\"/v1/orders/{order_id}\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        "shop_gateway_requests_total{method=\"GET\",route=\"/v1/payments/{order_id}\",status=\"503\"} 1"
    ), "{metrics}");
    let (_, _, order) = front.get(&path, None).await;
    assert_eq!(
        order["degraded"],
        json!(["payment"]),
        "open: not even tried"
    );
    assert!(front
        .metrics()
        .await
        .contains("shop_gateway_breaker_rejected_total{service=\"payment\"} 1"));

    // Back: after the cool-down a trial call goes through and closes it.
    front.proxies[2].restart().await;
    let whole = eventually("the payment part is back", || async {
        let (_, _, order) = front.get(&path, None).await;
        order.get("degraded").is_none().then_some(order)
    })
    .await;
    assert_eq!(whole["payment"]["status"], "captured", "{whole}");
    assert!(front
        .metrics()
        .await
        .contains("shop_gateway_breaker_state{service=\"payment\",state=\"closed\"} 1"));
    let (status, _, _) = front.get("/health/ready", None).await;
    assert_eq!(status, 200);
    front.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_need_a_valid_token_and_see_only_their_own_orders() {
    let front = Front::start(|c| {
        c.jwt = Some(Verifier::hs256(SECRET).expect("verifier"));
        c.admin_token = Some("admin-s3cret".into());
    })
    .await;
    front.shop.product("tea", "Tea", 450, 5).await;
    let alice = token(&claims("alice"));
    let bob = token(&claims("bob"));
    let now = jsonwebtoken::get_current_timestamp();
    let refused = [
        ("no token", None),
        ("not bearer", Some(format!("Basic {alice}"))),
        (
            "another key",
            Some(format!(
                "Bearer {}",
                encode(
                    &Header::default(),
                    &claims("alice"),
                    &EncodingKey::from_secret(b"another secret of 32 bytes or more")
                )
                .expect("token")
            )),
        ),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                token(&json!({ "sub": "alice", "aud": "shop", "exp": now - 3600 }))
            )),
        ),
        (
            "another audience",
            Some(format!(
                "Bearer {}",
                token(&json!({ "sub": "alice", "aud": "billing", "exp": now + 3600 }))
            )),
        ),
        ("garbage", Some("Bearer not.a.jwt".to_owned())),
    ];
    for (what, auth) in &refused {
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let (status, h, body) = front
            .send(
                Method::POST,
                "/v1/orders",
                Some(&json!({"lines": []})),
                &headers,
            )
            .await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(problem_type(&body), "unauthorized", "{what}");
        assert_eq!(h[CONTENT_TYPE], "application/problem+json", "{what}");
        let challenge = h[WWW_AUTHENTICATE].to_str().expect("ascii");
        assert!(challenge.starts_with("Bearer"), "{what}: {challenge}");
        assert!(body["instance"]
            .as_str()
            .is_some_and(|i| i.starts_with("urn:uuid:")));
    }

    // Alice orders in someone else's name: the order is hers.
    let a = format!("Bearer {alice}");
    let b = format!("Bearer {bob}");
    let mallory = json!({ "customer_id": "mallory", "lines": [{ "sku": "tea", "quantity": 1 }] });
    let (status, _, placed) = front
        .send(
            Method::POST,
            "/v1/orders",
            Some(&mallory),
            &[("authorization", &a)],
        )
        .await;
    assert_eq!(status, 201, "{placed}");
    let id = placed["order_id"].as_str().expect("id").to_owned();
    let order = eventually("alice sees her order", || async {
        let (status, _, order) = front.get(&format!("/v1/orders/{id}"), Some(&alice)).await;
        (status == 200).then_some(order)
    })
    .await;
    assert_eq!(order["customer_id"], "alice", "{order}");

    // Bob cannot see it, its parts, or cancel it; he lists only his own.
    for (method, path) in [
        (Method::GET, format!("/v1/orders/{id}")),
        (Method::POST, format!("/v1/orders/{id}/cancel")),
        (Method::GET, format!("/v1/payments/{id}")),
        (Method::GET, format!("/v1/reservations/{id}")),
    ] {
        let (status, _, body) = front
            .send(method.clone(), &path, None, &[("authorization", &b)])
            .await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(problem_type(&body), "not-found");
        assert_eq!(body["detail"], "no such order");
    }
    let (_, _, page) = front.get("/v1/orders?customer_id=alice", Some(&bob)).await;
    assert_eq!(
        page["items"],
        json!([]),
        "bob's list has only bob's: {page}"
    );
    let (_, _, page) = front.get("/v1/orders", Some(&alice)).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
    let settled = front.shop.settled(&id).await;
    assert_eq!(settled["status"], "confirmed");
    let (status, _, cancelled) = front
        .send(
            Method::POST,
            &format!("/v1/orders/{id}/cancel"),
            None,
            &[("authorization", &a)],
        )
        .await;
    assert_eq!(status, 202, "alice cancels her own: {cancelled}");

    // Admin routes take the admin token, not a customer's.
    let (status, h, body) = front.get("/v1/admin/projections", None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(problem_type(&body), "unauthorized");
    assert_eq!(h[CONTENT_TYPE], "application/problem+json");
    let (status, _, _) = front.get("/v1/admin/projections", Some(&alice)).await;
    assert_eq!(status, 401, "a customer's token is not the admin token");
    let (status, _, merged) = front
        .get("/v1/admin/projections", Some("admin-s3cret"))
        .await;
    assert_eq!(status, 200, "{merged}");
    for service in ["ordering", "inventory", "payment"] {
        assert!(
            merged["services"][service]["runners"].is_array(),
            "{service}: {merged}"
        );
    }
    front.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eddsa_key_checks_tokens_signed_with_its_private_half() {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key pair");
    let public = pair.public_key_pem();
    let front = Front::start(|c| {
        c.jwt = Some(Verifier::from_pem(public.as_bytes()).expect("verifier"));
    })
    .await;
    let key = EncodingKey::from_ed_pem(pair.serialize_pem().as_bytes()).expect("key");
    let signed = encode(&Header::new(Algorithm::EdDSA), &claims("carol"), &key).expect("token");
    let (status, _, body) = front.get("/v1/orders", Some(&signed)).await;
    assert_eq!(status, 200, "{body}");
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key pair");
    let forged = encode(
        &Header::new(Algorithm::EdDSA),
        &claims("carol"),
        &EncodingKey::from_ed_pem(other.serialize_pem().as_bytes()).expect("key"),
    )
    .expect("token");
    let (status, _, _) = front.get("/v1/orders", Some(&forged)).await;
    assert_eq!(status, 401, "signed with another key");
    let hs = token(&claims("carol"));
    let (status, _, _) = front.get("/v1/orders", Some(&hs)).await;
    assert_eq!(status, 401, "another algorithm");
    front.finish().await;
}

/// The URL of a service that reads each request's head, answers with the reply of the
/// first `(prefix, reply)` whose prefix starts the request line (an empty reply: none)
/// and closes the connection. It stops with the test's runtime.
async fn broken_service(replies: &'static [(&'static str, &'static [u8])]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            connections.spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = replies.iter().find(|(p, _)| head.starts_with(p.as_bytes()));
                let _ = stream.write_all(reply.map_or(&b""[..], |r| r.1)).await;
            });
            while connections.try_join_next().is_some() {}
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_answering_garbage_or_nothing_is_a_gateway_problem() {
    let order = "3f1c0c52-8c1b-4a43-9d1e-000000000001";
    let broken = broken_service(&[
        // Not HTTP at all.
        ("GET /v1/payments/", b"SSH-2.0-OpenSSH_9.6\r\n"),
        // Nothing: the connection closed once the request is read.
        ("GET /v1/reservations/", b""),
        // A head, then the body cut short.
        (
            "GET /v1/products/",
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"sku\"",
        ),
        // A whole answer that is no order.
        (
            "GET /v1/orders/",
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 8\r\nconnection: close\r\n\r\nnot json",
        ),
    ])
    .await;
    let front = Front::start(|c| {
        c.ordering.clone_from(&broken);
        c.inventory.clone_from(&broken);
        c.payment.clone_from(&broken);
    })
    .await;
    // What reqwest fails to send (refused, cut, or no HTTP answer at all) is 503
    // upstream-unavailable; an answer whose body cannot be read, or that is not what
    // was asked for, 502 bad-upstream-answer.
    let unavailable = |service: &str| {
        (
            503,
            "upstream-unavailable",
            "A service is unavailable",
            format!(
                "the {service} service did not answer; retry later (the gateway's log has the \
                 details under this instance)"
            ),
        )
    };
    let unreadable = |service: &str| {
        (
            502,
            "bad-upstream-answer",
            "A service answered badly",
            format!(
                "the {service} service's answer could not be read (the gateway's log has the \
                 details under this instance)"
            ),
        )
    };
    for (path, (status, kind, title, detail)) in [
        (format!("/v1/payments/{order}"), unavailable("payment")),
        (
            format!("/v1/reservations/{order}"),
            unavailable("inventory"),
        ),
        ("/v1/products/tea".to_owned(), unreadable("inventory")),
        (format!("/v1/orders/{order}"), unreadable("ordering")),
    ] {
        let correlation = uuid::Uuid::new_v4();
        let id = correlation.to_string();
        let (got, headers, body) = front
            .send(Method::GET, &path, None, &[("x-correlation-id", &id)])
            .await;
        let want = json!({
            "type": format!("{PROBLEMS}{kind}"),
            "title": title,
            "status": status,
            "detail": detail,
            "instance": format!("urn:uuid:{correlation}"),
        });
        assert_eq!((got, &body), (status, &want), "{path}");
        assert_eq!(headers[CONTENT_TYPE], "application/problem+json", "{path}");
        assert_eq!(headers["x-correlation-id"], id.as_str(), "{path}");
        let retry = headers.get(RETRY_AFTER).map(|v| v.to_str().expect("ascii"));
        assert_eq!(retry, (status == 503).then_some("1"), "{path}");
    }
    front.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_key_file_checks_rs256_tokens() {
    let file = std::env::temp_dir().join(format!("shop-jwt-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&file, RSA_PUBLIC_KEY).expect("write the key");
    let path = file.to_str().expect("a UTF-8 path");
    let flags = JwtArgs::augment_args(clap::Command::new("gateway"))
        .try_get_matches_from(["gateway", "--jwt-public-key", path])
        .and_then(|m| JwtArgs::from_arg_matches(&m))
        .expect("the flag");
    let verifier = flags.verifier();
    std::fs::remove_file(&file).expect("remove the key");
    let verifier = verifier.expect("a usable key").expect("a verifier");
    assert_eq!(verifier.algorithm(), Algorithm::RS256);
    let front = Front::start(|c| c.jwt = Some(verifier)).await;
    let rs256 = |pem: &str| {
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("key");
        encode(&Header::new(Algorithm::RS256), &claims("frank"), &key).expect("token")
    };
    let (status, _, body) = front.get("/v1/orders", Some(&rs256(RSA_KEY))).await;
    assert_eq!(status, 200, "{body}");
    let confused = EncodingKey::from_secret(RSA_PUBLIC_KEY.as_bytes());
    for (what, token) in [
        ("signed with another key", rs256(OTHER_RSA_KEY)),
        (
            "HS256 with the public key as the secret",
            encode(&Header::default(), &claims("frank"), &confused).expect("token"),
        ),
    ] {
        let (status, headers, body) = front.get("/v1/orders", Some(&token)).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(problem_type(&body), "unauthorized", "{what}");
        assert_eq!(headers[CONTENT_TYPE], "application/problem+json", "{what}");
        let challenge = headers[WWW_AUTHENTICATE].to_str().expect("ascii");
        assert!(challenge.starts_with("Bearer"), "{what}: {challenge}");
    }
    front.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let front = Front::start(|c| {
        c.jwt = Some(Verifier::hs256(SECRET).expect("verifier"));
        c.rate_per_s = 1;
        c.rate_burst = 2;
    })
    .await;
    let dave = token(&claims("dave"));
    for _ in 0..2 {
        let (status, _, body) = front.get("/v1/orders", Some(&dave)).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, headers, body) = front.get("/v1/orders", Some(&dave)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(problem_type(&body), "rate-limited");
    assert_eq!(headers[RETRY_AFTER], "1");
    let erin = token(&claims("erin"));
    let (status, _, _) = front.get("/v1/orders", Some(&erin)).await;
    assert_eq!(status, 200, "another customer has a bucket of its own");
    let (status, _, _) = front.get("/health/ready", None).await;
    assert_eq!(status, 200, "health is not limited");
    front.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_all_in_one_server_checks_the_same_tokens_when_given_a_key() {
    let mut s = settings();
    s.jwt = Some(Verifier::hs256(SECRET).expect("verifier"));
    let shop = TestShop::memory_with(s).await;
    let client = &shop.client;
    let url = |path: &str| format!("{}{path}", shop.base);
    let r = client.get(url("/v1/orders")).send().await.expect("request");
    assert_eq!(r.status(), 401);
    assert!(r.headers()[WWW_AUTHENTICATE]
        .to_str()
        .expect("ascii")
        .starts_with("Bearer"));
    let body: Value = r.json().await.expect("json");
    assert_eq!(problem_type(&body), "unauthorized");
    assert!(body["instance"]
        .as_str()
        .is_some_and(|i| i.starts_with("urn:uuid:")));
    let (alice, bob) = (token(&claims("alice")), token(&claims("bob")));
    let r = client
        .post(url("/v1/products"))
        .bearer_auth(&alice)
        .json(&json!({ "sku": "tea", "name": "Tea", "price_cents": 450, "initial_stock": 5 }))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 201);
    let r = client
        .post(url("/v1/orders"))
        .bearer_auth(&alice)
        .json(&json!({ "customer_id": "mallory", "lines": [{ "sku": "tea", "quantity": 1 }] }))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 201);
    let placed: Value = r.json().await.expect("json");
    let id = placed["order_id"].as_str().expect("id");
    let position = placed["position"].as_str().expect("position");
    let mine = client
        .get(url(&format!("/v1/orders/{id}?min_position={position}")))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("request");
    assert_eq!(mine.status(), 200);
    let mine: Value = mine.json().await.expect("json");
    assert_eq!(mine["customer_id"], "alice");
    for (method, path) in [
        (Method::GET, format!("/v1/orders/{id}")),
        (Method::POST, format!("/v1/orders/{id}/cancel")),
        (Method::GET, format!("/v1/payments/{id}")),
    ] {
        let r = client
            .request(method.clone(), url(&path))
            .bearer_auth(&bob)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 404, "{method} {path}");
    }
    let page: Value = client
        .get(url("/v1/orders?customer_id=alice"))
        .bearer_auth(&bob)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(page["items"], json!([]), "{page}");
    let r = client
        .get(url("/health/ready"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "health needs no token");
    shop.stop().await;
}
