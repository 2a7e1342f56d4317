//! Given/when/then tests of the order aggregate.

use tessera_core::testkit::AggregateTest;
use uuid::Uuid;

use super::*;

const ID: Uuid = Uuid::from_u128(7);

fn line(sku: &str, quantity: i64, price: i64) -> Line {
    Line {
        sku: sku.into(),
        quantity,
        unit_price_cents: price,
    }
}

fn place(lines: Vec<Line>) -> OrderCommand {
    OrderCommand::Place {
        order_id: ID,
        customer_id: "c".into(),
        lines,
        correlation_id: None,
    }
}

fn placed() -> OrderEvent {
    OrderEvent::Placed {
        order_id: ID,
        customer_id: "c".into(),
        lines: vec![line("a", 2, 150)],
        total_cents: 300,
        correlation_id: None,
    }
}

#[test]
fn placing_prices_the_total() {
    AggregateTest::<Order>::new()
        .when(&place(vec![line("a", 2, 150)]))
        .then_expect_events([placed()]);
}

#[test]
fn placing_checks_lines() {
    AggregateTest::<Order>::new()
        .when(&place(vec![]))
        .then_expect_error_message("an order needs at least one line");
    let e = AggregateTest::<Order>::new()
        .when(&place(vec![line("a", 1, 1), line("b", 0, 1)]))
        .then_expect_error();
    assert_eq!(
        e,
        OrderError::BadLine {
            index: 1,
            reason: "quantity must be at least 1"
        }
    );
    let e = AggregateTest::<Order>::new()
        .when(&place(vec![line("a", i64::MAX, 2)]))
        .then_expect_error();
    assert_eq!(e, OrderError::TotalTooLarge);
    AggregateTest::<Order>::new()
        .given([placed()])
        .when(&place(vec![line("a", 1, 1)]))
        .then_expect_error_message("order already placed");
}

#[test]
fn confirm_reject_and_cancel_follow_the_status() {
    AggregateTest::<Order>::new()
        .given([placed()])
        .when(&OrderCommand::Confirm)
        .then_expect_events([OrderEvent::Confirmed { order_id: ID }]);
    AggregateTest::<Order>::new()
        .given([placed(), OrderEvent::Confirmed { order_id: ID }])
        .when(&OrderCommand::Confirm)
        .then_expect_events([]);
    AggregateTest::<Order>::new()
        .given([placed()])
        .when(&OrderCommand::Reject(RejectReason::OutOfStock))
        .then_expect_events([OrderEvent::Rejected {
            order_id: ID,
            reason: RejectReason::OutOfStock,
        }]);
    AggregateTest::<Order>::new()
        .given([placed()])
        .when(&OrderCommand::Cancel)
        .then_expect_error_message("order is pending and cannot be cancelled");
    AggregateTest::<Order>::new()
        .given([placed(), OrderEvent::Confirmed { order_id: ID }])
        .when(&OrderCommand::Cancel)
        .then_expect_events([OrderEvent::Cancelled { order_id: ID }]);
    AggregateTest::<Order>::new()
        .given([
            placed(),
            OrderEvent::Rejected {
                order_id: ID,
                reason: RejectReason::PaymentDeclined,
            },
        ])
        .when(&OrderCommand::Confirm)
        .then_expect_error_message("order is rejected and cannot be confirmed");
    AggregateTest::<Order>::new()
        .when(&OrderCommand::Confirm)
        .then_expect_error_message("order not found");
}
