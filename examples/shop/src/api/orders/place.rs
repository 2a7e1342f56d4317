//! `POST /v1/orders`: validate, price, place; idempotent with `Idempotency-Key`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use tessera_core::{
    idempotency, CommandHandler, CommandOptions, EventStore, Metadata, SnapshotStore,
};
use uuid::Uuid;

use super::super::extract::{idempotency_key, Body, Correlation};
use super::super::Problem;
use crate::app::App;
use crate::inventory::valid_sku;
use crate::ordering::{Line, Order, OrderCommand};

/// A new order.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewOrder {
    /// Who orders (1–100 characters).
    pub customer_id: String,
    /// At least one line, at most 100.
    pub lines: Vec<NewLine>,
}

/// One line of a new order.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewLine {
    /// An existing product.
    pub sku: String,
    /// 1 to 10,000.
    pub quantity: i64,
}

/// A placed order.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Placed {
    /// The order.
    pub order_id: Uuid,
    /// Always `pending`: the saga decides the rest.
    pub status: String,
    /// Position in the ordering log; pass as `min_position` to read the order back.
    pub position: Option<String>,
}

/// Namespace of order ids derived from idempotency keys.
const ORDER_IDS: Uuid = Uuid::from_u128(0x5e0b_0c1d_2a4b_4f6e_8d9c_7b1a_3e2f_4d5c);

fn validate(order: &NewOrder) -> Result<(), Problem> {
    let customer = order.customer_id.trim();
    if customer.is_empty()
        || customer.chars().count() > 100
        || customer.chars().any(char::is_control)
    {
        return Err(Problem::invalid(
            "customer_id: must have 1 to 100 characters, none of them control characters",
        ));
    }
    if order.lines.is_empty() {
        return Err(Problem::invalid("lines: an order needs at least one line"));
    }
    if order.lines.len() > 100 {
        return Err(Problem::invalid("lines: at most 100 lines"));
    }
    for (i, line) in order.lines.iter().enumerate() {
        if !valid_sku(&line.sku) {
            return Err(Problem::unknown_sku(format!(
                "lines[{i}].sku: no product {:?}",
                line.sku.chars().take(70).collect::<String>()
            )));
        }
        if !(1..=10_000).contains(&line.quantity) {
            return Err(Problem::invalid(format!(
                "lines[{i}].quantity: must be 1 to 10000"
            )));
        }
    }
    Ok(())
}

/// Places an order: 201 with its id and position. With an `Idempotency-Key`, the same
/// key and body answer the first response again; the same key with another body is 422.
#[utoipa::path(post, path = "/v1/orders", request_body = NewOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = Placed), (status = 400, response = super::super::ProblemBody),
        (status = 409, response = super::super::ProblemBody), (status = 413, response = super::super::ProblemBody),
        (status = 415, response = super::super::ProblemBody), (status = 422, response = super::super::ProblemBody),
        (status = 503, response = super::super::ProblemBody)))]
pub async fn place<S: EventStore + SnapshotStore>(
    State(app): State<Arc<App<S>>>,
    c: Correlation,
    headers: HeaderMap,
    Body(order): Body<NewOrder>,
) -> Result<(StatusCode, Json<Placed>), Problem> {
    let key = idempotency_key(&headers)?;
    validate(&order)?;
    // The request's fingerprint: its canonical JSON.
    let request_hash = Uuid::new_v5(
        &ORDER_IDS,
        &serde_json::to_vec(&order).map_err(|e| Problem::internal(e.to_string()))?,
    )
    .to_string();
    let order_id = key
        .as_deref()
        .map_or_else(Uuid::new_v4, |k| Uuid::new_v5(&ORDER_IDS, k.as_bytes()));
    let id = order_id.to_string();
    if let Some(k) = &key {
        if let Some(first) = first_placement(&app.orders, &id, k).await? {
            return replay(first, &request_hash, order_id);
        }
    }
    // One line per sku, priced from the inventory context.
    let mut quantities: BTreeMap<&str, (usize, i64)> = BTreeMap::new();
    for (i, line) in order.lines.iter().enumerate() {
        let entry = quantities.entry(&line.sku).or_insert((i, 0));
        entry.1 += line.quantity;
    }
    let mut merged: Vec<(usize, &str, i64)> = quantities
        .into_iter()
        .map(|(sku, (i, q))| (i, sku, q))
        .collect();
    merged.sort_by_key(|(i, _, _)| *i);
    let mut lines = Vec::with_capacity(merged.len());
    for (i, sku, quantity) in merged {
        let product = app.products.load(sku).await?.state;
        if !product.exists {
            return Err(Problem::unknown_sku(format!(
                "lines[{i}].sku: no product {sku:?}"
            )));
        }
        lines.push(Line {
            sku: sku.to_owned(),
            quantity,
            unit_price_cents: product.price_cents,
        });
    }
    let command = OrderCommand::Place {
        order_id,
        customer_id: order.customer_id.trim().to_owned(),
        lines,
        request_hash: request_hash.clone(),
        correlation_id: Some(c.0),
    };
    let options = CommandOptions {
        idempotency_key: key.clone(),
        fingerprint: None,
        metadata: Metadata::correlated(c.0),
    };
    let out = app.orders.handle_with(&id, &command, options).await?;
    if out.replayed {
        // A concurrent request with the same key got there first.
        if let Some(k) = &key {
            if let Some(first) = first_placement(&app.orders, &id, k).await? {
                return replay(first, &request_hash, order_id);
            }
        }
    } else {
        app.metrics.orders_placed.fetch_add(1, Ordering::Relaxed);
    }
    let position = out.position.map(|p| p.to_string());
    Ok((
        StatusCode::CREATED,
        Json(Placed {
            order_id,
            status: "pending".to_owned(),
            position,
        }),
    ))
}

/// The first placement under idempotency key `key`: its request hash and position.
async fn first_placement<S: EventStore>(
    orders: &CommandHandler<Order, S>,
    id: &str,
    key: &str,
) -> Result<Option<(String, String)>, Problem> {
    let stream = CommandHandler::<Order, S>::stream_id(id).map_err(|e| Problem::store(&e))?;
    let event_id = idempotency::command_event_id(&stream, key, 0);
    let found = orders
        .store()
        .find_event(&stream, event_id)
        .await
        .map_err(|e| Problem::store(&e))?;
    let Some(event) = found else { return Ok(None) };
    let data = event
        .data
        .to_value()
        .map_err(|e| Problem::internal(e.to_string()))?;
    let hash = data
        .get("request_hash")
        .and_then(|h| h.as_str())
        .unwrap_or_default()
        .to_owned();
    Ok(Some((hash, event.position.to_string())))
}

fn replay(
    (hash, position): (String, String),
    request_hash: &str,
    order_id: Uuid,
) -> Result<(StatusCode, Json<Placed>), Problem> {
    if hash != request_hash {
        return Err(Problem::key_reused(
            "Idempotency-Key: this key was used for a different request body",
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(Placed {
            order_id,
            status: "pending".to_owned(),
            position: Some(position),
        }),
    ))
}
