//! `GET /v1/orders/{id}` composed from the three services at once: the order and its
//! saga from ordering (`GET /v1/orders/{id}`, of which only the order's own fields and
//! `saga` are used), its payment from payment (`GET /v1/payments/{id}`), its
//! reservation from inventory (`GET /v1/reservations/{id}`). A 404 of a part means there
//! is none yet (`not_requested`, `pending`), as in the all-in-one view.
//!
//! Without the order there is nothing to show: ordering's answer, when it is not a 200,
//! is the gateway's. A part that does not come (its service down, its breaker open, an
//! unreadable answer) is `null`, and `degraded` names it; with every part, the body is
//! the all-in-one server's byte for byte.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use super::upstream::{Answer, Call};
use super::{Gateway, Service};
use crate::api::{OrderView, PaymentSummary, Problem, ReservationSummary, SagaSummary};
use crate::jwt::Customer;
use crate::ordering::{Line, OrderStatus, RejectReason};

/// The composed order: the all-in-one view's fields in its order, parts that did not
/// come `null`, and `degraded` naming them (left out when none is missing).
#[derive(Debug, Serialize)]
pub struct Composed {
    order_id: Uuid,
    customer_id: String,
    status: OrderStatus,
    reason: Option<RejectReason>,
    lines: Vec<Line>,
    total_cents: i64,
    payment: Option<PaymentSummary>,
    reservation: Option<ReservationSummary>,
    saga: Option<SagaSummary>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    degraded: Vec<&'static str>,
}

/// The order `raw_id` (as sent), for `customer` when customers are checked; `query` is
/// passed to ordering (`min_position`).
pub async fn show(
    gateway: &Gateway,
    raw_id: &str,
    query: Option<&str>,
    incoming: &HeaderMap,
    correlation: Uuid,
    customer: Option<&Customer>,
) -> Response {
    let target = match query {
        Some(q) => format!("/v1/orders/{raw_id}?{q}"),
        None => format!("/v1/orders/{raw_id}"),
    };
    let get = |target: String| Call::get(target, incoming, correlation);
    let order_call = get(target);
    let payment_call = get(format!("/v1/payments/{raw_id}"));
    let reservation_call = get(format!("/v1/reservations/{raw_id}"));
    let (order, payment, reservation) = tokio::join!(
        gateway.upstream(Service::Ordering).send(&order_call),
        gateway.upstream(Service::Payment).send(&payment_call),
        gateway.upstream(Service::Inventory).send(&reservation_call),
    );
    let order = match order {
        Ok(answer) if answer.status == StatusCode::OK => answer,
        Ok(answer) => return answer.into_response(),
        Err(problem) => return problem.into_response(),
    };
    let order: OrderView = match serde_json::from_slice(&order.body) {
        Ok(order) => order,
        Err(e) => return Problem::bad_upstream(Service::Ordering, e).into_response(),
    };
    if customer.is_some_and(|c| c.0 != order.customer_id) {
        return Problem::not_found("no such order").into_response();
    }
    let mut degraded = Vec::new();
    let payment = part(Service::Payment, "payment", payment, &mut degraded, || {
        PaymentSummary::of(None)
    });
    let reservation = part(
        Service::Inventory,
        "reservation",
        reservation,
        &mut degraded,
        || ReservationSummary::of(None),
    );
    Json(Composed {
        order_id: order.order_id,
        customer_id: order.customer_id,
        status: order.status,
        reason: order.reason,
        lines: order.lines,
        total_cents: order.total_cents,
        payment,
        reservation,
        saga: order.saga,
        degraded,
    })
    .into_response()
}

/// A part from its service's answer: the body of a 200, `none()` for a 404, else
/// `None` with `name` added to `degraded` (and the reason in the log).
fn part<T: DeserializeOwned>(
    service: Service,
    name: &'static str,
    answer: Result<Answer, Problem>,
    degraded: &mut Vec<&'static str>,
    none: impl FnOnce() -> T,
) -> Option<T> {
    let why = match answer {
        Ok(a) if a.status == StatusCode::OK => match serde_json::from_slice(&a.body) {
            Ok(part) => return Some(part),
            Err(e) => format!("unreadable answer: {e}"),
        },
        Ok(a) if a.status == StatusCode::NOT_FOUND => return Some(none()),
        Ok(a) => format!("answered {}", a.status),
        Err(problem) => problem.cause.as_deref().unwrap_or(problem.kind).to_owned(),
    };
    tracing::warn!(service = service.as_str(), part = name, reason = %why, "order shown without a part");
    degraded.push(name);
    None
}
