//! The payment worker: answers each requested payment through the gateway.

use tessera_core::{
    decode_recorded, BoxError, CommandError, CommandHandler, CommandOptions, EventFilter,
    EventStore, Metadata, RecordedEvent, Upcasters,
};
use tracing::Instrument;

use super::{DeclineReason, Payment, PaymentCommand, PaymentEvent, PaymentStatus};
use crate::gateway::{Charge, Gateway};
use crate::reactor::Reaction;
use tessera_projections::resilience::Resilience;

/// Reacts to `PaymentRequested` by charging through the resilient gateway and recording
/// the answer. With no answer (breaker open, retries spent) it records nothing: the
/// saga's deadline turns the silence into a timeout.
pub struct PaymentProcessor<S> {
    payments: CommandHandler<Payment, S>,
    gateway: Gateway,
    route: Resilience,
}

impl<S: EventStore> PaymentProcessor<S> {
    /// A worker recording through `payments`.
    pub fn new(payments: CommandHandler<Payment, S>, gateway: Gateway, route: Resilience) -> Self {
        Self {
            payments,
            gateway,
            route,
        }
    }

    async fn process(&self, event: &RecordedEvent) -> Result<(), BoxError> {
        let PaymentEvent::Requested {
            order_id,
            amount_cents,
        } = decode_recorded(event, &Upcasters::new())?
        else {
            return Ok(());
        };
        let id = order_id.to_string();
        if self.payments.load(&id).await?.state.status != Some(PaymentStatus::Requested) {
            return Ok(()); // answered already (a repeat delivery, or the deadline passed)
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
        let metadata = Metadata {
            correlation_id: event.metadata.correlation_id,
            causation_id: Some(event.id.0),
            ..Metadata::default()
        };
        let options =
            CommandOptions::idempotent(format!("gateway:{}", event.id)).with_metadata(metadata);
        tracing::debug!(?command, "payment answered by the gateway");
        match self.payments.handle_with(&id, &command, options).await {
            Ok(_) | Err(CommandError::Rejected(_)) => Ok(()), // rejected: the deadline won
            Err(e) => Err(e.into()),
        }
    }
}

impl<S: EventStore> Reaction for PaymentProcessor<S> {
    fn filter(&self) -> EventFilter {
        EventFilter::category("payment").with_types(["PaymentRequested"])
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
