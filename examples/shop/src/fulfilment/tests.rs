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

/// A message of inventory's product stream `product-p`, version `version`, with
/// `payload`.
fn from_product(
    version: u64,
    payload: serde_json::Value,
) -> tessera_projections::integration::Message {
    use tessera_projections::integration::{Message, MessageKind, JSON};
    Message {
        id: Uuid::from_u128(1_000 + u128::from(version)),
        kind: MessageKind::Event,
        name: "StockReserved".to_owned(),
        schema_version: 1,
        source: "inventory".to_owned(),
        subject: "inventory.product.StockReserved".to_owned(),
        stream: "product-p".to_owned(),
        version,
        previous: version.checked_sub(1),
        position: tessera_core::Position::new(version + 1, 0),
        correlation_id: None,
        causation_id: None,
        idempotency_key: None,
        headers: std::collections::BTreeMap::new(),
        content_type: JSON.to_owned(),
        payload: serde_json::to_vec(&payload).expect("json").into(),
    }
}

/// The event types in stream `inbox-{order}` of `store`.
async fn inbox_of(store: &tessera_core::MemoryStore, order: &str) -> Vec<String> {
    use tessera_core::{EventReader, ReadStream, StreamId};
    let stream = StreamId::from_parts(INBOX, order).expect("stream id");
    store
        .read_stream(&stream, ReadStream::forward())
        .await
        .unwrap_or_default()
        .iter()
        .map(|e| {
            e.data.to_value().expect("json")["sku"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

/// A run of one product's reservations goes to its orders' inbox streams, each order's
/// in the run's order; an unreadable message stops the run there, saying how many
/// before it were written; the run handed again writes nothing twice.
#[tokio::test]
async fn a_run_of_one_products_messages_lands_in_each_orders_inbox_once() {
    use tessera_projections::integration::{BatchFailed, InboxHandler};
    let store = tessera_core::MemoryStore::new();
    let inbox = FulfilmentInbox::new(store.clone());
    let run = [
        from_product(0, serde_json::json!({"order_id": "a", "sku": "x"})),
        from_product(1, serde_json::json!({"order_id": "b", "sku": "x"})),
        from_product(2, serde_json::json!({"order_id": "a", "sku": "y"})),
        from_product(3, serde_json::json!({"sku": "x"})),
        from_product(4, serde_json::json!({"order_id": "c", "sku": "x"})),
    ];
    let Err(BatchFailed { handled, error }) = inbox.handle_batch(&run).await else {
        panic!("a message without an order id fails the run");
    };
    assert_eq!(handled, 3, "{error}");
    assert!(error.to_string().contains("without an order_id"), "{error}");
    assert_eq!(inbox_of(&store, "a").await, ["x", "y"]);
    assert_eq!(inbox_of(&store, "b").await, ["x"]);
    assert!(
        inbox_of(&store, "c").await.is_empty(),
        "nothing after the failure"
    );
    inbox.handle_batch(&run[..3]).await.expect("the run again");
    assert_eq!(inbox_of(&store, "a").await, ["x", "y"], "written once");
    assert_eq!(inbox_of(&store, "b").await, ["x"], "written once");
}
