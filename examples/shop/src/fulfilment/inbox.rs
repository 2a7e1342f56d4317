//! What crosses between the contexts towards the saga: the public events of inventory
//! and payment (their outcomes, and their refusals of the saga's commands), and the
//! ordering context's inbox that hands them to the saga. (The saga's commands go the
//! other way as command messages: see [`crate::commands`].)
//!
//! Inventory and payment each run a [`Relay`](tessera_projections::integration::Relay)
//! of their own log to the bus, publishing only the events declared here (everything
//! else stays private). Ordering runs an
//! [`Inbox`](tessera_projections::integration::Inbox) per source context whose handler,
//! [`FulfilmentInbox`], appends each message to stream `inbox-{order_id}` of the
//! ordering log, where the saga reads it. The appended event's id derives from the
//! message's id (the source event's), so a message delivered twice is stored once (the
//! store's idempotent append), and the inbox keeps each source stream in version order.

use tessera_core::{
    BoxError, EventAppender, EventData, EventId, ExpectedVersion, Metadata, NewEvent, StreamId,
};
use tessera_projections::integration::{
    BatchFailed, ConsumerSpec, InboxHandler, Message, PublicEvents,
};

use crate::commands::{REJECTED, REJECTION};

/// The category of the inbox streams.
pub const INBOX: &str = "inbox";

/// One flow between contexts: the source context's relay and the ordering inbox that
/// reads it.
#[derive(Debug, Clone, Copy)]
pub struct Flow {
    /// The source context (the relay's log, the bus context).
    pub context: &'static str,
    /// The relay's name (its runner's and checkpoint's).
    pub relay: &'static str,
    /// The inbox's durable consumer name (and the prefix of its positions).
    pub inbox: &'static str,
    category: &'static str,
    types: &'static [&'static str],
}

impl Flow {
    /// Inventory's reservation outcomes.
    pub const INVENTORY: Flow = Flow {
        context: "inventory",
        relay: "inventory_relay",
        inbox: "fulfilment_inbox_inventory",
        category: "product",
        types: &["StockReserved", "ReservationRejected"],
    };

    /// Payment's answers.
    pub const PAYMENT: Flow = Flow {
        context: "payment",
        relay: "payment_relay",
        inbox: "fulfilment_inbox_payment",
        category: "payment",
        types: &["PaymentCaptured", "PaymentDeclined"],
    };

    /// Both flows into ordering.
    pub const ALL: [Flow; 2] = [Flow::INVENTORY, Flow::PAYMENT];

    /// The source context's public events: each type under its own name, schema
    /// version 1, its stored payload as is (every one carries `order_id`); and its
    /// refusals of the saga's commands ([`REJECTED`] events of its [`REJECTION`]
    /// streams), published under the flow's category so the same consumer reads them
    /// in the order the context recorded them per stream.
    pub fn public(&self) -> PublicEvents {
        let public = self
            .types
            .iter()
            .fold(PublicEvents::new(self.context), |public, t| {
                public.map(self.category, t, t, 1, |e| Ok(e.data.to_value()?))
            });
        public.map_under(REJECTION, REJECTED, self.category, REJECTED, 1, |e| {
            Ok(e.data.to_value()?)
        })
    }

    /// The ordering inbox's durable consumer of this flow.
    pub fn consumer(&self) -> ConsumerSpec {
        ConsumerSpec::new(
            self.inbox,
            self.context,
            format!("{}.{}.>", self.context, self.category),
        )
    }
}

/// Appends each message to stream `inbox-{order_id}` of the ordering log `S`.
pub struct FulfilmentInbox<S> {
    ordering: S,
}

impl<S> FulfilmentInbox<S> {
    /// An inbox handler writing to `ordering`.
    pub fn new(ordering: S) -> Self {
        Self { ordering }
    }
}

/// `message` as an event of this context's log under `id`: its name, schema version
/// and payload, caused by the message, with its correlation id and headers. What an
/// inbox that copies another context's events appends.
pub(crate) fn copied(message: &Message, id: EventId) -> Result<NewEvent, BoxError> {
    let mut metadata = Metadata::default().caused_by(message.id);
    metadata.correlation_id = message.correlation_id;
    metadata.headers.extend(message.headers.clone());
    // Its events continue the trace of the inbox's handling, when traced.
    tessera_core::trace::inject(&mut metadata);
    Ok(NewEvent {
        id,
        event_type: message.name.clone(),
        schema_version: message.schema_version,
        data: EventData::from_json_bytes(message.payload.clone())?,
        metadata,
    })
}

/// The id of the inbox event for `message`: the same for every delivery of it, and the
/// id the log-to-log relays of earlier releases gave the same event (so a log they
/// filled is not written twice).
fn inbox_event_id(message: &Message) -> EventId {
    let mut name = b"inbox\0".to_vec();
    name.extend_from_slice(message.id.as_bytes());
    EventId::derived(&name)
}

/// Where `message` goes: stream `inbox-{order_id}`, as the event [`copied`] from it.
fn destination(message: &Message) -> Result<(StreamId, NewEvent), BoxError> {
    #[derive(serde::Deserialize)]
    struct ForOrder {
        order_id: String,
    }
    let ForOrder { order_id } = message
        .decode()
        .map_err(|e| format!("{} without an order_id: {e}", message.name))?;
    let stream = StreamId::from_parts(INBOX, &order_id)?;
    Ok((stream, copied(message, inbox_event_id(message))?))
}

impl<S: EventAppender + Send + Sync + 'static> InboxHandler for FulfilmentInbox<S> {
    async fn handle(&self, message: &Message) -> Result<(), BoxError> {
        let (stream, event) = destination(message)?;
        self.ordering
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await?;
        Ok(())
    }

    /// A run of one source stream (in a flash sale, every reservation of the one
    /// product) goes to many orders' inbox streams: their appends go out together (a
    /// store that commits concurrent appends as a group writes them in one
    /// transaction), each order's in the run's order.
    async fn handle_batch(&self, messages: &[Message]) -> Result<(), BatchFailed> {
        let mut streams: Vec<(StreamId, Vec<(usize, NewEvent)>)> = Vec::new();
        let mut unreadable = None;
        for (i, message) in messages.iter().enumerate() {
            match destination(message) {
                Ok((stream, event)) => match streams.iter_mut().find(|(s, _)| *s == stream) {
                    Some((_, events)) => events.push((i, event)),
                    None => streams.push((stream, vec![(i, event)])),
                },
                Err(error) => {
                    unreadable = Some((i, error));
                    break;
                }
            }
        }
        let appends = streams.into_iter().map(|(stream, events)| async move {
            for (i, event) in events {
                if let Err(e) = self
                    .ordering
                    .append(&stream, ExpectedVersion::Any, vec![event])
                    .await
                {
                    return Some((i, BoxError::from(e)));
                }
            }
            None
        });
        let failed = futures_util::future::join_all(appends).await;
        match failed
            .into_iter()
            .flatten()
            .chain(unreadable)
            .min_by_key(|(i, _)| *i)
        {
            None => Ok(()),
            Some((handled, error)) => Err(BatchFailed { handled, error }),
        }
    }
}
