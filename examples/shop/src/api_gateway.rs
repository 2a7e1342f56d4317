//! The API gateway (`shop gateway`): one address in front of the ordering, inventory and
//! payment services, speaking the shop's API.
//!
//! - **Routing.** Each `/v1/…` request goes to the service that owns it (products,
//!   restocks and reservations: inventory; orders: ordering; payments: payment; any
//!   other path: ordering, which answers 404 or 405 as the API does), with its path,
//!   query and body as sent, and its answer comes back as it is: status, headers and
//!   body, problems included. A service that does not answer is 503 `upstream-unavailable`
//!   (with `Retry-After`), one whose answer cannot be read 502 `bad-upstream-answer`.
//! - **Composition.** `GET /v1/orders/{id}` asks the three services at once, each call
//!   behind a timeout and a circuit breaker (module `compose`); a part that does not come
//!   is `null` and named in `degraded`, the answer still 200.
//! - **Customers.** With a JWT key (`--jwt-secret` or `--jwt-public-key`, see
//!   [`crate::jwt`]) every non-admin `/v1` route needs `Authorization: Bearer <JWT>`
//!   (401 `unauthorized` with `WWW-Authenticate: Bearer` otherwise); the token's `sub`
//!   is the customer, who places orders as themself, lists only theirs, and gets 404 for
//!   another's order, its cancel, payment or reservation (checked with ordering before
//!   anything is forwarded). Without a key, customer routes are open.
//! - **Admin.** `/v1/admin/…` needs the admin token (module `admin`); the status is merged
//!   from the three services.
//! - **Rate limit.** Per customer (the token's subject), else per peer address: over it,
//!   429 `rate-limited` with `Retry-After`.
//! - **Headers.** `Idempotency-Key`, `Content-Type`, `Accept`, `Authorization` and
//!   `Origin` are passed on; the correlation id (`X-Correlation-Id`, or a new one) too,
//!   so a problem's `instance` is the same whoever answers it, and it is echoed back.
//! - **Health and metrics.** `/health/ready` asks each service's own (503 unless all
//!   are ready); `/metrics` has requests and a latency histogram per route and each
//!   breaker's state.
//!
//! Services are reached over plain HTTP (`http://host:port`): the gateway is meant to
//! sit in front of services on a private network.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tessera_core::Backoff;
use tessera_projections::resilience::{BreakerConfig, ResilienceConfig};
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::api::customer::{customer_of, own_list_query, own_order_body, unauthenticated};
use crate::api::{Correlation, Problem, BODY_LIMIT, CORRELATION};
use crate::jwt::{Customer, Verifier};
use crate::secret::Token;

mod admin;
mod compose;
mod health;
mod metrics;
mod problem;
pub(crate) mod rate;
mod route;
mod upstream;

pub use route::Route;
pub use upstream::{Answer, Call, Service, Upstream};

use rate::{Client, Rate};

/// What a gateway is started with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL of the ordering service (`http://host:port`).
    pub ordering: String,
    /// Base URL of the inventory service.
    pub inventory: String,
    /// Base URL of the payment service.
    pub payment: String,
    /// Checks customers' tokens; `None`: customer routes are open.
    pub jwt: Option<Verifier>,
    /// The admin routes' bearer token; `None`: admin routes are refused (403).
    pub admin_token: Option<Token>,
    /// Requests per second per client (0: no limit).
    pub rate_per_s: u32,
    /// Requests a client may send at once (0: the rate).
    pub rate_burst: u32,
    /// Timeout, breaker and bulkhead of the calls to each service (retries are not
    /// used: a forwarded write may not be safe to send twice).
    pub calls: ResilienceConfig,
    /// Longest a readiness probe of a service may take.
    pub probe_timeout: Duration,
}

impl Config {
    /// The three services, everything else by default: customer routes open, admin
    /// routes off, no rate limit, calls as [`Config::default_calls`].
    pub fn new(ordering: &str, inventory: &str, payment: &str) -> Self {
        Self {
            ordering: ordering.to_owned(),
            inventory: inventory.to_owned(),
            payment: payment.to_owned(),
            jwt: None,
            admin_token: None,
            rate_per_s: 0,
            rate_burst: 0,
            calls: Self::default_calls(),
            probe_timeout: Duration::from_secs(2),
        }
    }

