//! Admin routes through the gateway: the admin token checked here first, then passed
//! on (the services check it too, so they share it).
//!
//! `GET /v1/admin/projections` asks the three services at once and answers
//! `{"services": {"ordering": …, "inventory": …, "payment": …}}`, each the service's own
//! status body, `null` for one that did not answer, which `degraded` then names. A
//! service that refuses (a 4xx: its token differs) is answered as it is. A rebuild goes
//! to the service its projection's name starts with (`payment_payments` → payment).

use std::collections::BTreeMap;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use uuid::Uuid;

use super::upstream::Call;
use super::{Gateway, Service};
use crate::api::Problem;

/// The merged status.
#[derive(Debug, Serialize)]
struct Merged {
    services: BTreeMap<&'static str, Option<serde_json::Value>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    degraded: Vec<&'static str>,
}

/// Whether a request may reach the admin routes: the gateway's admin token as
/// `Authorization: Bearer …` (401 otherwise); without one set, admin routes are off
/// (403).
pub fn admit(gateway: &Gateway, headers: &HeaderMap) -> Result<(), Problem> {
    let Some(token) = &gateway.admin_token else {
        return Err(Problem::forbidden(
            "admin routes are off: start the gateway with SHOP_ADMIN_TOKEN or --admin-token",
        ));
    };
    if token.matches_bearer(headers) {
        Ok(())
    } else {
        Err(Problem::unauthorized(
            "admin routes need `Authorization: Bearer <SHOP_ADMIN_TOKEN>`",
        ))
    }
}

/// `GET /v1/admin/projections` of every service, merged.
pub async fn status(gateway: &Gateway, incoming: &HeaderMap, correlation: Uuid) -> Response {
    let call = Call::get("/v1/admin/projections".to_owned(), incoming, correlation);
    let (ordering, inventory, payment) = tokio::join!(
        gateway.upstream(Service::Ordering).send(&call),
        gateway.upstream(Service::Inventory).send(&call),
        gateway.upstream(Service::Payment).send(&call),
    );
    let mut merged = Merged {
        services: BTreeMap::new(),
        degraded: Vec::new(),
    };
    for (service, answer) in Service::ALL.into_iter().zip([ordering, inventory, payment]) {
        let body = match answer {
            Ok(a) if a.status.is_client_error() => return a.into_response(),
            Ok(a) if a.status == StatusCode::OK => {
                match serde_json::from_slice::<serde_json::Value>(&a.body) {
                    Ok(body) => Some(body),
                    Err(e) => {
                        tracing::warn!(service = service.as_str(), error = %e, "unreadable admin status");
                        None
                    }
                }
            }
            Ok(a) => {
                tracing::warn!(service = service.as_str(), status = %a.status, "admin status refused");
                None
            }
            Err(problem) => {
                tracing::warn!(
                    service = service.as_str(),
                    cause = problem.cause.as_deref(),
                    "admin status missing"
                );
                None
            }
        };
        if body.is_none() {
            merged.degraded.push(service.as_str());
        }
        merged.services.insert(service.as_str(), body);
    }
    Json(merged).into_response()
}
