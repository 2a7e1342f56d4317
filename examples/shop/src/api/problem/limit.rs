//! Problems of the server's limits (see [`crate::server::Limits`]).

use axum::http::StatusCode;

use super::Problem;

impl Problem {
    /// 503: as many requests as allowed are being answered (load shedding).
    pub fn overloaded() -> Self {
        let mut p = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "Server busy",
            "the server is answering as many requests as it may at once; retry later",
        );
        p.retry_after = Some(1);
        p
    }

    /// 503: the order pipeline has more work in hand than `serve --max-backlog`
    /// allows (admission control); new orders are taken again once it catches up.
    pub fn backlogged(backlog: u64) -> Self {
        let mut p = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "backlogged",
            "Orders paused",
            format!(
                "the order pipeline is {backlog} events, messages and commands behind, more \
                 than it takes new orders at; retry after Retry-After seconds"
            ),
        );
        p.retry_after = Some(1);
        p
    }

    /// 503: the answer took longer than the request timeout.
    pub fn timed_out() -> Self {
        let mut p = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "Request timed out",
            "the server did not answer within its request timeout; a write may still have \
             happened, so retry it with the same Idempotency-Key",
        );
        p.retry_after = Some(1);
        p
    }

    /// 408: the request's body did not all arrive within the request timeout.
    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            "Request timeout",
            "the request body did not arrive within the server's request timeout",
        )
    }

    /// 429: this client sent more requests than its rate allows; it may send again in
    /// `retry_after` seconds.
    pub fn rate_limited(per_s: u32, retry_after: u64) -> Self {
        let mut p = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            format!(
                "this client may send {per_s} requests a second; retry after Retry-After seconds"
            ),
        );
        p.retry_after = Some(retry_after);
        p
    }

    /// 431: the header fields are larger than `max` bytes in all.
    pub fn header_too_large(max: usize) -> Self {
        Self::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "header-too-large",
            "Request header fields too large",
            format!("header fields are limited to {max} bytes in all"),
        )
    }

    /// 414: the request target is longer than `max` bytes.
    pub fn uri_too_long(max: usize) -> Self {
        Self::new(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            "URI too long",
            format!("the request target (path and query) is limited to {max} bytes"),
        )
    }
}
