//! Order routes: place (idempotent), show (composed from three contexts), list, cancel.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tessera_core::{CommandOptions, EventStore, Metadata, SnapshotStore};
use uuid::Uuid;

use super::extract::{cursor, position, wait_for, Correlation, Params, PathParam};
use super::Problem;
use crate::app::App;
use crate::inventory::{HoldDoc, ReservationDoc};
use crate::ordering::{Line, OrderCommand, OrderDoc, OrderStatus, RejectReason};
use crate::payment::{DeclineReason, PaymentDoc};

pub mod place;

pub use place::place;

/// An order, composed from the ordering, payment and inventory read models.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderView {
    /// The order.
    pub order_id: Uuid,
    /// Who ordered.
    pub customer_id: String,
    /// `pending`, `confirmed`, `rejected` or `cancelled`.
    pub status: OrderStatus,
    /// Why it was rejected.
    pub reason: Option<RejectReason>,
    /// Priced lines.
    pub lines: Vec<Line>,
    /// Sum of the lines.
    pub total_cents: i64,
    /// The payment (`status: "not_requested"` before there is one).
    pub payment: PaymentSummary,
    /// The stock reservation (`status: "pending"` before the first line is decided).
    pub reservation: ReservationSummary,
    /// The fulfilment saga's instance (absent until it has seen the order).
    pub saga: Option<SagaSummary>,
}

/// The saga part of an order.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SagaSummary {
    /// `pending`, `compensating`, `completed` or `failed`.
    pub status: String,
    /// Why it compensated or failed.
    pub reason: Option<String>,
    /// Completed steps, oldest first, with their state (`done`, `compensated`...).
    pub steps: Vec<String>,
}

/// The payment part of an order.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentSummary {
    /// `not_requested`, `requested`, `captured`, `declined`, `refunding` (asked back,
    /// the gateway not answered yet) or `refunded`.
    pub status: String,
    /// How much was asked for.
    pub amount_cents: Option<i64>,
    /// Captured so far.
    pub captured_cents: i64,
    /// Refunded so far.
    pub refunded_cents: i64,
    /// `declined` or `timeout`, for a declined payment.
    pub decline_reason: Option<DeclineReason>,
    /// The gateway's reference, once captured.
    pub reference: Option<String>,
}

/// The reservation part of an order.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReservationSummary {
    /// `pending`, `reserved`, `rejected` or `released`.
    pub status: String,
    /// Lines decided so far.
    pub lines: Vec<HoldDoc>,
}

/// `GET /v1/orders/{id}` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShowQuery {
    /// Wait until the orders read model has processed this ordering-log position.
    pub min_position: Option<String>,
}

/// `GET /v1/orders` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this customer's orders.
    pub customer_id: Option<String>,
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// The cursor of the previous page.
    pub after: Option<String>,
}

/// A page of orders.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderPage {
    /// Orders, oldest first.
    pub items: Vec<OrderDoc>,
    /// Pass as `after` for the next page; `null` on the last.
    pub next: Option<String>,
}

/// The outcome of a cancellation.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cancelled {
    /// The order.
    pub order_id: Uuid,
    /// `cancelled`; the refund and the release of stock follow.
    pub status: OrderStatus,
    /// Position in the ordering log.
    pub position: Option<String>,
}

fn order_id(raw: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw).map_err(|_| Problem::not_found("no such order"))
}

/// Shows an order with its payment and reservation.
#[utoipa::path(get, path = "/v1/orders/{order_id}", operation_id = "show_order", params(("order_id" = Uuid, Path, description = "The order"), ShowQuery),
    responses((status = 200, body = OrderView), (status = 400, response = super::ProblemBody),
        (status = 404, response = super::ProblemBody), (status = 503, response = super::ProblemBody)))]
