//! The payments read model.

use serde::{Deserialize, Serialize};
use tessera_core::{decode_recorded, BoxError, EventFilter, RecordedEvent, Upcasters};
use uuid::Uuid;

use super::{DeclineReason, PaymentEvent, PaymentStatus};
use tessera_projections::View;

/// A payment as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentDoc {
    /// The order paid for.
    pub order_id: Uuid,
    /// Where it stands.
    pub status: PaymentStatus,
    /// How much.
    pub amount_cents: i64,
    /// Captured so far.
    pub captured_cents: i64,
    /// Refunded so far.
    pub refunded_cents: i64,
    /// Why it was declined.
    pub decline_reason: Option<DeclineReason>,
    /// The gateway's reference.
    pub reference: Option<String>,
}

/// Payments by order id.
pub struct PaymentsView;

impl View for PaymentsView {
    type Doc = PaymentDoc;
    const NAME: &'static str = "payment_payments";

    fn filter() -> EventFilter {
        EventFilter::category("payment")
    }

    fn key(event: &RecordedEvent) -> Result<Option<String>, BoxError> {
        Ok(Some(
            event
                .stream_id
                .as_str()
                .trim_start_matches("payment-")
                .to_owned(),
        ))
    }

    fn apply(doc: Option<PaymentDoc>, event: &RecordedEvent) -> Result<PaymentDoc, BoxError> {
        let event: PaymentEvent = decode_recorded(event, &Upcasters::new())?;
        if let PaymentEvent::Requested {
            order_id,
            amount_cents,
        } = event
        {
            return Ok(PaymentDoc {
                order_id,
                status: PaymentStatus::Requested,
                amount_cents,
                captured_cents: 0,
                refunded_cents: 0,
                decline_reason: None,
                reference: None,
            });
        }
        let mut doc = doc.ok_or("payment event before PaymentRequested")?;
        match event {
            PaymentEvent::Requested { .. } => {}
            PaymentEvent::Captured {
                amount_cents,
                reference,
                ..
            } => {
                doc.status = PaymentStatus::Captured;
                doc.captured_cents += amount_cents;
                doc.reference = Some(reference);
            }
            PaymentEvent::Declined { reason, .. } => {
                doc.status = PaymentStatus::Declined;
                doc.decline_reason = Some(reason);
            }
            PaymentEvent::RefundRequested { .. } => doc.status = PaymentStatus::Refunding,
            PaymentEvent::Refunded { amount_cents, .. } => {
                doc.status = PaymentStatus::Refunded;
                doc.refunded_cents += amount_cents;
            }
        }
        Ok(doc)
    }
}
