//! Ordering's copy of inventory's catalogue, for the shop split into services.
//!
//! Ordering prices each order line from the product's state. All-in-one it reads
//! inventory's log in process; as a service it cannot (no service reads another's
//! database), so inventory publishes each `ProductAdded` (a relay of its own,
//! [`CATALOGUE_RELAY`], subject `inventory.catalogue.ProductAdded`) and ordering's
//! [`CatalogueInbox`] appends it, unchanged, to stream `product-{sku}` of a catalogue
//! log in ordering's own database. Ordering's product handler reads that log as it would
//! inventory's: the product exists and has its price; stock is not copied (ordering never
//! looks at it: the saga asks inventory to reserve).
//!
//! The copied event's id derives from the message's, so a redelivery is stored once. A
//! price never changes after `ProductAdded` in this shop; a shop whose prices change
//! would publish those events on the same relay, and per-stream order (decision 11)
//! keeps the copy's versions in the source's order.

use tessera_core::{Aggregate, StreamId};
use tessera_core::{BoxError, EventAppender, EventData, ExpectedVersion, Metadata, NewEvent};
use tessera_projections::integration::{ConsumerSpec, InboxHandler, Message, PublicEvents};

use crate::inventory::Product;

/// The relay of inventory's `ProductAdded` events (runs in the inventory service).
pub const CATALOGUE_RELAY: &str = "catalogue_relay";
/// Ordering's inbox of them (runs in the ordering service).
pub const CATALOGUE_INBOX: &str = "catalogue_inbox";
/// The subject token they are published under: `inventory.catalogue.ProductAdded`.
const TOPIC: &str = "catalogue";
/// The event copied.
const ADDED: &str = "ProductAdded";

/// Inventory's public catalogue: `ProductAdded` of `product-*` streams, payload as
/// stored, under `inventory.catalogue`. A relay of its own, so that the outcome relay's
/// per-stream `previous` versions (decision 11) do not count events its consumers never
/// receive.
pub fn public() -> PublicEvents {
    PublicEvents::new("inventory").map_under(Product::CATEGORY, ADDED, TOPIC, ADDED, 1, |e| {
        Ok(e.data.to_value()?)
    })
}

/// Ordering's durable consumer of the catalogue.
pub fn consumer() -> ConsumerSpec {
    ConsumerSpec::new(CATALOGUE_INBOX, "inventory", format!("inventory.{TOPIC}.>"))
}

/// Appends each catalogue message to `product-{sku}` of the catalogue log `S`.
pub struct CatalogueInbox<S> {
    catalogue: S,
}

impl<S> CatalogueInbox<S> {
    /// An inbox handler writing to `catalogue`.
    pub fn new(catalogue: S) -> Self {
        Self { catalogue }
    }
}

impl<S: EventAppender + Send + Sync + 'static> InboxHandler for CatalogueInbox<S> {
    async fn handle(&self, message: &Message) -> Result<(), BoxError> {
        #[derive(serde::Deserialize)]
        struct Added {
            sku: String,
        }
        if message.name != ADDED {
            return Err(format!("the catalogue takes {ADDED} only, not {}", message.name).into());
        }
        let Added { sku } = message
            .decode()
            .map_err(|e| format!("{ADDED} without a sku: {e}"))?;
        let stream = StreamId::from_parts(Product::CATEGORY, &sku)?;
        let mut metadata = Metadata::default().caused_by(message.id);
        metadata.correlation_id = message.correlation_id;
        let event = NewEvent {
            id: message.derived_event_id(0),
            event_type: ADDED.to_owned(),
            schema_version: message.schema_version,
            data: EventData::from_json_bytes(message.payload.clone())?,
            metadata,
        };
        self.catalogue
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await?;
        Ok(())
    }
}