pub async fn show<S: EventStore + SnapshotStore>(
    State(app): State<Arc<App<S>>>,
    PathParam(raw): PathParam<String>,
    Params(q): Params<ShowQuery>,
) -> Result<Json<OrderView>, Problem> {
    let min = position("min_position", q.min_position.as_deref())?;
    let id = order_id(&raw)?;
    wait_for(&app, &app.views.orders.name(), min, app.settings.read_wait).await?;
    let key = id.to_string();
    let down = |e: tessera_projections::QueryError| Problem::unavailable(e);
    let order = app.views.orders.get(&key).await.map_err(down)?;
    let Some(order) = order else {
        return Err(Problem::not_found("no such order"));
    };
    // The other three views are independent lookups: ask them at once.
    let (payment, reservation, saga) = tokio::try_join!(
        async { app.views.payments.get(&key).await.map_err(down) },
        async { app.views.reservations.get(&key).await.map_err(down) },
        async { (app.saga.instance(&key).await).map_err(Problem::unavailable) },
    )?;
    let mut view = compose(order, payment, reservation);
    view.saga = saga.map(|i| SagaSummary {
        status: i.status.as_str().to_owned(),
        reason: i.reason,
        steps: i
            .steps
            .iter()
            .map(|s| format!("{}: {}", s.name, step_state(&s.state)))
            .collect(),
    });
    Ok(Json(view))
}

fn compose(
    order: OrderDoc,
    payment: Option<PaymentDoc>,
    reservation: Option<ReservationDoc>,
) -> OrderView {
    let payment = PaymentSummary::of(payment);
    let reservation = ReservationSummary::of(reservation);
    OrderView {
        order_id: order.order_id,
        customer_id: order.customer_id,
        status: order.status,
        reason: order.reason,
        lines: order.lines,
        total_cents: order.total_cents,
        payment,
        reservation,
        saga: None,
    }
}

fn step_state(state: &tessera_core::process::StepState) -> String {
    use tessera_core::process::StepState;
    match state {
        StepState::Done => "done".to_owned(),
        StepState::Compensating => "compensating".to_owned(),
        StepState::Compensated => "compensated".to_owned(),
        StepState::CompensationFailed(why) => format!("compensation failed ({why})"),
    }
}

/// Lists orders, oldest first, a page at a time.
#[utoipa::path(get, path = "/v1/orders", params(ListQuery),
    responses((status = 200, body = OrderPage), (status = 400, response = super::ProblemBody),
        (status = 422, response = super::ProblemBody), (status = 503, response = super::ProblemBody)))]
pub async fn list<S: EventStore + SnapshotStore>(
    State(app): State<Arc<App<S>>>,
    Params(q): Params<ListQuery>,
) -> Result<Json<OrderPage>, Problem> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(Problem::invalid("limit: must be 1 to 100"));
    }
    let after = cursor("after", q.after.as_deref())?;
    let mut filters = Vec::new();
    if let Some(c) = q.customer_id {
        if c.chars().any(char::is_control) || c.chars().count() > 100 {
            return Err(Problem::invalid(
                "customer_id: at most 100 characters, no control characters",
            ));
        }
        filters.push(("customer_id", c));
    }
    if let Some(s) = q.status {
        filters.push(("status", s.as_str().to_owned()));
    }
    let page = app
        .views
        .orders
        .list(&filters, after, limit)
        .await
        .map_err(Problem::unavailable)?;
    Ok(Json(OrderPage {
        items: page.items,
        next: page.next.map(|p| p.to_string()),
    }))
}

/// Cancels a confirmed order; the refund and the release of its stock follow.
#[utoipa::path(post, path = "/v1/orders/{order_id}/cancel", params(("order_id" = Uuid, Path, description = "The order")),
    responses((status = 202, body = Cancelled), (status = 400, response = super::ProblemBody),
        (status = 404, response = super::ProblemBody), (status = 409, response = super::ProblemBody),
        (status = 503, response = super::ProblemBody)))]
pub async fn cancel<S: EventStore + SnapshotStore>(
    State(app): State<Arc<App<S>>>,
    PathParam(raw): PathParam<String>,
    c: Correlation,
) -> Result<(StatusCode, Json<Cancelled>), Problem> {
    let id = order_id(&raw)?;
    let options = CommandOptions::default().with_metadata(Metadata::correlated(c.0));
    let out = app
        .orders
        .handle_with(&id.to_string(), &OrderCommand::Cancel, options)
        .await?;
    let body = Cancelled {
        order_id: id,
        status: OrderStatus::Cancelled,
        position: out.position.map(|p| p.to_string()),
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}
