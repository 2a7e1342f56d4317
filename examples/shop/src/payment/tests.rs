//! Given/when/then tests of the payment aggregate, and the worker's refunds.

use std::time::Duration;

use tessera_core::testkit::AggregateTest;
use tessera_core::{CommandHandler, EventReader, MemoryStore, ReadStream, RecordedEvent, StreamId};
use tessera_projections::resilience::{Resilience, ResilienceConfig};
use uuid::Uuid;

use super::*;
use crate::gateway::{Account, Gateway, GatewayConfig};
use tessera_projections::Reaction;

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

fn asked_back() -> PaymentEvent {
    PaymentEvent::RefundRequested {
        order_id: O,
        amount_cents: 500,
    }
}

#[test]
fn a_refund_is_asked_then_recorded_as_the_gateway_answered() {
    AggregateTest::<Payment>::new()
        .given([requested(), captured()])
        .when(&PaymentCommand::Refund)
        .then_expect_events([asked_back()]);
    AggregateTest::<Payment>::new()
        .given([requested(), captured(), asked_back()])
        .when(&PaymentCommand::Refund)
        .then_expect_events([]);
    AggregateTest::<Payment>::new()
        .given([requested(), captured(), asked_back()])
        .when(&PaymentCommand::RecordRefund { amount_cents: 500 })
        .then_expect_events([PaymentEvent::Refunded {
            order_id: O,
            amount_cents: 500,
        }]);
    // Only a refund asked for is recorded.
    AggregateTest::<Payment>::new()
        .given([requested(), captured()])
        .when(&PaymentCommand::RecordRefund { amount_cents: 500 })
        .then_expect_error_message("payment is Captured and cannot be refunded");
}

#[test]
fn only_a_capture_is_refunded() {
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

type Payments = CommandHandler<Payment, MemoryStore>;

fn stream() -> StreamId {
    StreamId::from_parts("payment", O.to_string()).expect("stream id")
}

/// A payment of 500 captured and asked back, on the memory store: its store, its
/// handler and the recorded `PaymentRefundRequested`.
async fn refund_requested() -> (MemoryStore, Payments, RecordedEvent) {
    let store = MemoryStore::new();
    let payments = CommandHandler::new(store.clone(), ());
    let id = O.to_string();
    let request = PaymentCommand::Request {
        order_id: O,
        amount_cents: 500,
    };
    let capture = PaymentCommand::Capture {
        reference: "r".into(),
    };
    for command in [request, capture, PaymentCommand::Refund] {
        payments.handle(&id, &command).await.expect("command");
    }
    let events = store
        .read_stream(&stream(), ReadStream::forward())
        .await
        .expect("read");
    let asked = events.last().cloned().expect("events");
    assert_eq!(asked.event_type, "PaymentRefundRequested");
    (store, payments, asked)
}

fn worker(payments: &Payments, gateway: &Gateway) -> PaymentProcessor<MemoryStore> {
    let mut config = ResilienceConfig::default();
    config.retry.max_attempts = 2;
    config.retry.min_delay = Duration::from_millis(1);
    PaymentProcessor::new(payments.clone(), gateway.clone(), Resilience::new(config))
}

fn gateway(failure_rate: f64) -> Gateway {
    Gateway::new(GatewayConfig {
        latency: Duration::ZERO,
        failure_rate,
        ..GatewayConfig::default()
    })
}

/// The payment's status and how many `PaymentRefunded` its stream holds.
async fn refunds_recorded(store: &MemoryStore, payments: &Payments) -> (PaymentStatus, usize) {
    let status = payments
        .load(&O.to_string())
        .await
        .expect("load")
        .state
        .status;
    let events = store
        .read_stream(&stream(), ReadStream::forward())
        .await
        .expect("read");
    let refunded = events
        .iter()
        .filter(|e| e.event_type == "PaymentRefunded")
        .count();
    (status.expect("requested"), refunded)
}

#[tokio::test]
async fn a_refund_asked_back_is_refunded_once_at_the_gateway_then_recorded() {
    let (store, payments, asked) = refund_requested().await;
    let gateway = gateway(0.0);
    assert!(gateway.charge(O, 500).await.is_ok());
    let worker = worker(&payments, &gateway);
    // Delivered twice at once (a redelivery racing the first), then once more.
    let (a, b) = tokio::join!(worker.react(&asked), worker.react(&asked));
    assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
    assert!(worker.react(&asked).await.is_ok());
    let account = Account {
        captured_cents: 500,
        refunded_cents: 500,
    };
    assert_eq!(gateway.account(O), account);
    assert_eq!(
        refunds_recorded(&store, &payments).await,
        (PaymentStatus::Refunded, 1)
    );
}

#[tokio::test]
async fn an_unanswered_refund_records_nothing_and_fails_for_a_retry() {
    let (store, payments, asked) = refund_requested().await;
    let worker = worker(&payments, &gateway(1.0));
    assert!(
        worker.react(&asked).await.is_err(),
        "the runner delivers it again"
    );
    assert_eq!(
        refunds_recorded(&store, &payments).await,
        (PaymentStatus::Refunding, 0)
    );
}
