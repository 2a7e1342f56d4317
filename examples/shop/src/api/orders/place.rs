//! `POST /v1/orders`: validate, price, place; idempotent with `Idempotency-Key`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use tessera_core::{
    CommandError, CommandOptions, EventStore, Fingerprint, Metadata, SnapshotStore,
};
use uuid::Uuid;

use super::super::extract::{idempotency_key, Body, Correlation};
use super::super::Problem;
use crate::app::App;
use crate::inventory::valid_sku;
use crate::ordering::{Line, OrderCommand};

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
    let order_id = key
        .as_deref()
        .map_or_else(Uuid::new_v4, |k| Uuid::new_v5(&ORDER_IDS, k.as_bytes()));
    if app.admission.refusing() {
        // A retry of an order already taken is answered as the first time: it adds no
        // work to the pipeline.
        let taken = key.is_some()
            && app
                .orders
                .peek(&order_id.to_string(), |o| o.status.is_some())
                .await?;
        if !taken {
            app.admission.refuse();
            return Err(Problem::backlogged(app.admission.backlog()));
        }
    }
    let command = OrderCommand::Place {
        order_id,
        customer_id: order.customer_id.trim().to_owned(),
        lines: priced(&app, &order.lines).await?,
        correlation_id: Some(c.0),
    };
    // Keyed, the request's canonical JSON tells a retry from another body.
    let options = match key {
        Some(key) => CommandOptions::idempotent(key)
            .with_fingerprint(Fingerprint::of(&order).map_err(Problem::internal)?),
        None => CommandOptions::default(),
    };
    let options = options.with_metadata(Metadata::correlated(c.0));
    let out = match app
        .orders
        .handle_with(&order_id.to_string(), &command, options)
        .await
    {
        Err(CommandError::KeyReused { .. }) => {
            return Err(Problem::key_reused(
                "Idempotency-Key: this key was used for a different request body",
            ))
        }
        other => other?,
    };
    if !out.replayed {
        app.metrics.orders_placed.fetch_add(1, Ordering::Relaxed);
    }
    Ok((
        StatusCode::CREATED,
        Json(Placed {
            order_id,
            status: "pending".to_owned(),
            position: out.position.map(|p| p.to_string()),
        }),
    ))
}

/// The order's lines merged to one per sku (in the order each sku first appears), each
/// priced from the prices seen before (a product's price never changes), else the
/// product's state: the handler's state cache, else the store. A product the cache does
/// not know to exist is read from the store (another process may have added it), so a
/// product just added is priceable at once.
async fn priced<S: EventStore + SnapshotStore>(
    app: &App<S>,
    order: &[NewLine],
) -> Result<Vec<Line>, Problem> {
    let mut quantities: BTreeMap<&str, (usize, i64)> = BTreeMap::new();
    for (i, line) in order.iter().enumerate() {
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
        // A product's price never changes once it exists (see `Prices`).
        let known = match app.prices.get(sku) {
            Some(price) => Some(price),
            None => {
                app.products
                    .peek(sku, |p| p.exists.then_some(p.price_cents))
                    .await?
            }
        };
        let price = match known {
            Some(price) => price,
            None => {
                let product = app.products.load(sku).await?.state;
                if !product.exists {
                    return Err(Problem::unknown_sku(format!(
                        "lines[{i}].sku: no product {sku:?}"
                    )));
                }
                product.price_cents
            }
        };
        app.prices.remember(sku, price);
        lines.push(Line {
            sku: sku.to_owned(),
            quantity,
            unit_price_cents: price,
        });
    }
    Ok(lines)
}
