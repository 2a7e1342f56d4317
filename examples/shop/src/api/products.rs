//! Product routes: add, restock, show.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use tessera_core::{
    CommandError, CommandOptions, EventStore, Fingerprint, Metadata, SnapshotStore,
};

use super::extract::{idempotency_key, position, wait_for, Body, Correlation, Params, PathParam};
use super::Problem;
use crate::app::App;
use crate::inventory::{valid_sku, ProductCommand, ProductDoc};

/// A new product.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewProduct {
    /// 1–64 letters, digits, `-`, `_`, `.`, starting with a letter or digit.
    pub sku: String,
    /// Display name (1–200 characters).
    pub name: String,
    /// Unit price, at least 0.
    pub price_cents: i64,
    /// Stock to start with, at least 0.
    pub initial_stock: i64,
}

/// Stock to add.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Restock {
    /// At least 1.
    pub quantity: i64,
}

/// A product command's outcome.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProductWritten {
    /// The product.
    pub sku: String,
    /// Position in the inventory log; pass as `min_position` to read it back.
    pub position: Option<String>,
}

/// `?min_position=`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Fresh {
    /// Wait until the read model has processed this position (`"<commit>.<prepare>"`).
    pub min_position: Option<String>,
}

/// Runs a product command, idempotently under `key` when there is one: a retry with the
/// same command answers the position of the first write, the key with another command
/// is 422. Keys are per product: the same key on another sku is another request.
async fn write<S: EventStore + SnapshotStore>(
    app: &App<S>,
    sku: &str,
    command: &ProductCommand,
    c: Correlation,
    key: Option<String>,
) -> Result<Option<String>, Problem> {
    let options = match key {
        Some(key) => CommandOptions::idempotent(key)
            .with_fingerprint(Fingerprint::of(command).map_err(Problem::internal)?),
        None => CommandOptions::default(),
    };
    let options = options.with_metadata(Metadata::correlated(c.0));
    match app.products.handle_with(sku, command, options).await {
        Ok(out) => Ok(out.position.map(|p| p.to_string())),
        Err(CommandError::KeyReused { .. }) => Err(Problem::key_reused(
            "Idempotency-Key: this key was used for a different request on this product",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Adds a product. With an `Idempotency-Key`, the same key and body answer the first
/// response again; the same key with another body is 422.
#[utoipa::path(post, path = "/v1/products", request_body = NewProduct,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = ProductWritten), (status = 400, response = super::ProblemBody),
        (status = 409, response = super::ProblemBody), (status = 413, response = super::ProblemBody),
        (status = 415, response = super::ProblemBody), (status = 422, response = super::ProblemBody),
        (status = 503, response = super::ProblemBody)))]
pub async fn create<S: EventStore + SnapshotStore>(
    State(app): State<Arc<App<S>>>,
    c: Correlation,
    headers: HeaderMap,
    Body(p): Body<NewProduct>,
) -> Result<(StatusCode, Json<ProductWritten>), Problem> {
    let key = idempotency_key(&headers)?;
    if !valid_sku(&p.sku) {
        return Err(Problem::invalid(
            "sku: use 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit",
        ));
    }
    let name = p.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Problem::invalid(
            "name: must have 1 to 200 characters, none of them control characters",
        ));
    }
    let command = ProductCommand::Add {
        sku: p.sku.clone(),
        name: name.to_owned(),
        price_cents: p.price_cents,
        initial_stock: p.initial_stock,
    };
    let position = write(&app, &p.sku, &command, c, key).await?;
    Ok((
        StatusCode::CREATED,
        Json(ProductWritten {
            sku: p.sku,
            position,
        }),
    ))
}

/// Adds stock to a product. With an `Idempotency-Key`, a retry adds nothing and
/// answers the first position; the same key with another quantity is 422.
#[utoipa::path(post, path = "/v1/products/{sku}/restock", request_body = Restock,
    params(("sku" = String, Path, description = "The product"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = ProductWritten), (status = 400, response = super::ProblemBody),
        (status = 404, response = super::ProblemBody), (status = 409, response = super::ProblemBody),
        (status = 413, response = super::ProblemBody), (status = 415, response = super::ProblemBody),
        (status = 422, response = super::ProblemBody), (status = 503, response = super::ProblemBody)))]
pub async fn restock<S: EventStore + SnapshotStore>(
    State(app): State<Arc<App<S>>>,
    PathParam(sku): PathParam<String>,
    c: Correlation,
    headers: HeaderMap,
    Body(r): Body<Restock>,
) -> Result<Json<ProductWritten>, Problem> {
    let key = idempotency_key(&headers)?;
    if !valid_sku(&sku) {
        return Err(Problem::not_found("no such product"));
    }
    let command = ProductCommand::Restock {
        quantity: r.quantity,
    };
    let position = write(&app, &sku, &command, c, key).await?;
    Ok(Json(ProductWritten { sku, position }))
}

/// Shows a product's stock (from the inventory read model).
#[utoipa::path(get, path = "/v1/products/{sku}", operation_id = "show_product", params(("sku" = String, Path, description = "The product"), Fresh),
    responses((status = 200, body = ProductDoc), (status = 400, response = super::ProblemBody),
        (status = 404, response = super::ProblemBody), (status = 503, response = super::ProblemBody)))]
pub async fn show<S: EventStore + SnapshotStore>(
    State(app): State<Arc<App<S>>>,
    PathParam(sku): PathParam<String>,
    Params(q): Params<Fresh>,
) -> Result<Json<ProductDoc>, Problem> {
    if !valid_sku(&sku) {
        return Err(Problem::not_found("no such product"));
    }
    let min = position("min_position", q.min_position.as_deref())?;
    wait_for(
        &app,
        &app.views.products.name(),
        min,
        app.settings.read_wait,
    )
    .await?;
    match app.views.products.get(&sku).await {
        Ok(Some(doc)) => Ok(Json(doc)),
        Ok(None) => Err(Problem::not_found("no such product")),
        Err(e) => Err(Problem::unavailable(e)),
    }
}
