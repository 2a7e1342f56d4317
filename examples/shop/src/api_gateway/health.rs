//! The gateway's health: live while it runs; ready while every service answers its own
//! `/health/ready` with 200.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

use super::{Gateway, Service};
use crate::api::Correlation;

/// One service as the gateway sees it.
#[derive(Debug, Serialize)]
pub struct ServiceHealth {
    /// The `status` of its own readiness answer (`ready`, `degraded`, `not_ready`,
    /// `draining`), or `unreachable` when it gave none.
    pub status: String,
    /// The gateway's breaker of the calls to it: `closed`, `open` or `half_open`.
    pub breaker: &'static str,
}

/// The gateway's readiness.
#[derive(Debug, Serialize)]
pub struct Ready {
    /// `ready` when every service is, else `not_ready`.
    pub status: &'static str,
    /// Each service.
    pub services: BTreeMap<&'static str, ServiceHealth>,
    /// When not ready: `urn:uuid:` and the request's correlation id, under which the
    /// log has the reasons.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// `GET /health/live`.
pub async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "live" }))
}

/// `GET /health/ready`: the three services' readiness, asked at once; 503 unless all
/// three answer 200.
pub async fn ready(
    State(gateway): State<Arc<Gateway>>,
    Correlation(correlation): Correlation,
) -> (StatusCode, Json<Ready>) {
    let timeout = gateway.probe_timeout;
    let (ordering, inventory, payment) = tokio::join!(
        gateway.upstream(Service::Ordering).probe(timeout),
        gateway.upstream(Service::Inventory).probe(timeout),
        gateway.upstream(Service::Payment).probe(timeout),
    );
    let mut services = BTreeMap::new();
    let mut ok = true;
    for (service, probed) in Service::ALL.into_iter().zip([ordering, inventory, payment]) {
        let status = match probed {
            Ok((code, body)) => {
                ok &= code == StatusCode::OK;
                serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["status"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| format!("answered {}", code.as_u16()))
            }
            Err(e) => {
                ok = false;
                tracing::warn!(service = service.as_str(), error = %e, "not ready: a service does not answer");
                "unreachable".to_owned()
            }
        };
        let breaker = gateway.upstream(service).breaker().state().as_str();
        services.insert(service.as_str(), ServiceHealth { status, breaker });
    }
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Ready {
        status: if ok { "ready" } else { "not_ready" },
        services,
        instance: (!ok).then(|| format!("urn:uuid:{correlation}")),
    };
    (code, Json(body))
}

/// `GET /metrics`.
pub async fn metrics(State(gateway): State<Arc<Gateway>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        gateway.metrics.render(&gateway.upstreams),
    )
}
