//! The fulfilment saga as a [`ProcessManager`]: pure logic, one instance per order.

use std::time::Duration;

use tessera_core::process::{Correlation, Input, Instance, ProcessManager, Reaction, Status};
use tessera_core::EventFilter;

use super::dispatch::action_of;
use super::{Action, OrderState, SagaCommand, SagaEvent, SagaTimeout};
use crate::ordering::RejectReason;
use crate::payment::DeclineReason;
use uuid::Uuid;

/// The fulfilment saga.
#[derive(Debug, Clone)]
pub struct Fulfilment {
    /// How long a payment may go unanswered.
    pub payment_timeout: Duration,
}

/// The deadline key of the payment.
const PAYMENT: &str = "payment";

impl Fulfilment {
    fn command(state: &OrderState, order_id: Uuid, action: Action) -> SagaCommand {
        SagaCommand {
            order_id,
            correlation_id: state.correlation_id,
            action,
        }
    }

    fn on_event(&self, saga: &Instance<Self>, event: &SagaEvent) -> Reaction<Self> {
        let s = &saga.state;
        let cmd = |order_id, action| Self::command(s, order_id, action);
        match event {
            SagaEvent::OrderPlaced {
                order_id,
                lines,
                total_cents,
                correlation_id,
            } => {
                let state = OrderState {
                    order_id: Some(*order_id),
                    lines: lines.clone(),
                    total_cents: *total_cents,
                    correlation_id: *correlation_id,
                };
                let Some(first) = lines.first() else {
                    return Reaction::new().state(state).complete();
                };
                let reserve = Action::Reserve {
                    sku: first.sku.clone(),
                    quantity: first.quantity,
                };
                let first = Self::command(&state, *order_id, reserve);
                Reaction::new().state(state).issue(first)
            }
            SagaEvent::StockReserved { sku, order_id } => {
                let undo = Some(cmd(*order_id, Action::Release { sku: sku.clone() }));
                if saga.status != Status::Pending {
                    // Reserved after the saga gave up (should not happen): give it back.
                    return Reaction::new()
                        .issue(cmd(*order_id, Action::Release { sku: sku.clone() }));
                }
                let done = Reaction::new().completed_step(format!("reserve {sku}"), undo);
                let next = s
                    .lines
                    .iter()
                    .position(|l| &l.sku == sku)
                    .and_then(|i| s.lines.get(i + 1));
                match next {
                    Some(line) => done.issue(cmd(
                        *order_id,
                        Action::Reserve {
                            sku: line.sku.clone(),
                            quantity: line.quantity,
                        },
                    )),
                    None => done
                        .issue(cmd(
                            *order_id,
                            Action::RequestPayment {
                                amount_cents: s.total_cents,
                            },
                        ))
                        .schedule(PAYMENT, self.payment_timeout, SagaTimeout::PaymentDue),
                }
            }
            SagaEvent::ReservationRejected { order_id, .. } => Reaction::new()
                .compensate("out_of_stock")
                .issue(cmd(*order_id, Action::Reject(RejectReason::OutOfStock))),
            SagaEvent::PaymentCaptured { order_id } => Reaction::new()
                .cancel(PAYMENT)
                .completed_step("payment", Some(cmd(*order_id, Action::Refund)))
                .issue(cmd(*order_id, Action::Confirm))
                .complete(),
            SagaEvent::PaymentDeclined { order_id, reason } => {
                let reason = match reason {
                    DeclineReason::Declined => RejectReason::PaymentDeclined,
                    DeclineReason::Timeout => RejectReason::PaymentTimeout,
                };
                Reaction::new()
                    .cancel(PAYMENT)
                    .compensate(reason_text(reason))
                    .issue(cmd(*order_id, Action::Reject(reason)))
            }
            // Refund the payment, then release every line: the steps' compensations.
            SagaEvent::OrderCancelled { .. } => Reaction::new().compensate("cancelled"),
            // The owner's answer that a command failed for good: as a failed dispatch.
            SagaEvent::CommandRejected {
                order_id,
                command,
                reason,
            } => Self::on_failure(s, *order_id, &action_of(command), reason),
        }
    }

    /// The reaction to `action` of `order_id` having failed for good, whether its
    /// dispatch failed (ordering's own commands, or the bus kept failing) or its owner
    /// refused it.
    fn on_failure(
        state: &OrderState,
        order_id: Uuid,
        action: &Action,
        reason: &str,
    ) -> Reaction<Self> {
        let cmd = |action| Self::command(state, order_id, action);
        match action {
            Action::TimeOutPayment => Reaction::new(), // answered first: its event follows
            Action::Reserve { .. } => Reaction::new()
                .compensate(format!("reservation failed: {reason}"))
                .issue(cmd(Action::Reject(RejectReason::OutOfStock))),
            Action::RequestPayment { .. } => Reaction::new()
                .compensate(format!("payment request failed: {reason}"))
                .issue(cmd(Action::Reject(RejectReason::PaymentDeclined))),
            Action::Confirm => Reaction::new().compensate(format!("confirmation failed: {reason}")),
            _ => Reaction::new().fail(format!("{action:?} failed: {reason}")),
        }
    }
}

fn reason_text(reason: RejectReason) -> &'static str {
    match reason {
        RejectReason::OutOfStock => "out_of_stock",
        RejectReason::PaymentDeclined => "payment_declined",
        RejectReason::PaymentTimeout => "payment_timeout",
    }
}

impl ProcessManager for Fulfilment {
    const NAME: &'static str = "fulfilment";
    type Event = SagaEvent;
    type State = OrderState;
    type Command = SagaCommand;
    type Timeout = SagaTimeout;

    fn filter(&self) -> EventFilter {
        EventFilter::categories(["order", super::INBOX]).with_types([
            "OrderPlaced",
            "OrderCancelled",
            "StockReserved",
            "ReservationRejected",
            "PaymentCaptured",
            "PaymentDeclined",
            crate::commands::REJECTED,
        ])
    }

    fn correlate(&self, event: &SagaEvent) -> Correlation {
        match event {
            SagaEvent::OrderPlaced { order_id, .. } => {
                Correlation::Start(order_id.to_string().into())
            }
            SagaEvent::OrderCancelled { order_id }
            | SagaEvent::StockReserved { order_id, .. }
            | SagaEvent::ReservationRejected { order_id, .. }
            | SagaEvent::PaymentCaptured { order_id }
            | SagaEvent::PaymentDeclined { order_id, .. }
            | SagaEvent::CommandRejected { order_id, .. } => {
                Correlation::Continue(order_id.to_string().into())
            }
        }
    }

    fn react(&self, saga: &Instance<Self>, input: Input<'_, Self>) -> Reaction<Self> {
        let order_id = match (&input, saga.state.order_id) {
            (Input::Event(event), _) => return self.on_event(saga, event),
            (_, Some(order_id)) => order_id,
            (_, None) => return Reaction::new(),
        };
        match input {
            Input::Event(_) => Reaction::new(),
            // Decline it; if the gateway answered meanwhile, the payment refuses that.
            Input::Timeout(SagaTimeout::PaymentDue) => {
                Reaction::new().issue(Self::command(&saga.state, order_id, Action::TimeOutPayment))
            }
            Input::CommandFailed { command, reason } => {
                Self::on_failure(&saga.state, order_id, &command.action, reason)
            }
        }
    }
}
