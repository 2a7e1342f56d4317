//! The HTTP API: `/v1` commands and queries, admin routes, health, metrics, OpenAPI.
//!
//! Every error is `application/problem+json` with a stable `type` (see [`Problem`]) and
//! the request's correlation id as `instance`; a 5xx has a fixed `detail`, the error
//! behind it going to the log under that correlation id.
//! Bodies are limited to 1 MiB (413); the server's other limits (`crate::server::Limits`)
//! answer 408, 414, 429, 431 or 503 the same way. Each request runs in a span carrying its
//! correlation id (`X-Correlation-Id`, echoed back), which the commands it sends put on
//! their events, so the saga's spans carry it too.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tessera_core::{EventStore, SnapshotStore};
use tracing::Instrument;

use crate::app::App;

mod admin;
pub mod console;
pub mod customer;
mod extract;
mod health;
mod inboxes;
mod limit;
mod openapi;
mod orders;
mod parts;
mod problem;
mod products;

pub use extract::{Correlation, BODY_LIMIT};
pub use openapi::document as openapi_document;
pub use orders::{OrderView, PaymentSummary, ReservationSummary, SagaSummary};
pub use problem::{DomainProblem, Problem, ProblemBody, TYPE_BASE};

/// The header carrying the correlation id.
pub const CORRELATION: HeaderName = HeaderName::from_static("x-correlation-id");

/// The router of `app`, within `app.settings.limits`: the API's routes under the rate
/// limit, load shedding and the request timeout; health, metrics and OpenAPI outside
/// them; every route under the size checks.
pub fn router<S: EventStore + SnapshotStore>(app: Arc<App<S>>) -> Router {
    let limits = app.settings.limits;
    let admin = Router::new()
        .route("/v1/admin/projections", get(admin::status::<S>))
        .route(
            "/v1/admin/projections/{name}/rebuild",
            post(admin::rebuild::<S>),
        )
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            admin::guard::<S>,
        ));
    let api = context_routes(&app)
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            customer::guard::<S>,
        ))
        .merge(admin)
        // The console's pages and API under the same rate limit, load shedding and
        // request timeout as the rest of the API (its API also passes the admin check).
        .nest_service("/admin", console::router(&app))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            limit::Guards::new(limits),
            limit::admit,
        ));
    Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready::<S>))
        .route("/metrics", get(health::metrics::<S>))
        .route("/openapi.json", get(openapi::serve))
        .merge(api)
        .fallback(|| async { Problem::not_found("no such route") })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .layer(middleware::from_fn_with_state(limits, limit::sizes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn_with_state(app.clone(), observe::<S>))
        .with_state(app)
}

/// The `/v1` routes of the contexts `app` runs: all three, or its service's (a route of
/// another service is then 404 here: the gateway sends it to its owner).
fn context_routes<S: EventStore + SnapshotStore>(app: &App<S>) -> Router<Arc<App<S>>> {
    let mut routes = Router::new();
    if app.runs("inventory") {
        routes = routes
            .route("/v1/products", post(products::create::<S>))
            .route("/v1/products/{sku}", get(products::show::<S>))
            .route("/v1/products/{sku}/restock", post(products::restock::<S>))
            .route("/v1/reservations/{order_id}", get(parts::reservation::<S>));
    }
    if app.runs("ordering") {
        routes = routes
            .route(
                "/v1/orders",
                post(orders::place::<S>).get(orders::list::<S>),
            )
            .route("/v1/orders/{order_id}", get(orders::show::<S>))
            .route("/v1/orders/{order_id}/cancel", post(orders::cancel::<S>));
    }
    if app.runs("payment") {
        routes = routes.route("/v1/payments/{order_id}", get(parts::payment::<S>));
    }
    routes
}

/// A handler panicked: a 500, the panic's message going to the log.
fn panicked(payload: Box<dyn std::any::Any + Send>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|m| (*m).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    Problem::internal(format_args!("panic: {message}")).into_response()
}

/// Correlation id, request span, metrics, and one log line per 5xx (with the error
/// behind it, which the client never sees); a problem answer gets the correlation id as
/// its `instance`.
async fn observe<S: EventStore + SnapshotStore>(
    State(app): State<Arc<App<S>>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Correlation(correlation) = Correlation::from_headers(req.headers());
    req.extensions_mut().insert(Correlation(correlation));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let span = crate::traces::server_span(&method, &route, correlation, req.headers());
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    crate::traces::answered(&span, status.as_u16(), true);
    let problem = response.extensions_mut().remove::<Problem>();
    let cause = problem.as_ref().and_then(|p| p.cause.as_deref());
    // The correlation id is a field of the line itself too, not only of its span: the
    // line names it even where the span is not recorded.
    if status.is_server_error() && (cause.is_some() || problem.is_none()) {
        span.in_scope(|| tracing::error!(status = status.as_u16(), cause, correlation_id = %correlation, "request failed"));
    } else if status.is_server_error() {
        // A refusal under load (shedding, the request timeout): nothing broke.
        span.in_scope(|| tracing::warn!(status = status.as_u16(), correlation_id = %correlation, "request refused"));
    } else {
        span.in_scope(|| tracing::debug!(status = status.as_u16(), "request answered"));
    }
    app.metrics.observe(
        method.as_str(),
        &route,
        status.as_u16(),
        started.elapsed().as_secs_f64(),
    );
    if let Some(problem) = problem {
        response = problem.at(correlation).into_response();
    }
    if let Ok(v) = HeaderValue::from_str(&correlation.to_string()) {
        response.headers_mut().insert(CORRELATION, v);
    }
    response
}
