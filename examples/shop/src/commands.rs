//! Commands between contexts: what the fulfilment saga asks inventory and payment to do,
//! as command messages on the bus, and how their owners handle them.
//!
//! The saga (ordering) sends each [`RemoteCommand`] as a
//! [`command_message`] to subject
//! `{owner}.commands.{name}`, with the idempotency key of the command it issued. The
//! owner reads its durable queue with an [`Inbox`](tessera_projections::integration::Inbox)
//! whose handler, [`CommandInbox`], runs each command through the owner's command
//! handler with that key, so a command delivered twice lands once. The owner answers
//! with events only: what the command recorded (`StockReserved`, `PaymentRequested`,
//! …), or, when the aggregate refuses it, a [`CommandRejected`] event in stream
//! `rejection-{order_id}` of its own log, which its relay publishes beside its other
//! outcomes and the ordering inbox hands to the saga.
//!
//! All-in-one, the owners run in the saga's process, and the saga's dispatcher waits
//! until the owner handled the command ([`Handled`]): the in-memory bus forgets its
//! messages when the process ends, so only the owner's write makes a dispatched command
//! durable. Split into services on a broker, the broker's confirmation does.

use serde::{Deserialize, Serialize};
use tessera_core::{Aggregate, BoxError};
use tessera_projections::integration::{command_message, Message};
use uuid::Uuid;

use crate::inventory::{Product, ProductCommand};
use crate::payment::{DeclineReason, Payment, PaymentCommand};

mod handled;
mod inbox;

pub use handled::Handled;
pub use inbox::{command_consumer, CommandInbox, CommandRejected, REJECTED, REJECTION};

/// A command the saga sends to another context. Its name (the variant) is the
/// message's name, its fields the message's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", content = "payload")]
pub enum RemoteCommand {
    /// Inventory: hold `quantity` of `sku` for the order.
    Reserve {
        /// The order.
        order_id: Uuid,
        /// The product.
        sku: String,
        /// How many.
        quantity: i64,
    },
    /// Inventory: give the order's hold on `sku` back.
    Release {
        /// The order.
        order_id: Uuid,
        /// The product.
        sku: String,
    },
    /// Payment: ask for the order's total.
    RequestPayment {
        /// The order.
        order_id: Uuid,
        /// How much.
        amount_cents: i64,
    },
    /// Payment: no answer in time; decline it.
    TimeOutPayment {
        /// The order.
        order_id: Uuid,
    },
    /// Payment: give the money back.
    Refund {
        /// The order.
        order_id: Uuid,
    },
}

impl RemoteCommand {
    /// The context that owns it: `inventory` or `payment`.
    pub fn target(&self) -> &'static str {
        match self {
            RemoteCommand::Reserve { .. } | RemoteCommand::Release { .. } => Product::CONTEXT,
            _ => Payment::CONTEXT,
        }
    }

    /// The order it is about.
    pub fn order_id(&self) -> Uuid {
        match self {
            RemoteCommand::Reserve { order_id, .. }
            | RemoteCommand::Release { order_id, .. }
            | RemoteCommand::RequestPayment { order_id, .. }
            | RemoteCommand::TimeOutPayment { order_id }
            | RemoteCommand::Refund { order_id } => *order_id,
        }
    }

    /// The command message from `ordering` to its owner, carrying `idempotency_key`.
    pub fn message(
        &self,
        idempotency_key: &str,
        correlation_id: Option<Uuid>,
    ) -> Result<Message, BoxError> {
        let serde_json::Value::Object(mut tagged) = serde_json::to_value(self)? else {
            return Err("a remote command serializes to an object".into());
        };
        let name = tagged.remove("name").unwrap_or_default();
        let payload = tagged.remove("payload").unwrap_or_default();
        let name = name.as_str().unwrap_or_default();
        let target = self.target();
        command_message(
            "ordering",
            target,
            name,
            idempotency_key,
            &payload,
            correlation_id,
        )
    }

    /// The command `message` carries.
    pub fn from_message(message: &Message) -> Result<Self, BoxError> {
        let payload: serde_json::Value = message.decode()?;
        let tagged = serde_json::json!({ "name": message.name, "payload": payload });
        serde_json::from_value(tagged)
            .map_err(|e| format!("command {} is not a shop command: {e}", message.name).into())
    }
}

/// An aggregate that takes [`RemoteCommand`]s: which of its instances and commands each
/// becomes.
pub trait Owner: Aggregate {
    /// The owning context (its bus context and log).
    const CONTEXT: &'static str;

    /// The aggregate id and command `command` comes to; `None`: not this context's.
    fn route(command: &RemoteCommand) -> Option<(String, Self::Command)>;
}

impl Owner for Product {
    const CONTEXT: &'static str = "inventory";

    fn route(command: &RemoteCommand) -> Option<(String, ProductCommand)> {
        match command {
            RemoteCommand::Reserve {
                order_id,
                sku,
                quantity,
            } => Some((
                sku.clone(),
                ProductCommand::Reserve {
                    order_id: *order_id,
                    quantity: *quantity,
                },
            )),
            RemoteCommand::Release { order_id, sku } => Some((
                sku.clone(),
                ProductCommand::Release {
                    order_id: *order_id,
                },
            )),
            _ => None,
        }
    }
}

impl Owner for Payment {
    const CONTEXT: &'static str = "payment";

    fn route(command: &RemoteCommand) -> Option<(String, PaymentCommand)> {
        let order = command.order_id().to_string();
        match command {
            RemoteCommand::RequestPayment {
                order_id,
                amount_cents,
            } => Some((
                order,
                PaymentCommand::Request {
                    order_id: *order_id,
                    amount_cents: *amount_cents,
                },
            )),
            RemoteCommand::TimeOutPayment { .. } => {
                Some((order, PaymentCommand::Decline(DeclineReason::Timeout)))
            }
            RemoteCommand::Refund { .. } => Some((order, PaymentCommand::Refund)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
