//! The payment aggregate: requested, then captured or declined; a capture may be refunded.
//!
//! Both calls to the gateway go the same way: a command records what is asked
//! (`PaymentRequested`, `PaymentRefundRequested`), the payment worker asks the gateway,
//! and a second command records its answer (`PaymentCaptured` or `PaymentDeclined`,
//! `PaymentRefunded`). So the log says a payment was captured or refunded only once the
//! gateway did it.

use serde::{Deserialize, Serialize};
use tessera_core::{Aggregate, DomainEvent};
use uuid::Uuid;

/// Why a payment was declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// The gateway refused it.
    Declined,
    /// No answer came before the deadline.
    Timeout,
}

/// What a payment can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentCommand {
    /// Ask for a payment.
    Request {
        /// The order paid for.
        order_id: Uuid,
        /// How much.
        amount_cents: i64,
    },
    /// The gateway took the money.
    Capture {
        /// The gateway's reference.
        reference: String,
    },
    /// The gateway refused, or the deadline passed.
    Decline(DeclineReason),
    /// Ask for the money back (the payment worker asks the gateway).
    Refund,
    /// The gateway gave `amount_cents` back.
    RecordRefund {
        /// What the gateway gave back.
        amount_cents: i64,
    },
}

/// What happens to a payment. Serde names are the stored event types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentEvent {
    /// A payment was asked for.
    #[serde(rename = "PaymentRequested")]
    Requested {
        /// The order paid for.
        order_id: Uuid,
        /// How much.
        amount_cents: i64,
    },
    /// The money was taken.
    #[serde(rename = "PaymentCaptured")]
    Captured {
        /// The order paid for.
        order_id: Uuid,
        /// How much.
        amount_cents: i64,
        /// The gateway's reference.
        reference: String,
    },
    /// The payment was refused or timed out.
    #[serde(rename = "PaymentDeclined")]
    Declined {
        /// The order paid for.
        order_id: Uuid,
        /// Why.
        reason: DeclineReason,
    },
    /// The money was asked back; the gateway has not answered yet.
    #[serde(rename = "PaymentRefundRequested")]
    RefundRequested {
        /// The order paid for.
        order_id: Uuid,
        /// How much was captured.
        amount_cents: i64,
    },
    /// The gateway gave the money back.
    #[serde(rename = "PaymentRefunded")]
    Refunded {
        /// The order paid for.
        order_id: Uuid,
        /// How much the gateway gave back.
        amount_cents: i64,
    },
}

impl DomainEvent for PaymentEvent {}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Waiting for the gateway.
    Requested,
    /// Money taken.
    Captured,
    /// Refused or timed out.
    Declined,
    /// Money asked back, the gateway not answered yet.
    Refunding,
    /// Money given back.
    Refunded,
}

impl PaymentStatus {
    /// The lower-case name used by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Requested => "requested",
            PaymentStatus::Captured => "captured",
            PaymentStatus::Declined => "declined",
            PaymentStatus::Refunding => "refunding",
            PaymentStatus::Refunded => "refunded",
        }
    }
}

/// Why a payment refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// Any command but `Request` on a payment never requested.
    #[error("payment not found")]
    NotFound,
    /// A negative amount.
    #[error("amount must be at least 0")]
    NegativeAmount,
    /// The transition is not allowed from the current status.
    #[error("payment is {from:?} and cannot be {to}")]
    Transition {
        /// Current status.
        from: PaymentStatus,
        /// Wanted transition.
        to: &'static str,
    },
}

/// A payment's state.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Payment {
    /// The order paid for (`None`: never requested).
    pub order_id: Option<Uuid>,
    /// Status.
    pub status: Option<PaymentStatus>,
    /// How much.
    pub amount_cents: i64,
    /// Why it was declined (`None` unless declined).
    #[serde(default)]
    pub decline_reason: Option<DeclineReason>,
}

impl Aggregate for Payment {
    const CATEGORY: &'static str = "payment";
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentError;
    type Services = ();

    /// Asking for a payment starts its stream: decided without reading it first.
    fn starts_stream(command: &PaymentCommand) -> bool {
        matches!(command, PaymentCommand::Request { .. })
    }

    fn apply(&mut self, event: &PaymentEvent) {
        self.status = Some(match event {
            PaymentEvent::Requested {
                order_id,
                amount_cents,
            } => {
                self.order_id = Some(*order_id);
                self.amount_cents = *amount_cents;
                PaymentStatus::Requested
            }
            PaymentEvent::Captured { .. } => PaymentStatus::Captured,
            PaymentEvent::Declined { reason, .. } => {
                self.decline_reason = Some(*reason);
                PaymentStatus::Declined
            }
            PaymentEvent::RefundRequested { .. } => PaymentStatus::Refunding,
            PaymentEvent::Refunded { .. } => PaymentStatus::Refunded,
        });
    }

    fn decide(&self, command: &PaymentCommand, (): &()) -> Result<Vec<PaymentEvent>, PaymentError> {
        use PaymentStatus::{Captured, Declined, Refunded, Refunding, Requested};
        let (Some(order_id), Some(status)) = (self.order_id, self.status) else {
            return match command {
                PaymentCommand::Request {
                    order_id,
                    amount_cents,
                } if *amount_cents >= 0 => Ok(vec![PaymentEvent::Requested {
                    order_id: *order_id,
                    amount_cents: *amount_cents,
                }]),
                PaymentCommand::Request { .. } => Err(PaymentError::NegativeAmount),
                _ => Err(PaymentError::NotFound),
            };
        };
        let amount_cents = self.amount_cents;
        let refuse = |to| Err(PaymentError::Transition { from: status, to });
        match (command, status) {
            (PaymentCommand::Request { .. }, _) => Ok(vec![]),
            (PaymentCommand::Capture { reference }, Requested) => {
                Ok(vec![PaymentEvent::Captured {
                    order_id,
                    amount_cents,
                    reference: reference.clone(),
                }])
            }
            (PaymentCommand::Capture { .. }, Captured | Refunding | Refunded) => Ok(vec![]),
            (PaymentCommand::Capture { .. }, Declined) => refuse("captured"),
            (PaymentCommand::Decline(reason), Requested) => Ok(vec![PaymentEvent::Declined {
                order_id,
                reason: *reason,
            }]),
            (PaymentCommand::Decline(_), Declined) => Ok(vec![]),
            (PaymentCommand::Decline(_), _) => refuse("declined"),
            (PaymentCommand::Refund, Captured) => Ok(vec![PaymentEvent::RefundRequested {
                order_id,
                amount_cents,
            }]),
            (PaymentCommand::Refund, Refunding | Refunded) => Ok(vec![]),
            (PaymentCommand::Refund, _) => refuse("refunded"),
            (PaymentCommand::RecordRefund { amount_cents }, _) if *amount_cents < 0 => {
                Err(PaymentError::NegativeAmount)
            }
            (PaymentCommand::RecordRefund { amount_cents }, Refunding) => {
                Ok(vec![PaymentEvent::Refunded {
                    order_id,
                    amount_cents: *amount_cents,
                }])
            }
            (PaymentCommand::RecordRefund { .. }, Refunded) => Ok(vec![]),
            (PaymentCommand::RecordRefund { .. }, _) => refuse("refunded"),
        }
    }
}
