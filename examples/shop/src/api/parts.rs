//! An order's parts owned by the other contexts, each served by its owner: the payment
//! (payment context) and the stock reservation (inventory context). The all-in-one
//! `GET /v1/orders/{id}` composes them in process; the gateway (`shop gateway`) asks
//! each service for its part, so that it needs no service to read another's data.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use tessera_core::{EventStore, SnapshotStore};

use super::extract::PathParam;
use super::orders::{PaymentSummary, ReservationSummary};
use super::Problem;
use crate::app::App;
use crate::inventory::ReservationDoc;
use crate::payment::PaymentDoc;

impl PaymentSummary {
    /// The payment part of an order: `not_requested` before there is a payment.
    pub fn of(payment: Option<PaymentDoc>) -> Self {
        match payment {
            Some(p) => Self {
                status: p.status.as_str().to_owned(),
                amount_cents: Some(p.amount_cents),
                captured_cents: p.captured_cents,
                refunded_cents: p.refunded_cents,
                decline_reason: p.decline_reason,
                reference: p.reference,
            },
            None => Self {
                status: "not_requested".to_owned(),
                amount_cents: None,
                captured_cents: 0,
                refunded_cents: 0,
                decline_reason: None,
                reference: None,
            },
        }
    }
}

impl ReservationSummary {
    /// The reservation part of an order: `pending` before its first line is decided.
    pub fn of(reservation: Option<ReservationDoc>) -> Self {
        match reservation {
            Some(r) => Self {
                status: r.status,
                lines: r.lines,
            },
            None => Self {
                status: "pending".to_owned(),
                lines: Vec::new(),
            },
        }
    }
}

/// The payment of an order, from the payment context's read model; 404 while there is
/// none (the order's payment is then `not_requested`).
#[utoipa::path(get, path = "/v1/payments/{order_id}", operation_id = "show_payment",
    params(("order_id" = uuid::Uuid, Path, description = "The order paid for")),
    responses((status = 200, body = PaymentSummary), (status = 404, response = super::ProblemBody),
        (status = 503, response = super::ProblemBody)))]
pub async fn payment<S: EventStore + SnapshotStore>(
    State(app): State<Arc<App<S>>>,
    PathParam(raw): PathParam<String>,
) -> Result<Json<PaymentSummary>, Problem> {
    let Ok(id) = uuid::Uuid::parse_str(&raw) else {
        return Err(Problem::not_found("no such payment"));
    };
    let payment = app.views.payments.get(&id.to_string()).await;
    match payment.map_err(Problem::unavailable)? {
        Some(p) => Ok(Json(PaymentSummary::of(Some(p)))),
        None => Err(Problem::not_found("no such payment")),
    }
}

/// The stock reservation of an order, from the inventory context's read model; 404
/// while there is none (the order's reservation is then `pending`).
#[utoipa::path(get, path = "/v1/reservations/{order_id}", operation_id = "show_reservation",
    params(("order_id" = uuid::Uuid, Path, description = "The order the stock is held for")),
    responses((status = 200, body = ReservationSummary), (status = 404, response = super::ProblemBody),
        (status = 503, response = super::ProblemBody)))]
pub async fn reservation<S: EventStore + SnapshotStore>(
    State(app): State<Arc<App<S>>>,
    PathParam(raw): PathParam<String>,
) -> Result<Json<ReservationSummary>, Problem> {
    let Ok(id) = uuid::Uuid::parse_str(&raw) else {
        return Err(Problem::not_found("no such reservation"));
    };
    let reservation = app.views.reservations.get(&id.to_string()).await;
    match reservation.map_err(Problem::unavailable)? {
        Some(r) => Ok(Json(ReservationSummary::of(Some(r)))),
        None => Err(Problem::not_found("no such reservation")),
    }
}
