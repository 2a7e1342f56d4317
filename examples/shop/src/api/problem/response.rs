//! A problem as an HTTP response.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{Problem, TYPE_BASE};

/// The JSON body of a problem.
#[derive(Debug, Serialize, utoipa::ToSchema, utoipa::ToResponse)]
#[response(description = "A problem", content_type = "application/problem+json")]
pub struct ProblemBody {
    /// Stable URI of the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Summary of the type.
    pub title: &'static str,
    /// HTTP status.
    pub status: u16,
    /// What went wrong this time (for a 5xx, a fixed sentence).
    pub detail: String,
    /// This occurrence: `urn:uuid:` and the request's correlation id, which the
    /// server's log lines about it carry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// The body, `Content-Type: application/problem+json` and `Retry-After`; the problem
/// itself rides along in the response's extensions, for the middleware to log its cause
/// and answer it again [`Problem::at`] the request's correlation id.
impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = ProblemBody {
            kind: format!("{TYPE_BASE}{}", self.kind),
            title: self.title,
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            instance: self.instance.map(|id| format!("urn:uuid:{id}")),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(self);
        response
    }
}
