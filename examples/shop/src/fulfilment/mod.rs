//! The fulfilment saga: order placed → reserve stock (line by line) → charge payment →
//! confirm.
//!
//! Too little stock rejects the order (`out_of_stock`) after releasing the lines already
//! held; a declined payment releases the stock and rejects it (`payment_declined`); no
//! payment answer before the deadline does the same (`payment_timeout`); a confirmed
//! order cancelled is refunded and its stock released. Every completed step records its
//! compensation, which the runtime issues in reverse order.
//!
//! The saga is a [`ProcessManager`](tessera_core::process::ProcessManager)
//! ([`Fulfilment`]), run by the process runtime of `tessera-projections` on the
//! ordering log (durable instances, handled-event dedup, outbox with deterministic
//! idempotency keys, deadlines fired once). The inventory and payment events it needs
//! are published by those contexts' relays and reach the ordering log through its
//! inboxes (see [`Flow`] and [`FulfilmentInbox`]); its commands reach inventory and
//! payment as command messages on the bus, sent by the [`ShopDispatcher`] (see
//! [`crate::commands`]), and an owner's refusal of one comes back as an event.

mod dispatch;
pub(crate) mod inbox;
mod messages;
mod process;

pub(crate) use dispatch::show;
pub use dispatch::ShopDispatcher;
pub use inbox::{Flow, FulfilmentInbox, INBOX};
pub use messages::{Action, OrderState, SagaCommand, SagaEvent, SagaTimeout};
pub use process::Fulfilment;

#[cfg(test)]
mod tests;
