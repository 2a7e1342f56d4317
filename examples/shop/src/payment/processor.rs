//! The payment worker: answers each requested payment and each requested refund
//! through the gateway.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use tessera_core::{
    decode_recorded, BoxError, CommandError, CommandHandler, CommandOptions, EventFilter,
    EventStore, Metadata, RecordedEvent, Upcasters,
};
use tracing::Instrument;
use uuid::Uuid;

use super::{DeclineReason, Payment, PaymentCommand, PaymentEvent, PaymentStatus};
use crate::gateway::{Charge, Gateway};
use tessera_projections::resilience::Resilience;
use tessera_projections::Reaction;

/// Reacts to `PaymentRequested` by charging through the resilient gateway and recording
/// the answer. With no answer (breaker open, retries spent) it records nothing: the
/// saga's deadline turns the silence into a timeout.
///
/// A capture the gateway answers after the deadline declined the payment cannot be
/// recorded; the worker refunds it at the gateway (keyed by the triggering event, so a
/// repeat moves no money) and logs a warning. The payment stays declined as timed out:
/// it never held the money as far as the shop is concerned, so no event is recorded.
///
/// Reacts to `PaymentRefundRequested` (the saga's refund of a cancelled order) by
/// refunding through the same route, keyed by that event's id, and only then recording
/// `PaymentRefunded` with the amount the gateway gave back. So "the log says refunded"
/// implies "the gateway refunded", and "the log says refund requested" implies "the
/// gateway refunds", eventually: a refund without an answer fails the event, and the
/// runner delivers it again with backoff (once its attempts are spent the worker stops
/// as failed, shown in the admin status, and a restart resumes at that refund). A
/// redelivery refunds once: the gateway answers a repeated key with the first refund.
///
/// Why not the alternatives: the saga's dispatcher calling the gateway before
/// recording the refund would put the payment context's gateway call in the saga, and
/// its outbox gives up after a few attempts and fails the saga; recording
/// `PaymentRefunded` first and reacting to it would make the log say "refunded" while
/// the gateway still holds the money.
pub struct PaymentProcessor<S> {
    payments: CommandHandler<Payment, S>,
    gateway: Gateway,
    route: Resilience,
    /// Payments with a late capture whose refund got no answer yet: the runner delivers
    /// the event again, and the refund is retried until it is answered.
    owed: Mutex<HashSet<Uuid>>,
}

impl<S: EventStore> PaymentProcessor<S> {
    /// A worker recording through `payments`.
    pub fn new(payments: CommandHandler<Payment, S>, gateway: Gateway, route: Resilience) -> Self {
        Self {
            payments,
            gateway,
            route,
            owed: Mutex::default(),
        }
    }

    async fn process(&self, event: &RecordedEvent) -> Result<(), BoxError> {
        match decode_recorded(event, &Upcasters::new())? {
            PaymentEvent::Requested {
                order_id,
                amount_cents,
            } => self.charge(event, order_id, amount_cents).await,
            PaymentEvent::RefundRequested { order_id, .. } => self.refund(event, order_id).await,
            _ => Ok(()),
        }
    }

    /// Charges a requested payment and records the answer.
    async fn charge(
        &self,
        event: &RecordedEvent,
        order_id: Uuid,
        amount_cents: i64,
    ) -> Result<(), BoxError> {
        let id = order_id.to_string();
        // The cached state if this process holds it (it asked for the payment, and its
        // worker is the one that answers): no read on the path every order takes. A
        // state another process changed since is caught where it matters: a capture the
        // deadline's decline refuses is refunded below.
        let payment = self.payments.peek(&id, Payment::clone).await?;
        match payment.status {
            Some(PaymentStatus::Requested) => {}
            // The deadline won. An earlier delivery may have been captured and not refunded
            // (it stopped after the capture, or its refund got no answer): check.
            Some(PaymentStatus::Declined)
                if payment.decline_reason == Some(DeclineReason::Timeout) =>
            {
                return self.refund_late_capture(event, order_id).await;
            }
            _ => return Ok(()), // answered already (a repeat delivery)
        }
        let answer = self
            .route
            .call(|_| true, || self.gateway.charge(order_id, amount_cents))
            .await;
        let command = match answer {
            Ok(Charge::Captured(reference)) => PaymentCommand::Capture { reference },
            Ok(Charge::Declined) => PaymentCommand::Decline(DeclineReason::Declined),
            Err(e) => {
                tracing::warn!(%order_id, error = %e, "no answer from the payment gateway; the deadline will decide");
                return Ok(());
            }
        };
        tracing::debug!(?command, "payment answered by the gateway");
        match self
            .payments
            .handle_with(&id, &command, answer_of(event))
            .await
        {
            Ok(_) => Ok(()),
            // Only a declined payment refuses a capture: the deadline won, money taken.
            Err(CommandError::Rejected(_)) if matches!(command, PaymentCommand::Capture { .. }) => {
                self.owed().insert(order_id);
                self.refund_late_capture(event, order_id).await
            }
            Err(CommandError::Rejected(_)) => Ok(()), // a decline after the deadline
            Err(e) => Err(e.into()),
        }
    }

