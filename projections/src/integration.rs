//! Integration events between services: the log as the outbox, inboxes, and the broker
//! contract.
//!
//! - A context declares its [`PublicEvents`]: which `(category, event type)` pairs are
//!   public and what each becomes (a stable name, a schema version, its own payload).
//!   Everything else is private and never leaves the service.
//! - A [`Relay`] is a checkpointed, fenced [`Subscriber`](crate::Subscriber) of the
//!   service's own gap-free log, driven by the [`Runner`](crate::Runner): it publishes a
//!   batch's public events and moves its checkpoint only after the broker confirmed
//!   them all. No second table, no publish-after-commit: a crash between the publish and
//!   the checkpoint publishes the batch again, and the broker's message-id
//!   de-duplication and the inbox absorb the repeat.
//! - An [`Inbox`] is a durable consumer: it hands each message to an [`InboxHandler`]
//!   and acknowledges only after the handler's write committed. Per source stream it
//!   keeps the version handled last (in a [`CheckpointStore`](crate::CheckpointStore)),
//!   so a repeat is acknowledged without effect, and a message whose predecessor
//!   (`previous`) it has not handled yet is held back and asked for again: the handler
//!   sees each stream in version order with none missing, whatever order the broker
//!   delivers in. Different streams interleave.
//! - A message the handler keeps failing on, or one that is not an integration message,
//!   stops the inbox with a status naming it, or is parked in the dead-letter
//!   destination when configured. Never a silent skip.
//! - [`Bus`] is the broker contract (publish with confirmation, durable consumers with
//!   explicit acknowledgement); [`MemoryBus`] implements it in process, the
//!   `tessera-nats` and `tessera-rabbitmq` crates on real brokers.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use tessera_core::{BoxError, EventAppender, ExpectedVersion, MemoryStore, NewEvent, StreamId};
//! use tessera_projections::integration::{
//!     ConsumerSpec, Inbox, InboxConfig, InboxHandler, MemoryBus, Message, PublicEvents, Relay,
//! };
//! use tessera_projections::{MemoryCheckpoints, Runner, RunnerConfig};
//!
//! // Ordering publishes OrderPlaced (and nothing else) ...
//! let ordering = MemoryStore::new();
//! let bus = Arc::new(MemoryBus::new());
//! let public = PublicEvents::new("ordering")
//!     .map("order", "OrderPlaced", "OrderPlaced", 1, |e| Ok(e.data.to_value()?));
//! let relay = Relay::new("ordering_relay", public, ordering.clone(), bus.clone(), MemoryCheckpoints::new());
//! let _relay = Runner::new(ordering.clone(), relay, RunnerConfig::default()).spawn();
//!
//! // ... and the warehouse reacts to it.
//! struct Warehouse(tokio::sync::mpsc::UnboundedSender<String>);
//! impl InboxHandler for Warehouse {
//!     async fn handle(&self, m: &Message) -> Result<(), BoxError> {
//!         Ok(self.0.send(m.stream.clone())?)
//!     }
//! }
//! let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
//! let config = InboxConfig::new(ConsumerSpec::new("warehouse", "ordering", "ordering.order.>"));
//! let _inbox = Inbox::new(bus.clone(), Warehouse(tx), MemoryCheckpoints::new(), config).spawn();
//!
//! let placed = NewEvent::json("OrderPlaced", &serde_json::json!({"total": 5})).unwrap();
//! let private = NewEvent::json("NoteAdded", &serde_json::json!({})).unwrap();
//! let order = StreamId::new("order-1").unwrap();
//! ordering.append(&order, ExpectedVersion::NoStream, vec![placed, private]).await.unwrap();
//! assert_eq!(rx.recv().await.unwrap(), "order-1");
//! # });
//! ```

mod bus;
mod command;
mod error;
mod inbox;
mod memory;
mod message;
mod public;
mod relay;
pub mod wire;

pub use bus::{subject_matches, Acker, Bus, Confirmation, Consumer, ConsumerSpec, Delivery};
pub use command::command_message;
pub use error::{BusError, MessageError};
pub use inbox::{
    BatchFailed, Inbox, InboxConfig, InboxHandle, InboxHandler, InboxState, InboxStatus, Poison,
};
pub use memory::MemoryBus;
pub use message::{Message, MessageKind, JSON};
pub use public::PublicEvents;
pub use relay::Relay;
