//! The fulfilment saga: order placed → reserve stock → charge payment → confirm.
//!
//! Too little stock rejects the order (`out_of_stock`); a declined payment releases the
//! stock and rejects it (`payment_declined`); no payment answer before the deadline does
//! the same (`payment_timeout`); a confirmed order cancelled is refunded and its stock
//! released.
//!
//! The saga keeps no state of its own beyond checkpoints and deadlines: each step loads
//! the order it concerns, and every command it sends is keyed by the triggering event,
//! so a step run twice lands once.

mod deadlines;
mod legs;
mod saga;

pub use deadlines::Deadlines;
pub use legs::{Leg, SagaLeg};
pub use saga::Fulfilment;