    /// Gives back at the gateway whatever it captured for a payment the deadline
    /// declined. Fails (for the runner to retry) while a known late capture is not
    /// refunded; otherwise a check without an answer is only logged.
    async fn refund_late_capture(
        &self,
        event: &RecordedEvent,
        order_id: Uuid,
    ) -> Result<(), BoxError> {
        let key = refund_key(event);
        let answer = self
            .route
            .call(|_| true, || self.gateway.refund(order_id, &key))
            .await;
        match answer {
            Ok(cents) => {
                if cents > 0 {
                    tracing::warn!(%order_id, refunded_cents = cents, %key, "the gateway captured after the payment deadline; refunded at the gateway");
                }
                self.owed().remove(&order_id);
                Ok(())
            }
            Err(e) if self.owed().contains(&order_id) => {
                Err(format!("late capture of payment {order_id} not refunded yet: {e}").into())
            }
            Err(e) => {
                tracing::warn!(%order_id, error = %e, "could not ask the gateway whether it captured after the payment deadline");
                Ok(())
            }
        }
    }

    /// Refunds a capture asked back (a cancelled order) at the gateway, then records how
    /// much it gave back. Fails, for the runner to deliver the event again, while the
    /// gateway does not answer.
    async fn refund(&self, event: &RecordedEvent, order_id: Uuid) -> Result<(), BoxError> {
        let id = order_id.to_string();
        let payment = self.payments.load(&id).await?.state;
        if payment.status != Some(PaymentStatus::Refunding) {
            return Ok(()); // recorded already (a repeat delivery)
        }
        let key = refund_key(event);
        let cents = self
            .route
            .call(|_| true, || self.gateway.refund(order_id, &key))
            .await
            .map_err(|e| format!("refund of payment {order_id} not answered yet: {e}"))?;
        if cents != payment.amount_cents {
            tracing::warn!(%order_id, refunded_cents = cents, captured_cents = payment.amount_cents, %key, "the gateway refunded another amount than the payment captured");
        }
        let command = PaymentCommand::RecordRefund {
            amount_cents: cents,
        };
        tracing::debug!(?command, "refund answered by the gateway");
        self.payments
            .handle_with(&id, &command, answer_of(event))
            .await?;
        Ok(())
    }

    fn owed(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.owed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The gateway's idempotency key of a refund triggered by `event`.
fn refund_key(event: &RecordedEvent) -> String {
    format!("gateway:{}:refund", event.id)
}

/// Options recording the gateway's answer to `event`: keyed by it, so a redelivery
/// records the answer once, and caused by it.
fn answer_of(event: &RecordedEvent) -> CommandOptions {
    let metadata = Metadata {
        correlation_id: event.metadata.correlation_id,
        causation_id: Some(event.id.0),
        ..Metadata::default()
    };
    CommandOptions::idempotent(format!("gateway:{}", event.id)).with_metadata(metadata)
}

/// The events the payment worker answers: requested payments and refunds.
pub fn worker_filter() -> EventFilter {
    EventFilter::category("payment").with_types(["PaymentRequested", "PaymentRefundRequested"])
}

impl<S: EventStore> Reaction for PaymentProcessor<S> {
    fn filter(&self) -> EventFilter {
        worker_filter()
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), BoxError> {
        let span = tracing::info_span!(
            "payment_worker",
            stream = %event.stream_id,
            correlation_id = %crate::fulfilment::show(event.metadata.correlation_id),
            causation_id = %event.id,
        );
        self.process(event).instrument(span).await
    }
}
