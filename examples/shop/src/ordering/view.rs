//! The orders read model.

use serde::{Deserialize, Serialize};
use tessera_core::{decode_recorded, BoxError, EventFilter, RecordedEvent, Upcasters};
use uuid::Uuid;

use super::{Line, OrderEvent, OrderStatus, RejectReason};
use tessera_projections::View;

/// An order as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderDoc {
    /// The order.
    pub order_id: Uuid,
    /// Who ordered.
    pub customer_id: String,
    /// Where it stands.
    pub status: OrderStatus,
    /// Why it was rejected.
    pub reason: Option<RejectReason>,
    /// Priced lines.
    pub lines: Vec<Line>,
    /// Sum of the lines.
    pub total_cents: i64,
}

/// Orders by id.
pub struct OrdersView;

impl View for OrdersView {
    type Doc = OrderDoc;
    const NAME: &'static str = "ordering_orders";
    const FILTERABLE: &'static [&'static str] = &["customer_id", "status"];

    fn filter() -> EventFilter {
        EventFilter::category("order")
    }

    fn key(event: &RecordedEvent) -> Result<Option<String>, BoxError> {
        Ok(Some(
            event
                .stream_id
                .as_str()
                .trim_start_matches("order-")
                .to_owned(),
        ))
    }

    fn apply(doc: Option<OrderDoc>, event: &RecordedEvent) -> Result<OrderDoc, BoxError> {
        let event: OrderEvent = decode_recorded(event, &Upcasters::new())?;
        let status = |doc: Option<OrderDoc>, status, reason| -> Result<OrderDoc, BoxError> {
            let mut doc = doc.ok_or("order event before OrderPlaced")?;
            doc.status = status;
            doc.reason = reason;
            Ok(doc)
        };
        match event {
            OrderEvent::Placed {
                order_id,
                customer_id,
                lines,
                total_cents,
                ..
            } => Ok(OrderDoc {
                order_id,
                customer_id,
                status: OrderStatus::Pending,
                reason: None,
                lines,
                total_cents,
            }),
            OrderEvent::Confirmed { .. } => status(doc, OrderStatus::Confirmed, None),
            OrderEvent::Rejected { reason, .. } => status(doc, OrderStatus::Rejected, Some(reason)),
            OrderEvent::Cancelled { .. } => status(doc, OrderStatus::Cancelled, None),
        }
    }
}
