//! The ordering context's inbox: inventory and payment events the saga needs, relayed
//! from their own logs into the ordering log.
//!
//! Each context keeps its own log (its own schema on PostgreSQL), while the
//! process-manager runtime reads one log. The relay is a checkpointed reader of the
//! other context's log that appends each event the saga wants to stream
//! `inbox-{order_id}` of the ordering log, under an id derived from the source event's
//! id: a relayed event delivered twice is stored once (the store's idempotent append).

use tessera_core::{
    BoxError, EventAppender, EventFilter, EventId, ExpectedVersion, NewEvent, RecordedEvent,
    StreamId,
};

use tessera_projections::Reaction;

/// The category of the inbox streams.
pub const INBOX: &str = "inbox";

/// Relays `types` of `category` into the ordering log `target`.
pub struct InboxRelay<S> {
    target: S,
    category: &'static str,
    types: &'static [&'static str],
}

impl<S> InboxRelay<S> {
    /// Inventory's reservation outcomes.
    pub fn inventory(target: S) -> Self {
        Self {
            target,
            category: "product",
            types: &["StockReserved", "ReservationRejected"],
        }
    }

    /// Payment's answers.
    pub fn payment(target: S) -> Self {
        Self {
            target,
            category: "payment",
            types: &["PaymentCaptured", "PaymentDeclined"],
        }
    }
}

impl<S: EventAppender> Reaction for InboxRelay<S> {
    fn filter(&self) -> EventFilter {
        EventFilter::category(self.category).with_types(self.types.iter().copied())
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), BoxError> {
        let data = event.data.to_value()?;
        let order_id = data
            .get("order_id")
            .and_then(|v| v.as_str())
            .ok_or("relayed event without order_id")?;
        let stream = StreamId::from_parts(INBOX, order_id)?;
        let mut id = b"inbox\0".to_vec();
        id.extend_from_slice(event.id.0.as_bytes());
        let relayed = NewEvent {
            id: EventId::derived(&id),
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            data: event.data.clone(),
            metadata: event.metadata.clone().caused_by(event.id.0),
        };
        self.target
            .append(&stream, ExpectedVersion::Any, vec![relayed])
            .await?;
        Ok(())
    }
}
