//! Given/when/then tests of the product aggregate: stock never goes negative.

use tessera_core::testkit::AggregateTest;
use uuid::Uuid;

use super::*;

const A: Uuid = Uuid::from_u128(1);
const B: Uuid = Uuid::from_u128(2);

fn added(stock: i64) -> ProductEvent {
    ProductEvent::Added {
        sku: "tea".into(),
        name: "Tea".into(),
        price_cents: 100,
        initial_stock: stock,
    }
}

fn reserved(order_id: Uuid, quantity: i64) -> ProductEvent {
    ProductEvent::Reserved {
        sku: "tea".into(),
        order_id,
        quantity,
    }
}

#[test]
fn adding_checks_price_and_stock() {
    let add = |price_cents, initial_stock| ProductCommand::Add {
        sku: "tea".into(),
        name: "Tea".into(),
        price_cents,
        initial_stock,
    };
    AggregateTest::<Product>::new()
        .when(&add(100, 5))
        .then_expect_events([added(5)]);
    AggregateTest::<Product>::new()
        .when(&add(-1, 5))
        .then_expect_error_message("price_cents must be at least 0");
    AggregateTest::<Product>::new()
        .when(&add(1, -5))
        .then_expect_error_message("initial_stock must be at least 0");
    AggregateTest::<Product>::new()
        .given([added(1)])
        .when(&add(1, 1))
        .then_expect_error_message("product already exists");
}

#[test]
fn reserving_more_than_available_is_recorded_as_rejected() {
    AggregateTest::<Product>::new()
        .given([added(5), reserved(A, 3)])
        .when(&ProductCommand::Reserve {
            order_id: B,
            quantity: 3,
        })
        .then_expect_events([ProductEvent::Rejected {
            sku: "tea".into(),
            order_id: B,
            requested: 3,
            available: 2,
        }]);
    AggregateTest::<Product>::new()
        .given([added(5), reserved(A, 3)])
        .when(&ProductCommand::Reserve {
            order_id: B,
            quantity: 2,
        })
        .then_expect_events([reserved(B, 2)]);
}

#[test]
fn reserve_and_release_are_once_per_order() {
    AggregateTest::<Product>::new()
        .given([added(5), reserved(A, 3)])
        .when(&ProductCommand::Reserve {
            order_id: A,
            quantity: 3,
        })
        .then_expect_events([]);
    AggregateTest::<Product>::new()
        .given([added(5), reserved(A, 3)])
        .when(&ProductCommand::Release { order_id: A })
        .then_expect_events([ProductEvent::Released {
            sku: "tea".into(),
            order_id: A,
            quantity: 3,
        }]);
    let released = ProductEvent::Released {
        sku: "tea".into(),
        order_id: A,
        quantity: 3,
    };
    AggregateTest::<Product>::new()
        .given([added(5), reserved(A, 3), released])
        .when(&ProductCommand::Release { order_id: A })
        .then_expect_events([]);
    AggregateTest::<Product>::new()
        .given([added(5)])
        .when(&ProductCommand::Release { order_id: B })
        .then_expect_events([]);
}

#[test]
fn invariants_hold_after_any_sequence() {
    let mut p = Product::default();
    let events = [
        added(2),
        reserved(A, 2),
        ProductEvent::Restocked { quantity: 3 },
        ProductEvent::Released {
            sku: "tea".into(),
            order_id: A,
            quantity: 2,
        },
    ];
    for e in &events {
        tessera_core::Aggregate::apply(&mut p, e);
        assert!(p.available() >= 0 && p.reserved >= 0);
        assert_eq!(p.reserved + p.available(), p.on_hand);
    }
    assert_eq!((p.on_hand, p.reserved, p.available()), (5, 0, 5));
    AggregateTest::<Product>::new()
        .given([added(1)])
        .when(&ProductCommand::Restock { quantity: 0 })
        .then_expect_error_message("quantity must be at least 1");
    AggregateTest::<Product>::new()
        .when(&ProductCommand::Restock { quantity: 1 })
        .then_expect_error_message("product not found");
}
