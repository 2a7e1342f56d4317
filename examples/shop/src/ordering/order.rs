//! The order aggregate: placed, then confirmed, rejected or cancelled.

use serde::{Deserialize, Serialize};
use tessera_core::{Aggregate, DomainEvent};
use uuid::Uuid;

/// One line of an order, priced when the order was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Line {
    /// The product.
    pub sku: String,
    /// How many (at least 1).
    pub quantity: i64,
    /// Unit price when the order was placed.
    pub unit_price_cents: i64,
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed; the fulfilment saga is working on it.
    Pending,
    /// Stock reserved and payment captured.
    Confirmed,
    /// Refused; see the reason.
    Rejected,
    /// Cancelled after confirmation; payment refunded, stock released.
    Cancelled,
}

impl OrderStatus {
    /// The lower-case name used by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

/// Why an order was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// A line asked for more than was available.
    OutOfStock,
    /// The payment gateway declined the payment.
    PaymentDeclined,
    /// No payment answer came before the deadline.
    PaymentTimeout,
}

/// What an order can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    /// Place a new order.
    Place {
        /// The new order's id (the id of its stream too).
        order_id: Uuid,
        /// Who orders.
        customer_id: String,
        /// Priced lines, one per sku (at least one).
        lines: Vec<Line>,
        /// The placing request's correlation id, carried by the saga's commands.
        correlation_id: Option<Uuid>,
    },
    /// The saga reserved stock and captured payment.
    Confirm,
    /// The saga gave up on the order.
    Reject(RejectReason),
    /// The customer cancels a confirmed order.
    Cancel,
}

/// What happens to an order. Serde names are the stored event types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderEvent {
    /// An order was placed.
    #[serde(rename = "OrderPlaced")]
    Placed {
        /// The order id (also in the stream id).
        order_id: Uuid,
        /// Who ordered.
        customer_id: String,
        /// Priced lines.
        lines: Vec<Line>,
        /// Sum of the lines.
        total_cents: i64,
        /// The placing request's correlation id.
        #[serde(default)]
        correlation_id: Option<Uuid>,
    },
    /// Stock reserved and payment captured.
    #[serde(rename = "OrderConfirmed")]
    Confirmed {
        /// The order.
        order_id: Uuid,
    },
    /// The order was refused.
    #[serde(rename = "OrderRejected")]
    Rejected {
        /// The order.
        order_id: Uuid,
        /// Why.
        reason: RejectReason,
    },
    /// A confirmed order was cancelled.
    #[serde(rename = "OrderCancelled")]
    Cancelled {
        /// The order.
        order_id: Uuid,
    },
}

impl DomainEvent for OrderEvent {}

/// Why an order refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// `Place` on an order that exists.
    #[error("order already placed")]
    AlreadyPlaced,
    /// Any command but `Place` on an order that does not exist.
    #[error("order not found")]
    NotFound,
    /// `Place` without lines.
    #[error("an order needs at least one line")]
    NoLines,
    /// A line with a quantity below 1 or a negative price.
    #[error("line {index} is invalid: {reason}")]
    BadLine {
        /// Index of the line.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The total does not fit.
    #[error("order total is too large")]
    TotalTooLarge,
    /// The transition is not allowed from the current status.
    #[error("order is {from} and cannot be {to}")]
    Transition {
        /// Current status.
        from: &'static str,
        /// Wanted transition.
        to: &'static str,
    },
}

/// An order's state.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Order {
    /// The order id (`None`: not placed).
    pub id: Option<Uuid>,
    /// Status (`None`: not placed).
    pub status: Option<OrderStatus>,
    /// Who ordered.
    pub customer_id: String,
    /// Priced lines.
    pub lines: Vec<Line>,
    /// Sum of the lines.
    pub total_cents: i64,
}

/// The total of `lines`, checking each line.
pub fn total_of(lines: &[Line]) -> Result<i64, OrderError> {
    let mut total = 0i64;
    for (index, line) in lines.iter().enumerate() {
        if line.quantity < 1 {
            return Err(OrderError::BadLine {
                index,
                reason: "quantity must be at least 1",
            });
        }
        if line.unit_price_cents < 0 {
            return Err(OrderError::BadLine {
                index,
                reason: "price is negative",
            });
        }
        total = line
            .quantity
            .checked_mul(line.unit_price_cents)
            .and_then(|l| total.checked_add(l))
            .ok_or(OrderError::TotalTooLarge)?;
    }
    Ok(total)
}

impl Aggregate for Order {
    const CATEGORY: &'static str = "order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
    type Services = ();

    /// Placing starts the order's stream: decided without reading it first.
    fn starts_stream(command: &OrderCommand) -> bool {
        matches!(command, OrderCommand::Place { .. })
    }

    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::Placed {
                order_id,
                customer_id,
                lines,
                total_cents,
                ..
            } => {
                self.id = Some(*order_id);
                self.status = Some(OrderStatus::Pending);
                self.customer_id.clone_from(customer_id);
                self.lines.clone_from(lines);
                self.total_cents = *total_cents;
            }
            OrderEvent::Confirmed { .. } => self.status = Some(OrderStatus::Confirmed),
            OrderEvent::Rejected { .. } => self.status = Some(OrderStatus::Rejected),
            OrderEvent::Cancelled { .. } => self.status = Some(OrderStatus::Cancelled),
        }
    }

    fn decide(&self, command: &OrderCommand, (): &()) -> Result<Vec<OrderEvent>, OrderError> {
        use OrderStatus::{Cancelled, Confirmed, Pending, Rejected};
        let Some(order_id) = self.id else {
            return match command {
                OrderCommand::Place {
                    order_id,
                    customer_id,
                    lines,
                    correlation_id,
                } => {
                    if lines.is_empty() {
                        return Err(OrderError::NoLines);
                    }
                    Ok(vec![OrderEvent::Placed {
                        order_id: *order_id,
                        customer_id: customer_id.clone(),
                        lines: lines.clone(),
                        total_cents: total_of(lines)?,
                        correlation_id: *correlation_id,
                    }])
                }
                _ => Err(OrderError::NotFound),
            };
        };
        let status = self.status.unwrap_or(Pending);
        let refuse = |to| {
            Err(OrderError::Transition {
                from: status.as_str(),
                to,
            })
        };
        match (command, status) {
            (OrderCommand::Place { .. }, _) => Err(OrderError::AlreadyPlaced),
            (OrderCommand::Confirm, Pending) => Ok(vec![OrderEvent::Confirmed { order_id }]),
            (OrderCommand::Confirm, Confirmed) => Ok(vec![]),
            (OrderCommand::Confirm, _) => refuse("confirmed"),
            (OrderCommand::Reject(reason), Pending) => Ok(vec![OrderEvent::Rejected {
                order_id,
                reason: *reason,
            }]),
            (OrderCommand::Reject(_), Rejected) => Ok(vec![]),
            (OrderCommand::Reject(_), _) => refuse("rejected"),
            (OrderCommand::Cancel, Confirmed) => Ok(vec![OrderEvent::Cancelled { order_id }]),
            (OrderCommand::Cancel, Cancelled) => Ok(vec![]),
            (OrderCommand::Cancel, _) => refuse("cancelled"),
        }
    }
}
