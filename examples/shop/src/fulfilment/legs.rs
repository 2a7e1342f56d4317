//! The saga's three legs: one reactor per context log, all driving the same steps.

use std::sync::Arc;

use tessera_core::{decode_recorded, BoxError, EventFilter, EventStore, RecordedEvent, Upcasters};
use tracing::Instrument;

use super::Fulfilment;
use crate::inventory::ProductEvent;
use crate::ordering::OrderEvent;
use crate::payment::PaymentEvent;
use crate::reactor::Reaction;

/// Which context's log a leg reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// Orders placed and cancelled.
    Ordering,
    /// Stock reserved or refused.
    Inventory,
    /// Payments requested, captured, declined.
    Payment,
}

impl Leg {
    /// The reactor name of this leg.
    pub fn name(self) -> &'static str {
        match self {
            Leg::Ordering => "fulfilment_ordering",
            Leg::Inventory => "fulfilment_inventory",
            Leg::Payment => "fulfilment_payment",
        }
    }
}

/// One leg of the saga as a [`Reaction`].
pub struct SagaLeg<S> {
    saga: Arc<Fulfilment<S>>,
    leg: Leg,
}

impl<S: EventStore> SagaLeg<S> {
    /// The `leg` of `saga`.
    pub fn new(saga: Arc<Fulfilment<S>>, leg: Leg) -> Self {
        Self { saga, leg }
    }

    async fn step(&self, e: &RecordedEvent) -> Result<(), BoxError> {
        let up = Upcasters::new();
        let saga = &self.saga;
        match self.leg {
            Leg::Ordering => match decode_recorded(e, &up)? {
                OrderEvent::Placed {
                    order_id, lines, ..
                } => saga.on_placed(order_id, &lines, e).await,
                OrderEvent::Cancelled { order_id } => saga.on_cancelled(order_id, e).await,
                _ => Ok(()),
            },
            Leg::Inventory => {
                let sku = e.stream_id.as_str().trim_start_matches("product-");
                match decode_recorded(e, &up)? {
                    ProductEvent::Reserved { order_id, .. } => {
                        saga.on_reserved(order_id, sku, e).await
                    }
                    ProductEvent::Rejected { order_id, .. } => {
                        saga.on_refused(order_id, sku, e).await
                    }
                    _ => Ok(()),
                }
            }
            Leg::Payment => match decode_recorded(e, &up)? {
                PaymentEvent::Requested { order_id, .. } => {
                    saga.on_payment_requested(order_id, e).await
                }
                PaymentEvent::Captured { order_id, .. } => saga.on_captured(order_id, e).await,
                PaymentEvent::Declined { order_id, reason } => {
                    saga.on_declined(order_id, reason, e).await
                }
                PaymentEvent::Refunded { .. } => Ok(()),
            },
        }
    }
}

impl<S: EventStore> Reaction for SagaLeg<S> {
    fn filter(&self) -> EventFilter {
        match self.leg {
            Leg::Ordering => {
                EventFilter::category("order").with_types(["OrderPlaced", "OrderCancelled"])
            }
            Leg::Inventory => EventFilter::category("product")
                .with_types(["StockReserved", "ReservationRejected"]),
            Leg::Payment => EventFilter::category("payment").with_types([
                "PaymentRequested",
                "PaymentCaptured",
                "PaymentDeclined",
            ]),
        }
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), BoxError> {
        let span = tracing::info_span!(
            "saga_step",
            leg = self.leg.name(),
            stream = %event.stream_id,
            event_type = %event.event_type,
            correlation_id = ?event.metadata.correlation_id,
            causation_id = %event.id,
        );
        self.step(event).instrument(span).await
    }
}
