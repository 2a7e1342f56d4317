//! Errors as `application/problem+json` (RFC 9457), each with a stable `type`.
//!
//! A 5xx never tells the client what broke inside: its `detail` is a fixed sentence and
//! its `instance` the request's correlation id (`urn:uuid:…`); the error behind it
//! ([`Problem::cause`]) goes to the log, once, under that correlation id (the API's
//! middleware sets `instance` and writes the log line).

use std::fmt::Display;

use axum::http::StatusCode;
use tessera_core::StoreError;

mod domain;
mod limit;
mod response;

pub use domain::DomainProblem;
pub use response::ProblemBody;

/// Prefix of every problem `type`.
pub const TYPE_BASE: &str = "https://tessera.example/problems/";

/// An error answer. The `type` is [`TYPE_BASE`] + `kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable slug of the problem type.
    pub kind: &'static str,
    /// Short, fixed summary of the type.
    pub title: &'static str,
    /// This occurrence, naming the bad field where there is one; a fixed sentence for
    /// a 5xx.
    pub detail: String,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
    /// The error behind a 5xx, for the log only (never in the body).
    pub cause: Option<Box<str>>,
    /// The correlation id of the request answered, shown as the `instance`
    /// `urn:uuid:…`.
    pub instance: Option<uuid::Uuid>,
}

impl Problem {
    fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            title,
            detail: detail.into(),
            retry_after: None,
            cause: None,
            instance: None,
        }
    }

    /// A 5xx whose client sees `detail` (fixed) and whose log gets `cause`.
    fn server_side(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: &'static str,
        cause: impl Display,
    ) -> Self {
        let mut p = Self::new(status, kind, title, detail);
        p.cause = Some(cause.to_string().into());
        p
    }

    /// This problem as the answer to the request with correlation id `correlation`.
    #[must_use]
    pub fn at(mut self, correlation: uuid::Uuid) -> Self {
        self.instance = Some(correlation);
        self
    }

    /// 400: the body or query cannot be read (malformed JSON, a wrong type).
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "Malformed request",
            detail,
        )
    }

    /// 415: the body is not JSON.
    pub fn media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            detail,
        )
    }

    /// 413: the body is over the limit.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Request body too large",
            detail,
        )
    }

    /// 422: a rule is broken; `detail` names the field.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
            "Validation failed",
            detail,
        )
    }

    /// 422: an order line names a product that does not exist.
    pub fn unknown_sku(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-sku",
            "Unknown product",
            detail,
        )
    }

    /// 422: an idempotency key reused with another body.
    pub fn key_reused(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency key reused with a different request",
            detail,
        )
    }

    /// 404: no such resource.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 405: the route exists, not with this method.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            "this route does not accept that method",
        )
    }

    /// 409: the resource is not in a state that allows this.
    pub fn conflict(kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, kind, title, detail)
    }

    /// 401: admin route without the right token.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }

    /// 403: admin routes off (no token set, no `--admin-open`), or a state-changing admin
    /// request from another origin.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 503: a store or read model is down; `cause` goes to the log only.
    pub fn unavailable(cause: impl Display) -> Self {
        let mut p = Self::server_side(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            "a store or read model did not answer; retry later (the server's log has the \
             details under this instance)",
            cause,
        );
        p.retry_after = Some(1);
        p
    }

    /// 503: read models not yet at the asked position; `cause` goes to the log only.
    pub fn not_ready(cause: impl Display) -> Self {
        let mut p = Self::server_side(
            StatusCode::SERVICE_UNAVAILABLE,
            "read-model-behind",
            "Read model not yet at the requested position",
            "the read model did not reach min_position in time; retry later",
            cause,
        );
        p.retry_after = Some(1);
        p
    }

    /// 500: a bug or corrupt data; `cause` goes to the log only.
    pub fn internal(cause: impl Display) -> Self {
        Self::server_side(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server could not answer; its log has the details under this instance",
            cause,
        )
    }

    /// From a store error.
    pub fn store(e: &StoreError) -> Self {
        match e {
            StoreError::Unavailable { .. } => Self::unavailable(e),
            StoreError::InvalidStreamId(id) => Self::invalid(format!("invalid id: {}", id.reason)),
            _ => Self::internal(e),
        }
    }
}