    /// 10 s a call (above the services' longest `?min_position=` wait, 5 s by default),
    /// no retry, a breaker opening after 5 calls in a row without an answer and trying
    /// again after 30 s, at most 256 calls in flight to one service.
    pub fn default_calls() -> ResilienceConfig {
        ResilienceConfig {
            timeout: Duration::from_secs(10),
            retry: Backoff {
                max_attempts: 1,
                ..Backoff::default()
            },
            breaker: BreakerConfig::default(),
            max_concurrent: 256,
            max_wait: Duration::from_millis(100),
        }
    }
}

/// A running gateway's state.
#[derive(Debug)]
pub struct Gateway {
    upstreams: Vec<Upstream>,
    jwt: Option<Verifier>,
    admin_token: Option<Token>,
    rate: Option<Arc<Rate<Client>>>,
    metrics: metrics::Metrics,
    probe_timeout: Duration,
}

impl Gateway {
    /// A gateway configured by `config` (its URLs checked).
    pub fn new(config: Config) -> Result<Arc<Self>, String> {
        let upstreams = Service::ALL
            .into_iter()
            .map(|s| {
                let base = match s {
                    Service::Ordering => &config.ordering,
                    Service::Inventory => &config.inventory,
                    Service::Payment => &config.payment,
                };
                Upstream::new(s, base, config.calls)
            })
            .collect::<Result<_, _>>()?;
        Ok(Arc::new(Self {
            upstreams,
            jwt: config.jwt,
            admin_token: config.admin_token,
            rate: Rate::new(config.rate_per_s, config.rate_burst),
            metrics: metrics::Metrics::default(),
            probe_timeout: config.probe_timeout,
        }))
    }

    /// The upstream of `service`.
    pub fn upstream(&self, service: Service) -> &Upstream {
        let i = Service::ALL.iter().position(|s| *s == service).unwrap_or(0);
        &self.upstreams[i]
    }
}

/// The gateway's routes: health and metrics its own, everything else forwarded.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .fallback(handle)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                Problem::internal("the gateway panicked").into_response()
            },
        ))
        .layer(middleware::from_fn_with_state(gateway.clone(), observe))
        .with_state(gateway)
}

/// Serves `gateway` on `listener` until `shutdown` completes, then lets the requests in
/// flight finish.
pub async fn serve(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(gateway).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Any request but health and metrics (see the module).
async fn handle(State(gateway): State<Arc<Gateway>>, req: Request) -> Response {
    let correlation = req
        .extensions()
        .get::<Correlation>()
        .map_or_else(Uuid::new_v4, |c| c.0);
    let path = req.uri().path().to_owned();
    if path == "/openapi.json" {
        return forward(&gateway, Service::Ordering, req, correlation).await;
    }
    if !path.starts_with("/v1/") {
        return Problem::not_found("no such route").into_response();
    }
    let route = Route::of(&path);
    let authorization = req.headers().get(header::AUTHORIZATION);
    let no_token = authorization.is_none();
    let checked = match &gateway.jwt {
        Some(verifier) if !route.is_admin() => Some(verifier.verify_header(authorization)),
        _ => None,
    };
    let customer = checked.as_ref().and_then(|c| c.as_ref().ok()).cloned();
    if let Some(rate) = &gateway.rate {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>();
        let client = match &customer {
            Some(c) => Some(Client::Customer(c.0.clone())),
            None => peer.map(|p| Client::address(p.0.ip())),
        };
        if let Some(Err(retry_after)) = client.map(|c| rate.check(&c)) {
            return Problem::rate_limited(rate.per_s(), retry_after).into_response();
        }
    }
    if route.is_admin() {
        if let Err(problem) = admin::admit(&gateway, req.headers()) {
            return problem.into_response();
        }
    }
    if let Some(Err(e)) = &checked {
        return unauthenticated(e, no_token, correlation);
    }
    let is_get = req.method() == Method::GET;
    match (route, customer) {
        (Route::Order(id), customer) if is_get => {
            let query = req.uri().query();
            let customer = customer.as_ref();
            compose::show(&gateway, id, query, req.headers(), correlation, customer).await
        }
        (Route::AdminStatus, _) if is_get => {
            admin::status(&gateway, req.headers(), correlation).await
        }
        (Route::Orders, Some(customer)) => {
            let req = if is_get {
                with_own_query(req, &customer)
            } else {
                match with_own_body(req, &customer).await {
                    Ok(req) => req,
                    Err(problem) => return problem.into_response(),
                }
            };
            forward(&gateway, Service::Ordering, req, correlation).await
        }
        (Route::Cancel(id) | Route::Payment(id) | Route::Reservation(id), Some(customer)) => {
            if let Err(refused) = owns(&gateway, id, req.headers(), correlation, &customer).await {
                return refused;
            }
            forward(&gateway, route.owner(), req, correlation).await
        }
        _ => forward(&gateway, route.owner(), req, correlation).await,
    }
}

/// Sends `req` to `service` and its answer back.
async fn forward(gateway: &Gateway, service: Service, req: Request, correlation: Uuid) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return Problem::too_large(format!("request bodies are limited to {BODY_LIMIT} bytes"))
            .into_response();
    };
    let call = Call {
        method: parts.method,
        target: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: Call::headers_of(&parts.headers, correlation),
        body,
    };
    match gateway.upstream(service).send(&call).await {
        Ok(answer) => answer.into_response(),
        Err(problem) => problem.into_response(),
    }
}

