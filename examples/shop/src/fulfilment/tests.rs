//! Given/when/then tests of the saga with the core `ProcessTest` kit.

use std::time::Duration;

use tessera_core::process::{ProcessTest, Status};
use uuid::Uuid;

use super::*;
use crate::ordering::{Line, RejectReason};
use crate::payment::DeclineReason;

const O: Uuid = Uuid::from_u128(42);
const TIMEOUT: Duration = Duration::from_secs(30);

fn saga() -> ProcessTest<Fulfilment> {
    ProcessTest::new(Fulfilment {
        payment_timeout: TIMEOUT,
    })
}

fn cmd(action: Action) -> SagaCommand {
    SagaCommand {
        order_id: O,
        correlation_id: None,
        action,
    }
}

fn placed() -> SagaEvent {
    let line = |sku: &str, quantity| Line {
        sku: sku.into(),
        quantity,
        unit_price_cents: 100,
    };
    SagaEvent::OrderPlaced {
        order_id: O,
        lines: vec![line("a", 1), line("b", 2)],
        total_cents: 300,
        correlation_id: None,
    }
}

fn reserved(sku: &str) -> SagaEvent {
    SagaEvent::StockReserved {
        sku: sku.into(),
        order_id: O,
    }
}

#[test]
fn reserves_line_by_line_then_charges_then_confirms() {
    saga()
        .when(placed())
        .then_commands([cmd(Action::Reserve {
            sku: "a".into(),
            quantity: 1,
        })])
        .then_status(Status::Pending);
    saga()
        .given([placed()])
        .when(reserved("a"))
        .then_commands([cmd(Action::Reserve {
            sku: "b".into(),
            quantity: 2,
        })]);
    saga()
        .given([placed(), reserved("a")])
        .when(reserved("b"))
        .then_commands([cmd(Action::RequestPayment { amount_cents: 300 })])
        .then_scheduled([("payment", TIMEOUT)]);
    saga()
        .given([placed(), reserved("a"), reserved("b")])
        .when(SagaEvent::PaymentCaptured { order_id: O })
        .then_commands([cmd(Action::Confirm)])
        .then_cancelled(["payment"])
        .then_status(Status::Completed);
}

#[test]
fn too_little_stock_releases_what_was_held_and_rejects() {
    saga()
        .given([placed(), reserved("a")])
        .when(SagaEvent::ReservationRejected {
            sku: "b".into(),
            order_id: O,
        })
        .then_commands([
            cmd(Action::Release { sku: "a".into() }),
            cmd(Action::Reject(RejectReason::OutOfStock)),
        ])
        .then_status(Status::Compensating)
        .dispatched()
        .then_status(Status::Completed)
        .then_reason("out_of_stock");
}

#[test]
fn a_decline_or_a_timeout_releases_in_reverse_and_rejects() {
    let release = |sku: &str| cmd(Action::Release { sku: sku.into() });
    saga()
        .given([placed(), reserved("a"), reserved("b")])
        .when(SagaEvent::PaymentDeclined {
            order_id: O,
            reason: DeclineReason::Declined,
        })
        .then_commands([
            release("b"),
            release("a"),
            cmd(Action::Reject(RejectReason::PaymentDeclined)),
        ]);
    // The deadline declines the payment; the decline then compensates.
    saga()
        .given([placed(), reserved("a"), reserved("b")])
        .when_timeout(O.to_string(), SagaTimeout::PaymentDue)
        .then_commands([cmd(Action::TimeOutPayment)]);
    saga()
        .given([placed(), reserved("a"), reserved("b")])
        .when(SagaEvent::PaymentDeclined {
            order_id: O,
            reason: DeclineReason::Timeout,
        })
        .then_commands([
            release("b"),
            release("a"),
            cmd(Action::Reject(RejectReason::PaymentTimeout)),
        ])
        .dispatched()
        .then_reason("payment_timeout");
}

#[test]
fn a_cancelled_order_is_refunded_then_released() {
    saga()
        .given([
            placed(),
            reserved("a"),
            reserved("b"),
            SagaEvent::PaymentCaptured { order_id: O },
        ])
        .when(SagaEvent::OrderCancelled { order_id: O })
        .then_commands([
            cmd(Action::Refund),
            cmd(Action::Release { sku: "b".into() }),
            cmd(Action::Release { sku: "a".into() }),
        ])
        .then_status(Status::Compensating)
        .dispatched()
        .then_status(Status::Completed)
        .then_reason("cancelled");
}

fn refused(command: crate::commands::RemoteCommand) -> SagaEvent {
    SagaEvent::CommandRejected {
        order_id: O,
        command,
        reason: "product not found".into(),
    }
}

#[test]
fn an_owner_refusing_a_command_is_read_as_its_failure() {
    use crate::commands::RemoteCommand;
    // A line refused: release what was held and reject, as a failed dispatch did.
    saga()
        .given([placed(), reserved("a")])
        .when(refused(RemoteCommand::Reserve {
            order_id: O,
            sku: "b".into(),
            quantity: 2,
        }))
        .then_commands([
            cmd(Action::Release { sku: "a".into() }),
            cmd(Action::Reject(RejectReason::OutOfStock)),
        ])
        .dispatched()
        .then_status(Status::Completed)
        .then_reason("reservation failed: product not found");
    saga()
        .given([placed(), reserved("a"), reserved("b")])
        .when(refused(RemoteCommand::RequestPayment {
            order_id: O,
            amount_cents: 300,
        }))
        .then_commands([
            cmd(Action::Release { sku: "b".into() }),
            cmd(Action::Release { sku: "a".into() }),
            cmd(Action::Reject(RejectReason::PaymentDeclined)),
        ]);
    // A timeout refused because the payment was answered first: its answer follows.
    saga()
        .given([placed(), reserved("a"), reserved("b")])
        .when(refused(RemoteCommand::TimeOutPayment { order_id: O }))
        .then_commands([])
        .then_status(Status::Pending);
}
