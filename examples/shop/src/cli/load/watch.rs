//! Watching placed orders settle: when each placed order is first seen in a final status,
//! and so the time from its `201 Created` to its confirmation.
//!
//! One watcher walks the order list (`GET /v1/orders?after=…`, oldest first, 100 a
//! page) from just before the oldest order still pending, once every poll interval,
//! one request at a time. An order's list cursor is the position of its `OrderPlaced`,
//! which the place route answers with, so the walk starts at the pending orders and
//! stops past the newest of them: while orders settle about as fast as they are placed
//! that is one request per tick whatever the number of orders, where polling
//! `GET /v1/orders/{id}` would cost a request (four read-model reads) per pending order
//! per tick. An order is seen settled at most one poll interval plus one walk after it
//! settled in the orders view; that bound is the resolution of the latencies. Behind a
//! backlog the interval grows to 5 % of the oldest pending order's age ([`interval`]),
//! and a walk stops [`BARREN`] pages past the last settled order it found.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use tessera_core::Position;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

/// Orders per page of the walk (the list route's most).
const PAGE: usize = 100;

/// Pages in a row without a newly settled order after which a walk stops. Behind a
/// backlog of thousands, the orders that settle are the oldest (the pipeline is first
/// in, first out): a walk reads on while it finds settled orders and stops 1,000
/// pending orders past the last it found, so an order that settled out of turn further
/// ahead is seen late, when walks reach it.
const BARREN: usize = 10;

/// An order the place route accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Its id.
    pub id: String,
    /// Its position in the ordering log, from the `201` (none: walk from the start).
    pub position: Option<Position>,
    /// When the `201` arrived.
    pub at: Instant,
}

/// What the watcher saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Watched {
    /// Place (`201`) → seen confirmed, of each order seen confirmed.
    pub confirmed: Vec<Duration>,
    /// Orders seen in a final status (confirmed, rejected or cancelled).
    pub settled: usize,
    /// When the last of them was seen.
    pub last: Option<Instant>,
    /// List requests made.
    pub requests: usize,
    /// List requests that failed (retried at the next tick).
    pub failures: usize,
    /// Orders still pending or not visible when the watch ended.
    pub unsettled: usize,
}

/// The position just before `p`: the list cursor that starts a walk at `p`.
pub fn before(p: Position) -> Option<Position> {
    match (p.commit, p.prepare) {
        (0, 0) => None,
        (c, 0) => Some(Position::new(c - 1, i64::MAX.unsigned_abs())),
        (c, n) => Some(Position::new(c, n - 1)),
    }
}

/// Watches the orders sent on `placed` until each is seen settled, or `within` after
/// the last sender is dropped (placing over), polling every `poll`.
pub async fn watch(
    client: reqwest::Client,
    base: String,
    mut placed: UnboundedReceiver<Placed>,
    poll: Duration,
    within: Duration,
) -> Watched {
    let mut seen = Watched::default();
    let mut pending: HashMap<String, Placed> = HashMap::new();
    let mut placing_over: Option<Instant> = None;
    loop {
        loop {
            match placed.try_recv() {
                Ok(p) => {
                    pending.insert(p.id.clone(), p);
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    placing_over.get_or_insert_with(Instant::now);
                    break;
                }
            }
        }
        if pending.is_empty() {
            if placing_over.is_some() {
                break;
            }
            match placed.recv().await {
                Some(p) => {
                    pending.insert(p.id.clone(), p);
                }
                None => {
                    placing_over = Some(Instant::now());
                }
            }
            continue;
        }
        if placing_over.is_some_and(|t| t.elapsed() >= within) {
            break;
        }
        let tick = Instant::now();
        walk(&client, &base, &mut pending, &mut seen).await;
        tokio::time::sleep_until(tick + interval(poll, &pending)).await;
    }
    seen.unsettled = pending.len();
    seen
}

/// The wait between walks: `poll`, or a twentieth of the age of the oldest order still
/// pending when that is longer (at most a second). Behind a backlog of seconds, a walk
/// pages through every pending order; polling it every few milliseconds would load the
/// shop being measured, and a resolution of 5 % of the latency is enough there.
fn interval(poll: Duration, pending: &HashMap<String, Placed>) -> Duration {
    let oldest = pending.values().map(|p| p.at.elapsed()).max();
    let relative = oldest.unwrap_or_default() / 20;
    poll.max(relative.min(Duration::from_secs(1)))
}

