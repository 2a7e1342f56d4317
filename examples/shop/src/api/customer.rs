//! Customers on the order routes, when the server checks bearer JWTs
//! (`serve --jwt-secret` or `--jwt-public-key`; without either, these routes are open
//! as before and this guard lets everything through).
//!
//! The token's `sub` is the customer: `POST /v1/orders` places the order for them
//! (whatever `customer_id` the body names), `GET /v1/orders` lists only theirs, and an
//! order of another customer is a 404 like one that does not exist, on
//! `GET /v1/orders/{id}`, its cancel, its payment and its reservation. Product routes
//! need a valid token and nothing more. A missing or bad token is 401 with
//! `WWW-Authenticate: Bearer`. The gateway (`shop gateway`) applies the same rules with
//! the same functions.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tessera_core::{EventStore, SnapshotStore};
use uuid::Uuid;

use super::{Correlation, Problem, BODY_LIMIT};
use crate::app::App;
use crate::jwt::{Customer, JwtError};

/// The `WWW-Authenticate` challenge of a request without a token.
const CHALLENGE: &str = "Bearer realm=\"shop\"";
/// The challenge of a request whose token was refused (RFC 6750).
const INVALID: &str = "Bearer realm=\"shop\", error=\"invalid_token\"";

/// 401 for a refused token, with the challenge, answered at `correlation`. The problem
/// is taken out of the response's extensions, so that no middleware answers it again
/// without the header.
pub fn unauthenticated(error: &JwtError, missing: bool, correlation: Uuid) -> Response {
    let mut response = Problem::unauthorized(error.to_string())
        .at(correlation)
        .into_response();
    response.extensions_mut().remove::<Problem>();
    let challenge = if missing { CHALLENGE } else { INVALID };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// The JSON object of a new order with `customer_id` set to `customer`, or `None` when
/// it already names them (send it as it is) or is not a JSON object (let the API refuse
/// it as it would).
pub fn own_order_body(body: &[u8], customer: &Customer) -> Option<Bytes> {
    let mut order: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).ok()?;
    if order.get("customer_id").and_then(|c| c.as_str()) == Some(&customer.0) {
        return None;
    }
    order.insert("customer_id".to_owned(), customer.0.clone().into());
    serde_json::to_vec(&order).ok().map(Bytes::from)
}

/// A list query (`a=1&b=2`, no `?`) with its `customer_id` set to `customer`; `None`
/// when it already names them and no one else.
pub fn own_list_query(query: Option<&str>, customer: &Customer) -> Option<String> {
    let base = reqwest::Url::parse("http://query.invalid/").ok()?;
    let mut url = base.clone();
    url.set_query(query);
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let named: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "customer_id")
        .map(|(_, v)| v.as_str())
        .collect();
    if named == [customer.0.as_str()] {
        return None;
    }
    let mut own = base;
    own.query_pairs_mut()
        .extend_pairs(pairs.iter().filter(|(k, _)| k != "customer_id"))
        .append_pair("customer_id", &customer.0);
    own.query().map(str::to_owned)
}

/// The `customer_id` of an order as the API shows it, if `body` is one.
pub fn customer_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Owned {
        customer_id: String,
    }
    serde_json::from_slice::<Owned>(body)
        .ok()
        .map(|o| o.customer_id)
}

/// The guard of the customer routes (see the module).
pub async fn guard<S: EventStore + SnapshotStore>(
    State(app): State<Arc<App<S>>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(verifier) = &app.settings.jwt else {
        return next.run(req).await;
    };
    let correlation = req
        .extensions()
        .get::<Correlation>()
        .map_or_else(Uuid::new_v4, |c| c.0);
    let header = req.headers().get(header::AUTHORIZATION);
    let customer = match verifier.verify_header(header) {
        Ok(customer) => customer,
        Err(e) => return unauthenticated(&e, header.is_none(), correlation),
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    match (route.as_str(), req.method() == Method::POST) {
        ("/v1/orders", true) => place(req, next, &customer).await,
        ("/v1/orders", false) => match own_list_query(req.uri().query(), &customer) {
            Some(query) => next.run(with_query(req, &query)).await,
            None => next.run(req).await,
        },
        ("/v1/orders/{order_id}", _) => show(req, next, &customer).await,
        (
            "/v1/orders/{order_id}/cancel"
            | "/v1/payments/{order_id}"
            | "/v1/reservations/{order_id}",
            _,
        ) => match owns(&app, req.uri(), &customer).await {
            Ok(()) => next.run(req).await,
            Err(problem) => problem.into_response(),
        },
        _ => next.run(req).await,
    }
}

async fn place(req: Request, next: Next, customer: &Customer) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return Problem::too_large(format!("request bodies are limited to {BODY_LIMIT} bytes"))
            .into_response();
    };
    let body = own_order_body(&bytes, customer).unwrap_or(bytes);
    let mut req = Request::from_parts(parts, Body::from(body));
    req.headers_mut().remove(header::CONTENT_LENGTH);
    next.run(req).await
}

fn with_query(req: Request, query: &str) -> Request {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path();
    if let Ok(uri) = format!("{path}?{query}").parse::<Uri>() {
        parts.uri = uri;
    }
    Request::from_parts(parts, body)
}

/// The order as answered, unless it is another customer's (then 404).
async fn show(req: Request, next: Next, customer: &Customer) -> Response {
    let response = next.run(req).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Problem::internal("the order's answer could not be read").into_response();
    };
    if customer_of(&bytes).as_deref() != Some(customer.0.as_str()) {
        return Problem::not_found("no such order").into_response();
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Whether the order named by the path's third segment is `customer`'s, asked of its
/// aggregate (the read model may not have it yet): 404 if not, or if there is none.
async fn owns<S: EventStore + SnapshotStore>(
    app: &App<S>,
    uri: &Uri,
    customer: &Customer,
) -> Result<(), Problem> {
    let id = uri
        .path()
        .split('/')
        .nth(3)
        .and_then(|raw| Uuid::parse_str(raw).ok())
        .ok_or_else(|| Problem::not_found("no such order"))?;
    let order = app.orders.load(&id.to_string()).await?.state;
    if order.id.is_some() && order.customer_id == customer.0 {
        Ok(())
    } else {
        Err(Problem::not_found("no such order"))
    }
}

#[cfg(test)]
mod tests {
    use super::{own_list_query, own_order_body};
    use crate::jwt::Customer;

    #[test]
    fn an_order_and_a_list_are_the_customers_own() {
        let me = Customer("c 1".into());
        let body = own_order_body(br#"{"customer_id":"c2","lines":[]}"#, &me).expect("changed");
        let order: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(order["customer_id"], "c 1");
        let added = own_order_body(br#"{"lines":[]}"#, &me).expect("changed");
        assert!(String::from_utf8_lossy(&added).contains("\"customer_id\":\"c 1\""));
        assert!(own_order_body(br#"{"customer_id":"c 1"}"#, &me).is_none());
        assert!(own_order_body(b"[1]", &me).is_none(), "not an object");
        assert!(own_order_body(b"{", &me).is_none(), "not JSON");
        assert_eq!(
            own_list_query(Some("limit=5&customer_id=c2&customer_id=c%201"), &me).as_deref(),
            Some("limit=5&customer_id=c+1")
        );
        assert_eq!(
            own_list_query(None, &me).as_deref(),
            Some("customer_id=c+1")
        );
        assert!(own_list_query(Some("customer_id=c%201&limit=5"), &me).is_none());
    }
}
