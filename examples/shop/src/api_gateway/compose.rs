//! `GET /v1/orders/{id}` composed from the three services at once: the order and its
//! saga from ordering (`GET /v1/orders/{id}`, passed on as it is but for `payment` and
//! `reservation`), its payment from payment (`GET /v1/payments/{id}`), its
//! reservation from inventory (`GET /v1/reservations/{id}`). A 404 of a part means there
//! is none yet (`not_requested`, `pending`), as in the all-in-one view.
//!
//! Without the order there is nothing to show: ordering's answer, when it is not a 200,
//! is the gateway's. A part that does not come (its service down, its breaker open, an
//! unreadable answer) is `null`, and `degraded` names it; with every part, the body is
//! the all-in-one server's byte for byte.

use std::fmt;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::upstream::{Answer, Call};
use super::{Gateway, Service};
use crate::api::{OrderView, PaymentSummary, Problem, ReservationSummary};
use crate::jwt::Customer;

/// The composed order: ordering's order, field for field in its order, with `payment`
/// and `reservation` those of their services (`null` for one that did not come), and
/// `degraded` naming the missing parts (left out when none is missing).
#[derive(Debug, Serialize)]
pub struct Composed {
    #[serde(flatten)]
    order: Fields,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    degraded: Vec<&'static str>,
}

/// A JSON object's fields in the order they came, each value as it was written: the
/// order view passes through without the gateway naming its fields, so it cannot fall
/// behind the view's.
#[derive(Debug)]
struct Fields(Vec<(String, Box<RawValue>)>);

impl Fields {
    /// Sets field `name` to `value`, where it stands (last when it is not there).
    fn set(&mut self, name: &str, value: &impl Serialize) -> serde_json::Result<()> {
        let value = serde_json::value::to_raw_value(value)?;
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.0.push((name.to_owned(), value)),
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Fields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut fields = Vec::new();
                while let Some(field) = map.next_entry()? {
                    fields.push(field);
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Object)
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, value)| (name, value)))
    }
}

/// The order `raw_id` (as sent), for `customer` when customers are checked; `query` is
/// passed to ordering (`min_position`).
pub async fn show(
    gateway: &Gateway,
    raw_id: &str,
    query: Option<&str>,
    incoming: &HeaderMap,
    correlation: Uuid,
    customer: Option<&Customer>,
) -> Response {
    let target = match query {
        Some(q) => format!("/v1/orders/{raw_id}?{q}"),
        None => format!("/v1/orders/{raw_id}"),
    };
    let get = |target: String| Call::get(target, incoming, correlation);
    let order_call = get(target);
    let payment_call = get(format!("/v1/payments/{raw_id}"));
    let reservation_call = get(format!("/v1/reservations/{raw_id}"));
    let (order, payment, reservation) = tokio::join!(
        gateway.upstream(Service::Ordering).send(&order_call),
        gateway.upstream(Service::Payment).send(&payment_call),
        gateway.upstream(Service::Inventory).send(&reservation_call),
    );
    let order = match order {
        Ok(answer) if answer.status == StatusCode::OK => answer,
        Ok(answer) => return answer.into_response(),
        Err(problem) => return problem.into_response(),
    };
    let body = &order.body;
    let (view, mut fields) = match (
        serde_json::from_slice::<OrderView>(body),
        serde_json::from_slice::<Fields>(body),
    ) {
        (Ok(view), Ok(fields)) => (view, fields),
        (Err(e), _) | (_, Err(e)) => {
            return Problem::bad_upstream(Service::Ordering, e).into_response()
        }
    };
    if customer.is_some_and(|c| c.0 != view.customer_id) {
        return Problem::not_found("no such order").into_response();
    }
    let mut degraded = Vec::new();
    let payment = part(Service::Payment, "payment", payment, &mut degraded, || {
        PaymentSummary::of(None)
    });
    let reservation = part(
        Service::Inventory,
        "reservation",
        reservation,
        &mut degraded,
        || ReservationSummary::of(None),
    );
    let parts = fields
        .set("payment", &payment)
        .and_then(|()| fields.set("reservation", &reservation));
    if let Err(e) = parts {
        return Problem::internal(format_args!("composing order {raw_id}: {e}")).into_response();
    }
    Json(Composed {
        order: fields,
        degraded,
    })
    .into_response()
}

/// A part from its service's answer: the body of a 200, `none()` for a 404, else
/// `None` with `name` added to `degraded` (and the reason in the log).
fn part<T: DeserializeOwned>(
    service: Service,
    name: &'static str,
    answer: Result<Answer, Problem>,
    degraded: &mut Vec<&'static str>,
    none: impl FnOnce() -> T,
) -> Option<T> {
    let why = match answer {
        Ok(a) if a.status == StatusCode::OK => match serde_json::from_slice(&a.body) {
            Ok(part) => return Some(part),
            Err(e) => format!("unreadable answer: {e}"),
        },
        Ok(a) if a.status == StatusCode::NOT_FOUND => return Some(none()),
        Ok(a) => format!("answered {}", a.status),
        Err(problem) => problem.cause.as_deref().unwrap_or(problem.kind).to_owned(),
    };
    tracing::warn!(service = service.as_str(), part = name, reason = %why, "order shown without a part");
    degraded.push(name);
    None
}

#[cfg(test)]
mod tests {
    use super::{Composed, Fields};

    #[test]
    fn fields_keep_their_order_and_text_and_a_part_is_replaced_where_it_stands() {
        let order = br#"{"z":1,"payment":{"s":"x","a":2},"b":[1, 2],"reservation":{"y":1}}"#;
        let mut fields: Fields = serde_json::from_slice(order).expect("an object");
        let whole = Composed {
            order: fields,
            degraded: Vec::new(),
        };
        let text = serde_json::to_vec(&whole).expect("json");
        assert_eq!(
            String::from_utf8_lossy(&text),
            String::from_utf8_lossy(order)
        );
        fields = whole.order;
        fields.set("payment", &None::<u8>).expect("set");
        fields.set("reservation", &[3]).expect("set");
        let degraded = Composed {
            order: fields,
            degraded: vec!["payment"],
        };
        assert_eq!(
            serde_json::to_string(&degraded).expect("json"),
            r#"{"z":1,"payment":null,"b":[1, 2],"reservation":[3],"degraded":["payment"]}"#
        );
        assert!(
            serde_json::from_slice::<Fields>(b"[1]").is_err(),
            "not an object"
        );
    }
}
