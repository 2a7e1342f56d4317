//! The server's limits on requests, as middleware: sizes of the head (414, 431), then,
//! on the API's routes only, the per-client rate limit (429), load shedding (503) and
//! the request timeout (408 or 503). Health, metrics and OpenAPI routes skip the last
//! three: a probe must get through an overloaded server.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::Problem;
use crate::api_gateway::rate::{peer, Rate};
use crate::server::Limits;

mod body;

use body::Tracked;

/// What the API's middleware shares across requests.
#[derive(Debug, Clone)]
pub(super) struct Guards {
    limits: Limits,
    slots: Arc<Semaphore>,
    rate: Option<Arc<Rate<IpAddr>>>,
}

impl Guards {
    pub(super) fn new(limits: Limits) -> Self {
        Self {
            limits,
            slots: Arc::new(Semaphore::new(limits.max_requests)),
            rate: Rate::new(limits.rate_per_s, limits.rate_burst),
        }
    }
}

/// Refuses a request target longer than `max_uri_bytes` (414) or header fields larger
/// than `max_header_bytes` (431).
pub(super) async fn sizes(State(limits): State<Limits>, req: Request, next: Next) -> Response {
    let uri = req.uri();
    let uri_bytes = uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(0, |p| p.as_str().len());
    if uri_bytes > limits.max_uri_bytes {
        return Problem::uri_too_long(limits.max_uri_bytes).into_response();
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > limits.max_header_bytes {
        return Problem::header_too_large(limits.max_header_bytes).into_response();
    }
    next.run(req).await
}

/// The rate limit (by the peer address, an IPv6 one by its /64; a request that did not
/// come over a socket is not counted), then a slot among `max_requests` or 503, then
/// the request timeout.
pub(super) async fn admit(State(guards): State<Guards>, req: Request, next: Next) -> Response {
    if let Some(rate) = &guards.rate {
        let socket = req.extensions().get::<ConnectInfo<SocketAddr>>();
        if let Some(Err(retry_after)) = socket.map(|s| rate.check(&peer(s.0.ip()))) {
            return Problem::rate_limited(rate.per_s(), retry_after).into_response();
        }
    }
    let Ok(_slot) = guards.slots.clone().try_acquire_owned() else {
        return Problem::overloaded().into_response();
    };
    let (parts, body) = req.into_parts();
    let (body, received) = Tracked::wrap(body);
    let answer = next.run(Request::from_parts(parts, body));
    match tokio::time::timeout(guards.limits.request_timeout, answer).await {
        Ok(response) => response,
        Err(_) if received.load(Ordering::Relaxed) => Problem::timed_out().into_response(),
        Err(_) => Problem::request_timeout().into_response(),
    }
}
