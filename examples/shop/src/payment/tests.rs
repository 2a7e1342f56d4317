//! Given/when/then tests of the payment aggregate.

use tessera_core::testkit::AggregateTest;
use uuid::Uuid;

use super::*;

const O: Uuid = Uuid::from_u128(9);

fn requested() -> PaymentEvent {
    PaymentEvent::Requested {
        order_id: O,
        amount_cents: 500,
    }
}

fn captured() -> PaymentEvent {
    PaymentEvent::Captured {
        order_id: O,
        amount_cents: 500,
        reference: "r".into(),
    }
}

#[test]
fn a_payment_is_answered_once() {
    AggregateTest::<Payment>::new()
        .when(&PaymentCommand::Request {
            order_id: O,
            amount_cents: 500,
        })
        .then_expect_events([requested()]);
    AggregateTest::<Payment>::new()
        .given([requested()])
        .when(&PaymentCommand::Capture {
            reference: "r".into(),
        })
        .then_expect_events([captured()]);
    // The deadline lost the race: declining a captured payment is refused.
    AggregateTest::<Payment>::new()
        .given([requested(), captured()])
        .when(&PaymentCommand::Decline(DeclineReason::Timeout))
        .then_expect_error_message("payment is Captured and cannot be declined");
    // The gateway lost the race: capturing a timed-out payment is refused.
    let timed_out = PaymentEvent::Declined {
        order_id: O,
        reason: DeclineReason::Timeout,
    };
    AggregateTest::<Payment>::new()
        .given([requested(), timed_out])
        .when(&PaymentCommand::Capture {
            reference: "r".into(),
        })
        .then_expect_error_message("payment is Declined and cannot be captured");
}

#[test]
fn only_a_capture_is_refunded() {
    AggregateTest::<Payment>::new()
        .given([requested(), captured()])
        .when(&PaymentCommand::Refund)
        .then_expect_events([PaymentEvent::Refunded {
            order_id: O,
            amount_cents: 500,
        }]);
    AggregateTest::<Payment>::new()
        .given([requested()])
        .when(&PaymentCommand::Refund)
        .then_expect_error_message("payment is Requested and cannot be refunded");
    AggregateTest::<Payment>::new()
        .when(&PaymentCommand::Refund)
        .then_expect_error_message("payment not found");
    AggregateTest::<Payment>::new()
        .when(&PaymentCommand::Request {
            order_id: O,
            amount_cents: -1,
        })
        .then_expect_error_message("amount must be at least 0");
}