/// Whether order `raw_id` is `customer`'s, asked of ordering: `Err` with the answer to
/// give if not (404 for another's order; ordering's own answer when it has none).
async fn owns(
    gateway: &Gateway,
    raw_id: &str,
    incoming: &axum::http::HeaderMap,
    correlation: Uuid,
    customer: &Customer,
) -> Result<(), Response> {
    let call = Call::get(format!("/v1/orders/{raw_id}"), incoming, correlation);
    match gateway.upstream(Service::Ordering).send(&call).await {
        Ok(a) if a.status.is_success() => {
            if customer_of(&a.body).as_deref() == Some(customer.0.as_str()) {
                Ok(())
            } else {
                Err(Problem::not_found("no such order").into_response())
            }
        }
        Ok(a) => Err(a.into_response()),
        Err(problem) => Err(problem.into_response()),
    }
}

fn with_own_query(req: Request, customer: &Customer) -> Request {
    let Some(query) = own_list_query(req.uri().query(), customer) else {
        return req;
    };
    let (mut parts, body) = req.into_parts();
    if let Ok(uri) = format!("{}?{query}", parts.uri.path()).parse() {
        parts.uri = uri;
    }
    Request::from_parts(parts, body)
}

async fn with_own_body(req: Request, customer: &Customer) -> Result<Request, Problem> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|_| {
        Problem::too_large(format!("request bodies are limited to {BODY_LIMIT} bytes"))
    })?;
    let body = own_order_body(&bytes, customer).unwrap_or(bytes);
    Ok(Request::from_parts(parts, Body::from(body)))
}

/// Correlation id, metrics per route, one log line per 5xx; a problem the gateway
/// answered itself gets the correlation id as its `instance`.
async fn observe(State(gateway): State<Arc<Gateway>>, mut req: Request, next: Next) -> Response {
    let Correlation(correlation) = Correlation::from_headers(req.headers());
    req.extensions_mut().insert(Correlation(correlation));
    let path = req.uri().path();
    let route = match path {
        "/health/live" | "/health/ready" | "/metrics" | "/openapi.json" => {
            ["/health/live", "/health/ready", "/metrics", "/openapi.json"]
                .into_iter()
                .find(|p| *p == path)
                .unwrap_or("unmatched")
        }
        p if p.starts_with("/v1/") => Route::of(p).template(),
        _ => "unmatched",
    };
    let method = req.method().clone();
    let span = crate::traces::server_span(&method, route, correlation, req.headers());
    let started = Instant::now();
    let mut response = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    let status = response.status();
    crate::traces::answered(&span, status.as_u16(), true);
    if let Some(problem) = response.extensions_mut().remove::<Problem>() {
        if status.is_server_error() {
            let cause = problem.cause.as_deref();
            span.in_scope(|| tracing::warn!(status = status.as_u16(), cause, "request failed"));
        }
        if problem.instance.is_none() {
            let headers = std::mem::take(response.headers_mut());
            response = problem.at(correlation).into_response();
            response.extensions_mut().remove::<Problem>();
            for (name, value) in &headers {
                if !response.headers().contains_key(name) {
                    response.headers_mut().insert(name, value.clone());
                }
            }
        }
    } else if status.is_server_error() {
        span.in_scope(|| tracing::warn!(status = status.as_u16(), "a service answered 5xx"));
    }
    gateway.metrics.observe(
        method.as_str(),
        route,
        status.as_u16(),
        started.elapsed().as_secs_f64(),
    );
    if let Ok(v) = HeaderValue::from_str(&correlation.to_string()) {
        response.headers_mut().insert(CORRELATION, v);
    }
    response
}