/// One walk of the list from just before the oldest pending order past the newest,
/// taking every pending order it finds settled out of `pending`.
async fn walk(
    client: &reqwest::Client,
    base: &str,
    pending: &mut HashMap<String, Placed>,
    seen: &mut Watched,
) {
    // `None` (an order without a position) sorts first: walk from the start then.
    let oldest = pending.values().map(|p| p.position).min().flatten();
    let newest = pending.values().filter_map(|p| p.position).max();
    let mut after = oldest.and_then(before);
    let mut barren = 0;
    while !pending.is_empty() && barren < BARREN {
        let mut request = client
            .get(format!("{base}/v1/orders"))
            .query(&[("limit", PAGE.to_string())]);
        if let Some(cursor) = after {
            request = request.query(&[("after", cursor.to_string())]);
        }
        seen.requests += 1;
        let page = match request.send().await {
            Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
            _ => None,
        };
        let Some(page) = page else {
            seen.failures += 1;
            return;
        };
        let now = Instant::now();
        let settled_before = seen.settled;
        let items = page["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for item in items {
            let status = item["status"].as_str().unwrap_or("pending");
            let Some(id) = item["order_id"].as_str() else {
                continue;
            };
            if status == "pending" {
                continue;
            }
            if let Some(p) = pending.remove(id) {
                seen.settled += 1;
                seen.last = Some(now);
                if status == "confirmed" {
                    seen.confirmed.push(now.saturating_duration_since(p.at));
                }
            }
        }
        barren = if seen.settled > settled_before {
            0
        } else {
            barren + 1
        };
        let next = page["next"]
            .as_str()
            .and_then(|n| n.parse::<Position>().ok());
        match next {
            // Past the newest pending order: nothing of ours further on.
            Some(n) if newest.is_none_or(|newest| n < newest) => after = Some(n),
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::extract::Query;
    use axum::routing::get;
    use axum::{Json, Router};
    use serde_json::{json, Value};
    use tessera_core::Position;
    use tokio::time::Instant;

    use std::collections::HashMap;

    use super::{before, interval, watch, Placed};

    #[test]
    fn the_cursor_before_a_position() {
        assert_eq!(before(Position::new(7, 12)), Some(Position::new(7, 11)));
        assert_eq!(
            before(Position::new(7, 0)),
            Some(Position::new(6, i64::MAX.unsigned_abs()))
        );
        assert_eq!(before(Position::START), None);
        assert!(before(Position::new(1, 1)) < Some(Position::new(1, 1)));
    }

    #[test]
    fn the_interval_grows_with_the_oldest_pending_order() {
        let poll = Duration::from_millis(5);
        let at = |ago: u64| Instant::now() - Duration::from_millis(ago);
        let pending = |ago: u64| {
            let p = Placed {
                id: "o".to_owned(),
                position: None,
                at: at(ago),
            };
            HashMap::from([(p.id.clone(), p)])
        };
        assert_eq!(interval(poll, &HashMap::new()), poll);
        assert_eq!(interval(poll, &pending(40)), poll, "2 ms < 5 ms");
        let behind = interval(poll, &pending(2000));
        assert!(behind >= Duration::from_millis(100) && behind < Duration::from_millis(150));
        assert_eq!(interval(poll, &pending(600_000)), Duration::from_secs(1));
    }

    /// A list route over orders `o1`…`o5` at positions 1.1…5.5: `o1` confirmed from
    /// the start, `o2` confirmed after the third request, `o3` rejected, `o4` pending
    /// for ever, `o5` confirmed; pages of two. Records the `after` of each request.
    fn shop(asked: Arc<Mutex<Vec<Option<String>>>>) -> Router {
        Router::new().route(
            "/v1/orders",
            get(move |Query(q): Query<Vec<(String, String)>>| {
                let asked = asked.clone();
                async move {
                    let after = q.iter().find(|(k, _)| k == "after").map(|(_, v)| v.clone());
                    let n = {
                        let mut asked = asked.lock().expect("lock");
                        asked.push(after.clone());
                        asked.len()
                    };
                    let status = |i: u64| match i {
                        1 | 5 => "confirmed",
                        2 if n > 3 => "confirmed",
                        3 => "rejected",
                        _ => "pending",
                    };
                    let after: Position =
                        after.map_or(Position::START, |a| a.parse().expect("cursor"));
                    let items: Vec<(Position, Value)> = (1..=5u64)
                        .map(|i| {
                            (
                                Position::new(i, i),
                                json!({ "order_id": format!("o{i}"), "status": status(i) }),
                            )
                        })
                        .filter(|(p, _)| *p > after)
                        .take(3)
                        .collect();
                    let next = (items.len() > 2).then(|| items[1].0.to_string());
                    let items: Vec<Value> = items.into_iter().take(2).map(|(_, v)| v).collect();
                    Json(json!({ "items": items, "next": next }))
                }
            }),
        )
    }

    #[tokio::test]
    async fn settled_orders_are_timed_from_their_201() {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = shop(asked.clone());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let at = Instant::now();
        // o1 is not watched: placed by someone else.
        for i in 2..=5u64 {
            let position = Some(Position::new(i, i));
            tx.send(Placed {
                id: format!("o{i}"),
                position,
                at,
            })
            .expect("send");
        }
        drop(tx);
        let watched = watch(
            reqwest::Client::new(),
            base,
            rx,
            Duration::from_millis(20),
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(watched.settled, 3, "{watched:?}");
        assert_eq!(watched.confirmed.len(), 2, "o2 and o5; o3 was rejected");
        assert_eq!(watched.unsettled, 1, "o4 never settles");
        assert_eq!(watched.failures, 0);
        assert!(watched.confirmed.iter().all(|d| *d <= at.elapsed()));
        let asked = asked.lock().expect("lock").clone();
        assert_eq!(watched.requests, asked.len());
        // The first walk starts just before o2 and pages on to o5.
        assert_eq!(asked[0].as_deref(), Some("2.1"));
        assert_eq!(asked[1].as_deref(), Some("3.3"));
        // Once o2 is seen confirmed, walks start just before o4, the oldest pending.
        assert_eq!(asked.last().cloned().flatten().as_deref(), Some("4.3"));
        server.abort();
    }
}
