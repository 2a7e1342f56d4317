//! The inventory read models: stock per product, and each order's reservation.

use serde::{Deserialize, Serialize};
use tessera_core::{decode_recorded, BoxError, EventFilter, RecordedEvent, Upcasters};
use uuid::Uuid;

use super::ProductEvent;
use tessera_projections::View;

/// A product's stock as the API shows it. `reserved + available = on_hand`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductDoc {
    /// The product.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Unit price.
    pub price_cents: i64,
    /// Stock owned.
    pub on_hand: i64,
    /// Stock held for orders.
    pub reserved: i64,
    /// Stock free to reserve.
    pub available: i64,
}

fn sku_of(event: &RecordedEvent) -> String {
    event
        .stream_id
        .as_str()
        .trim_start_matches("product-")
        .to_owned()
}

/// Stock by sku.
pub struct ProductsView;

impl View for ProductsView {
    type Doc = ProductDoc;
    const NAME: &'static str = "inventory_products";

    fn filter() -> EventFilter {
        EventFilter::category("product")
    }

    fn key(event: &RecordedEvent) -> Result<Option<String>, BoxError> {
        Ok(Some(sku_of(event)))
    }

    fn apply(doc: Option<ProductDoc>, event: &RecordedEvent) -> Result<ProductDoc, BoxError> {
        let sku = sku_of(event);
        let event: ProductEvent = decode_recorded(event, &Upcasters::new())?;
        if let ProductEvent::Added {
            name,
            price_cents,
            initial_stock,
            ..
        } = event
        {
            return Ok(ProductDoc {
                sku,
                name,
                price_cents,
                on_hand: initial_stock,
                reserved: 0,
                available: initial_stock,
            });
        }
        let mut doc = doc.ok_or("product event before ProductAdded")?;
        match event {
            ProductEvent::Added { .. } | ProductEvent::Rejected { .. } => {}
            ProductEvent::Restocked { quantity } => doc.on_hand += quantity,
            ProductEvent::Reserved { quantity, .. } => doc.reserved += quantity,
            ProductEvent::Released { quantity, .. } => doc.reserved -= quantity,
        }
        doc.available = doc.on_hand - doc.reserved;
        Ok(doc)
    }
}

/// One line of a reservation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HoldDoc {
    /// The product.
    pub sku: String,
    /// How many were asked for.
    pub quantity: i64,
    /// `reserved`, `released` or `rejected`.
    pub status: String,
}

/// An order's reservation as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReservationDoc {
    /// The order.
    pub order_id: Uuid,
    /// `reserved` (every line seen so far is held), `rejected` (a line was refused) or
    /// `released` (everything held was given back).
    pub status: String,
    /// The lines seen so far.
    pub lines: Vec<HoldDoc>,
}

/// Reservations by order id.
pub struct ReservationsView;

impl View for ReservationsView {
    type Doc = ReservationDoc;
    const NAME: &'static str = "inventory_reservations";

    fn filter() -> EventFilter {
        EventFilter::category("product").with_types([
            "StockReserved",
            "ReservationReleased",
            "ReservationRejected",
        ])
    }

    fn key(event: &RecordedEvent) -> Result<Option<String>, BoxError> {
        let event: ProductEvent = decode_recorded(event, &Upcasters::new())?;
        Ok(match event {
            ProductEvent::Reserved { order_id, .. }
            | ProductEvent::Released { order_id, .. }
            | ProductEvent::Rejected { order_id, .. } => Some(order_id.to_string()),
            _ => None,
        })
    }

    fn apply(
        doc: Option<ReservationDoc>,
        event: &RecordedEvent,
    ) -> Result<ReservationDoc, BoxError> {
        let sku = sku_of(event);
        let event: ProductEvent = decode_recorded(event, &Upcasters::new())?;
        let (order_id, quantity, status) = match event {
            ProductEvent::Reserved {
                order_id, quantity, ..
            } => (order_id, quantity, "reserved"),
            ProductEvent::Released {
                order_id, quantity, ..
            } => (order_id, quantity, "released"),
            ProductEvent::Rejected {
                order_id,
                requested,
                ..
            } => (order_id, requested, "rejected"),
            _ => return Err("not a reservation event".into()),
        };
        let mut doc = doc.unwrap_or(ReservationDoc {
            order_id,
            status: String::new(),
            lines: Vec::new(),
        });
        match doc.lines.iter_mut().find(|l| l.sku == sku) {
            Some(line) => line.status = status.to_owned(),
            None => doc.lines.push(HoldDoc {
                sku,
                quantity,
                status: status.to_owned(),
            }),
        }
        let any = |s: &str| doc.lines.iter().any(|l| l.status == s);
        doc.status = if any("rejected") && !any("reserved") {
            "rejected"
        } else if any("reserved") {
            "reserved"
        } else {
            "released"
        }
        .to_owned();
        Ok(doc)
    }
}
