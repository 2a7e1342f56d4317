//! A crash on PostgreSQL with sagas at every step and payment calls in the air: the
//! first shop is killed, not stopped (see [`Killable::kill`]), and a second one on the
//! same schemas, charging through the same gateway (a service outside the shop, which
//! outlives its crash), finishes every order exactly once.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::Value;
use shop::gateway::{Account, Gateway, GatewayConfig};
use uuid::Uuid;

use crate::support::{
    database_url, eventually, quantity_of, settings, unique_prefix, Killable, TestShop,
};

/// The payment deadline of the first shop: the downtime is longer, so every deadline
/// it scheduled and did not fire is due when the second shop starts.
const DEADLINE: Duration = Duration::from_secs(3);

/// Each product: sku, price, initial stock.
const STOCK: [(&str, i64, i64); 3] = [
    ("lamp", 1500, 100),
    ("throne", 900_000, 100),
    ("vase", 2500, 1),
];

/// Order `i`'s lines, and its outcome when the crash does not get in the way.
fn scenario(i: usize) -> (Vec<(&'static str, i64)>, Outcome) {
    match i % 4 {
        0 => (vec![("lamp", 1)], Outcome::Confirmed),
        1 => (vec![("throne", 2)], Outcome::Rejected("payment_declined")), // over the limit
        2 => (vec![("vase", 2)], Outcome::Rejected("out_of_stock")),
        _ => (vec![("lamp", 2), ("throne", 1)], Outcome::Confirmed),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Confirmed,
    Rejected(&'static str),
}

/// The events of the three logs and the saga's tables, read straight from PostgreSQL.
struct Tables {
    /// Event types of each order's payment stream, oldest first, with their data.
    payments: HashMap<Uuid, Vec<(String, Value)>>,
    /// Event types of each order's stream, oldest first, with their data.
    orders: HashMap<Uuid, Vec<(String, Value)>>,
    /// States of each order's deadlines.
    deadlines: HashMap<Uuid, Vec<String>>,
    /// `TimeOutPayment` commands the saga issued per order.
    timeouts: HashMap<Uuid, i64>,
}

impl Tables {
    async fn read(prefix: &str) -> Self {
        let (client, conn) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
            .await
            .expect("connect");
        let conn = tokio::spawn(conn);
        let id = |s: &str| Uuid::parse_str(s).ok();
        let mut tables = Tables {
            payments: HashMap::new(),
            orders: HashMap::new(),
            deadlines: HashMap::new(),
            timeouts: HashMap::new(),
        };
        for (schema, category) in [("payment", "payment-"), ("ordering", "order-")] {
            let sql = format!(
                "SELECT stream_id, event_type, data FROM \"{prefix}{schema}\".events \
                 WHERE stream_id LIKE '{category}%' ORDER BY tx_id, global_position"
            );
            for row in client.query(&sql, &[]).await.expect("read a log") {
                let stream: &str = row.get(0);
                let Some(order) = stream.strip_prefix(category).and_then(id) else {
                    continue;
                };
                let target = match schema {
                    "payment" => &mut tables.payments,
                    _ => &mut tables.orders,
                };
                target
                    .entry(order)
                    .or_default()
                    .push((row.get(1), row.get(2)));
            }
        }
        let sql = format!(
            "SELECT instance_id, state FROM \"{prefix}fulfilment\".deadlines ORDER BY created_at"
        );
        for row in client.query(&sql, &[]).await.expect("read deadlines") {
            if let Some(order) = id(row.get::<_, &str>(0)) {
                tables.deadlines.entry(order).or_default().push(row.get(1));
            }
        }
        let sql = format!(
            "SELECT instance_id, count(*) FROM \"{prefix}fulfilment\".outbox \
             WHERE issued->'command'->>'action' = 'TimeOutPayment' GROUP BY instance_id"
        );
        for row in client.query(&sql, &[]).await.expect("read the outbox") {
            if let Some(order) = id(row.get::<_, &str>(0)) {
                tables.timeouts.insert(order, row.get(1));
            }
        }
        drop(client);
        let _ = conn.await;
        tables
    }

    /// The gateway's answer recorded for `order`'s payment, if any.
    fn answer(&self, order: Uuid) -> Option<Outcome> {
        let events = self.payments.get(&order)?;
        events.iter().find_map(|(kind, data)| match kind.as_str() {
            "PaymentCaptured" => Some(Outcome::Confirmed),
            "PaymentDeclined" if data["reason"] == "timeout" => {
                Some(Outcome::Rejected("payment_timeout"))
            }
            "PaymentDeclined" => Some(Outcome::Rejected("payment_declined")),
            _ => None,
        })
    }

    fn count(events: Option<&Vec<(String, Value)>>, kind: &str) -> usize {
        events.map_or(0, |e| e.iter().filter(|(k, _)| k == kind).count())
    }
}

/// Places `n` orders numbered from `from` on `shop` at once; returns their ids and
/// scenarios.
async fn place(shop: &TestShop, from: usize, n: usize) -> Vec<(Uuid, usize)> {
    join_all((from..from + n).map(|i| async move {
        let (lines, _) = scenario(i);
        let (id, _) = shop.order(&format!("crash{i}"), &lines).await;
        (Uuid::parse_str(&id).expect("order id"), i)
    }))
    .await
}

async fn order(shop: &TestShop, id: Uuid) -> Value {
    shop.get(&format!("/v1/orders/{id}")).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_mid_saga_on_postgres() {
    let prefix = unique_prefix();
    // Calls take 0.5 to 1.5 s: when the shop dies, some are in the air.
    let gateway = Gateway::new(GatewayConfig {
        latency: Duration::from_secs(1),
        ..GatewayConfig::default()
    });
    let mut before = settings();
    before.payment_timeout = DEADLINE;
    let first = Killable::postgres(&prefix, before, gateway.clone()).await;
    for (sku, price, stock) in STOCK {
        first.shop.product(sku, sku, price, stock).await;
    }
    // A first wave until two of its payments are answered, a second one until one of
    // its payments is asked for, a third one, and the crash: sagas stand at every step,
    // from "not reserved yet" to "confirmed", with payment calls in the air.
    let mut placed = place(&first.shop, 0, 8).await;
    eventually("two payments of the first wave are answered", || async {
        let mut answered = 0;
        for (id, _) in &placed {
            let status = &order(&first.shop, *id).await["payment"]["status"];
            answered += usize::from(status == "captured" || status == "declined");
        }
        (answered >= 2).then_some(())
    })
    .await;
    let second_wave = place(&first.shop, 8, 8).await;
    eventually("a payment of the second wave is asked for", || async {
        for (id, _) in &second_wave {
            if order(&first.shop, *id).await["payment"]["status"] == "requested" {
                return Some(());
            }
        }
        None
    })
    .await;
    let third_wave = place(&first.shop, 16, 4).await;
    first.kill();
    placed.extend(second_wave);
    placed.extend(third_wave);
    tokio::time::sleep(DEADLINE + Duration::from_millis(500)).await;

    // What the dead shop left: nothing writes until the second shop starts.
    let at_crash = Tables::read(&prefix).await;
    let expected: HashMap<Uuid, Outcome> = placed
        .iter()
        .map(|(id, i)| {
            let outcome = match at_crash.answer(*id) {
                Some(answered) => answered,
                // Scheduled and not answered: due by now, the second shop fires it
                // while the gateway is held (below), before a redelivered charge answers.
                None if at_crash.deadlines.contains_key(id) => Outcome::Rejected("payment_timeout"),
                None => scenario(*i).1,
            };
            (*id, outcome)
        })
        .collect();
    let due_across: HashSet<Uuid> = placed
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| {
            at_crash.answer(*id).is_none()
                && at_crash
                    .deadlines
                    .get(id)
                    .is_some_and(|d| d.iter().any(|s| s == "scheduled"))
        })
        .collect();
    assert!(
        !due_across.is_empty(),
        "a payment was in the air at the crash"
    );

    let mut after = settings();
    after.payment_timeout = Duration::from_secs(60);
    // The gateway holds its answers until the overdue deadlines have fired, so the
    // deadline wins the race a restart starts against the redelivered charges (both are
    // correct outcomes; the test wants to see the deadline fire across the crash).
    gateway.pause();
    let second = TestShop::postgres_with_gateway(&prefix, after, gateway.clone()).await;
    eventually("the deadlines due across the crash fire", || async {
        let now = Tables::read(&prefix).await;
        due_across
            .iter()
            .all(|id| {
                now.deadlines
                    .get(id)
                    .is_some_and(|d| d.iter().all(|s| s == "fired"))
            })
            .then_some(())
    })
    .await;
    gateway.resume();
    let mut confirmed: Vec<Value> = Vec::new();
    for (id, _) in &placed {
        let order = second.settled(&id.to_string()).await;
        let reason = ["payment_timeout", "payment_declined", "out_of_stock"]
            .into_iter()
            .find(|r| order["reason"] == *r);
        let outcome = match (order["status"].as_str(), reason) {
            (Some("confirmed"), None) => Outcome::Confirmed,
            (Some("rejected"), Some(reason)) => Outcome::Rejected(reason),
            _ => panic!("not a final status: {order}"),
        };
        assert_eq!(outcome, expected[id], "{order}");
        if outcome == Outcome::Confirmed {
            confirmed.push(order);
        }
    }
    assert!(!confirmed.is_empty());

    // Money: each confirmed order captured once; every other one holds nothing (a
    // capture that lost to its deadline is refunded at the gateway).
    let totals: HashMap<Uuid, i64> = confirmed
        .iter()
        .map(|o| {
            let id = Uuid::parse_str(o["order_id"].as_str().unwrap_or_default()).expect("id");
            (id, o["total_cents"].as_i64().unwrap_or(-1))
        })
        .collect();
    eventually("the gateway holds exactly the confirmed totals", || async {
        placed
            .iter()
            .all(|(id, _)| gateway.account(*id).net_cents() == totals.get(id).copied().unwrap_or(0))
            .then_some(())
    })
    .await;
    for (id, total) in &totals {
        let held = Account {
            captured_cents: *total,
            refunded_cents: 0,
        };
        assert_eq!(gateway.account(*id), held, "order {id}");
    }
    let payments_settled = eventually("the payment views settle", || async {
        let mut views = Vec::new();
        for (id, _) in &placed {
            let payment = order(&second, *id).await["payment"].clone();
            if payment["status"] == "requested" {
                return None;
            }
            views.push((*id, payment));
        }
        Some(views)
    })
    .await;
    for (id, payment) in payments_settled {
        let captured = totals.get(&id).copied().unwrap_or(0);
        assert_eq!(
            payment["captured_cents"].as_i64(),
            Some(captured),
            "order {id}: {payment}"
        );
    }

    // The logs: one outcome per order, one capture per confirmed order, and each
    // deadline due across the crash fired once.
    let end = Tables::read(&prefix).await;
    for (id, _) in &placed {
        let orders = end.orders.get(id);
        let (confirms, rejects) = (
            Tables::count(orders, "OrderConfirmed"),
            Tables::count(orders, "OrderRejected"),
        );
        assert_eq!(confirms + rejects, 1, "order {id}: {orders:?}");
        let payments = end.payments.get(id);
        assert_eq!(
            Tables::count(payments, "PaymentCaptured"),
            usize::from(totals.contains_key(id)),
            "order {id}: {payments:?}"
        );
        assert!(
            Tables::count(payments, "PaymentDeclined") <= 1,
            "order {id}: {payments:?}"
        );
    }
    for id in &due_across {
        assert_eq!(
            end.deadlines.get(id),
            Some(&vec!["fired".to_owned()]),
            "order {id}"
        );
        assert_eq!(
            end.timeouts.get(id),
            Some(&1),
            "order {id}: one TimeOutPayment"
        );
        let rejected: Vec<&Value> = end.orders[id]
            .iter()
            .filter(|(k, _)| k == "OrderRejected")
            .map(|(_, data)| &data["reason"])
            .collect();
        assert_eq!(rejected, [&Value::from("payment_timeout")], "order {id}");
    }

    // Stock: what is left is the initial stock less what confirmed orders hold.
    for (sku, _, stock) in STOCK {
        let held = quantity_of(&confirmed, sku);
        second
            .product_until(sku, "stock adds up", |p| {
                p["available"].as_i64() == Some(stock - held)
                    && p["reserved"].as_i64() == Some(held)
                    && p["on_hand"].as_i64() == Some(stock)
            })
            .await;
    }
    second.finish().await;
}
