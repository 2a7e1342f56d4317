//! `/openapi.json`: the OpenAPI 3 document, generated from the handlers and types.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, health, orders, parts, products, ProblemBody};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tessera shop", description = "The Tessera example shop: ordering, payment and inventory contexts and the fulfilment saga. Errors are application/problem+json. Any operation under /v1 may also answer the server's limits: 408 request-timeout, 414 uri-too-long, 429 rate-limited, 431 header-too-large, 503 overloaded or timeout (429 and 503 with Retry-After)."),
    paths(
        products::create, products::restock, products::show,
        orders::place::place, orders::show, orders::list, orders::cancel,
        parts::payment, parts::reservation,
        admin::status, admin::rebuild,
        health::live, health::ready, health::metrics,
    ),
    components(responses(ProblemBody)),
    modifiers(&Bearer),
)]
struct Doc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

/// Serves the OpenAPI document.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
