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

use tessera_core::{Aggregate, BoxError, EventAppender, ExpectedVersion, StreamId};
use tessera_projections::integration::{ConsumerSpec, InboxHandler, Message, PublicEvents};

use crate::fulfilment::inbox::copied;
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
        let event = copied(message, message.derived_event_id(0))?;
        self.catalogue
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tessera_core::{CommandHandler, EventReader, MemoryStore, Position, ReadAll};
    use tessera_projections::integration::{InboxHandler, Message, MessageKind, JSON};

    use super::CatalogueInbox;
    use crate::inventory::Product;

    fn added(sku: &str, price_cents: i64) -> Message {
        let payload = serde_json::json!({
            "sku": sku, "name": "Tea", "price_cents": price_cents, "initial_stock": 7
        });
        Message {
            id: uuid::Uuid::new_v4(),
            kind: MessageKind::Event,
            name: "ProductAdded".into(),
            schema_version: 1,
            source: "inventory".into(),
            subject: "inventory.catalogue.ProductAdded".into(),
            stream: format!("product-{sku}"),
            version: 0,
            previous: None,
            position: Position::START,
            correlation_id: None,
            causation_id: None,
            idempotency_key: None,
            headers: BTreeMap::new(),
            content_type: JSON.into(),
            payload: serde_json::to_vec(&payload).expect("json").into(),
        }
    }

    /// A product copied into the catalogue is priceable by ordering's product handler;
    /// the same message delivered again is stored once; another message is refused.
    #[tokio::test]
    async fn a_copied_product_is_priceable_and_stored_once() {
        let catalogue = MemoryStore::new();
        let inbox = CatalogueInbox::new(catalogue.clone());
        let tea = added("tea", 450);
        inbox.handle(&tea).await.expect("copied");
        inbox.handle(&tea).await.expect("a redelivery is absorbed");
        let all = catalogue
            .read_all(ReadAll::after(Position::START, 10))
            .await
            .expect("read");
        assert_eq!(all.len(), 1, "stored once: {all:?}");
        assert_eq!(all[0].metadata.causation_id, Some(tea.id));
        let products = CommandHandler::<Product, _>::new(catalogue, ());
        let product = products.load("tea").await.expect("load").state;
        assert!(product.exists);
        assert_eq!(product.price_cents, 450);
        let mut other = added("cup", 100);
        other.name = "StockReserved".into();
        assert!(inbox.handle(&other).await.is_err(), "only ProductAdded");
    }
}
