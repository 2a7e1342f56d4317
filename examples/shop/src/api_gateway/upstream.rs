//! One upstream service: its base URL, an HTTP client, and the guards every call to it
//! passes (the framework's resilience module: bulkhead, circuit breaker, timeout; no
//! retry, as a forwarded write may not be safe to send twice).
//!
//! Only a call that gets no answer counts as a breaker failure (refused, cut, timed
//! out): an answer of any status means the service is up, and is passed on as it is.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use tessera_projections::resilience::{CallError, CircuitBreaker, Resilience, ResilienceConfig};
use uuid::Uuid;

use crate::api::{Problem, CORRELATION};

/// A service behind the gateway: one of the split shop's.
pub use crate::service::Service;

/// Request headers passed on to a service; the correlation id is set by the gateway.
const FORWARDED: [HeaderName; 5] = [
    header::CONTENT_TYPE,
    header::ACCEPT,
    header::AUTHORIZATION,
    header::ORIGIN,
    HeaderName::from_static("idempotency-key"),
];

/// Response headers not passed back: hop-by-hop ones, and the length (the gateway's
/// server sets its own).
const NOT_RETURNED: [HeaderName; 6] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::CONTENT_LENGTH,
];

/// An answer of a service, read whole.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl Answer {
    /// The answer as the gateway's response, byte for byte (hop-by-hop headers left out).
    pub fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        for (name, value) in &self.headers {
            if !NOT_RETURNED.contains(name) {
                headers.append(name, value.clone());
            }
        }
        response
    }
}

/// A request to a service.
#[derive(Debug, Clone)]
pub struct Call {
    /// Method.
    pub method: Method,
    /// Path and query, as the client sent them (`/v1/orders?limit=5`).
    pub target: String,
    /// Headers (see [`Call::headers_of`]).
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Call {
    /// A `GET` of `target` carrying `correlation` and the client's authorization.
    pub fn get(target: String, incoming: &HeaderMap, correlation: Uuid) -> Self {
        let mut headers = Self::headers_of(incoming, correlation);
        headers.remove(header::CONTENT_TYPE);
        Self {
            method: Method::GET,
            target,
            headers,
            body: Bytes::new(),
        }
    }

    /// The headers of `incoming` a service gets: content type, accept, authorization,
    /// origin, `Idempotency-Key` (every value, so the service refuses a repeated one as
    /// it would), and the request's correlation id.
    pub fn headers_of(incoming: &HeaderMap, correlation: Uuid) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for name in &FORWARDED {
            for value in incoming.get_all(name) {
                headers.append(name, value.clone());
            }
        }
        if let Ok(id) = HeaderValue::from_str(&correlation.to_string()) {
            headers.insert(CORRELATION, id);
        }
        headers
    }
}

/// A service and the guards of the calls to it. Clones share the guards.
#[derive(Debug, Clone)]
pub struct Upstream {
    service: Service,
    base: String,
    client: reqwest::Client,
    guard: Resilience,
}

impl Upstream {
    /// `service` at `base` (`http://host:port`), calls guarded per `config`.
    pub fn new(service: Service, base: &str, config: ResilienceConfig) -> Result<Self, String> {
        let url = reqwest::Url::parse(base).map_err(|e| format!("--{}: {e}", service.as_str()))?;
        if url.scheme() != "http" || url.host_str().is_none() || url.query().is_some() {
            return Err(format!(
                "--{}: give http://host:port (optionally a path prefix)",
                service.as_str()
            ));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            service,
            base: base.trim_end_matches('/').to_owned(),
            client,
            // `tessera_breaker_state{route="gateway_ordering"}`, ... on the gateway's
            // /metrics beside its own breaker series.
            guard: Resilience::new(config).with_name(&format!("gateway_{}", service.as_str())),
        })
    }

    /// Which service it is.
    pub fn service(&self) -> Service {
        self.service
    }

    /// The breaker of the calls to it.
    pub fn breaker(&self) -> &CircuitBreaker {
        self.guard.breaker()
    }

    /// Sends `call` under the guards. No answer (refused, cut, timed out, breaker open,
    /// too many calls in flight) is a 503 problem, an answer that could not be read a
    /// 502; the cause goes to the log.
    pub async fn send(&self, call: &Call) -> Result<Answer, Problem> {
        let url = format!("{}{}", self.base, call.target);
        let attempt = || async {
            let span = crate::traces::client_span(&call.method, self.service.as_str(), &url);
            let mut headers = call.headers.clone();
            crate::traces::inject(&span, &mut headers);
            let answer = async {
                let response = self
                    .client
                    .request(call.method.clone(), &url)
                    .headers(headers)
                    .body(call.body.clone())
                    .send()
                    .await?;
                let status = response.status();
                let headers = response.headers().clone();
                let body = response.bytes().await?;
                Ok::<_, reqwest::Error>(Answer {
                    status,
                    headers,
                    body,
                })
            };
            let answer = tracing::Instrument::instrument(answer, span.clone()).await;
            if let Ok(a) = &answer {
                crate::traces::answered(&span, a.status.as_u16(), false);
            }
            answer
        };
        self.guard
            .call(|_: &reqwest::Error| true, attempt)
            .await
            .map_err(|e| self.problem(&e))
    }

    fn problem(&self, error: &CallError<reqwest::Error>) -> Problem {
        let service = self.service;
        match error {
            CallError::Transient(e) | CallError::Permanent(e)
                if !(e.is_connect() || e.is_timeout() || e.is_request()) =>
            {
                Problem::bad_upstream(service, error)
            }
            _ => Problem::upstream_down(service, error),
        }
    }

    /// `GET /health/ready` of the service, outside the guards (a probe must reach a
    /// service whose breaker is open): its status and body, or why there is none.
    pub async fn probe(&self, timeout: Duration) -> Result<(StatusCode, Bytes), String> {
        let url = format!("{}/health/ready", self.base);
        let answer = async {
            let response = self.client.get(&url).send().await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.bytes().await?))
        };
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }
}
