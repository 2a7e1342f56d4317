//! What the saga reads, issues and remembers: its events, commands, timeouts and state.

use serde::{Deserialize, Serialize};
use tessera_core::DomainEvent;
use uuid::Uuid;

use crate::commands::RemoteCommand;
use crate::ordering::{Line, RejectReason};
use crate::payment::DeclineReason;

/// The events the saga reads: the ordering log's own, and the inventory and payment
/// events (their outcomes and their refusals of its commands) relayed into its inbox. Variant names are the stored event types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SagaEvent {
    /// An order was placed.
    #[serde(rename = "OrderPlaced")]
    OrderPlaced {
        /// The order.
        order_id: Uuid,
        /// Priced lines.
        lines: Vec<Line>,
        /// Sum of the lines.
        total_cents: i64,
        /// The placing request's correlation id.
        #[serde(default)]
        correlation_id: Option<Uuid>,
    },
    /// A confirmed order was cancelled.
    #[serde(rename = "OrderCancelled")]
    OrderCancelled {
        /// The order.
        order_id: Uuid,
    },
    /// A line's stock was reserved.
    #[serde(rename = "StockReserved")]
    StockReserved {
        /// The product.
        sku: String,
        /// The order.
        order_id: Uuid,
    },
    /// A line asked for more than was available.
    #[serde(rename = "ReservationRejected")]
    ReservationRejected {
        /// The product.
        sku: String,
        /// The order.
        order_id: Uuid,
    },
    /// The payment was captured.
    #[serde(rename = "PaymentCaptured")]
    PaymentCaptured {
        /// The order.
        order_id: Uuid,
    },
    /// The payment was declined or timed out.
    #[serde(rename = "PaymentDeclined")]
    PaymentDeclined {
        /// The order.
        order_id: Uuid,
        /// Why.
        reason: DeclineReason,
    },
    /// Inventory or payment refused a command of the saga (the owner's answer instead
    /// of the command's events).
    #[serde(rename = "CommandRejected")]
    CommandRejected {
        /// The order.
        order_id: Uuid,
        /// The command refused.
        command: RemoteCommand,
        /// Why, as text.
        reason: String,
    },
}

impl DomainEvent for SagaEvent {}

/// What the saga asks a context to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Inventory: hold stock for the order.
    Reserve {
        /// The product.
        sku: String,
        /// How many.
        quantity: i64,
    },
    /// Inventory: give the order's hold back.
    Release {
        /// The product.
        sku: String,
    },
    /// Payment: ask for the order's total.
    RequestPayment {
        /// How much.
        amount_cents: i64,
    },
    /// Payment: no answer in time; decline it (refused if it was answered meanwhile).
    TimeOutPayment,
    /// Payment: give the money back. Records the request; the payment worker asks the
    /// gateway and records the refund once it answered.
    Refund,
    /// Ordering: confirm.
    Confirm,
    /// Ordering: reject.
    Reject(RejectReason),
}

/// A command of the saga: an action on the order, with the order's correlation id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaCommand {
    /// The order.
    pub order_id: Uuid,
    /// The placing request's correlation id, put on the command's events.
    pub correlation_id: Option<Uuid>,
    /// What to do.
    pub action: Action,
}

/// What a fired deadline delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SagaTimeout {
    /// The payment was not answered in time.
    PaymentDue,
}

/// What an instance remembers of its order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderState {
    /// The order.
    pub order_id: Option<Uuid>,
    /// Its lines, reserved in this order.
    pub lines: Vec<Line>,
    /// Its total.
    pub total_cents: i64,
    /// Its correlation id.
    pub correlation_id: Option<Uuid>,
}
