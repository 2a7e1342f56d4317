//! What the server grants a client: timeouts, caps, sizes, the rate limit, and how long
//! a shutdown waits.

use std::time::Duration;

/// The server's limits. `Default` gives the defaults of `shop serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send a request's head (request line and header fields),
    /// counted from its first byte, or on a new connection from the connection's
    /// opening; then the connection is closed without an answer. Stops slow-header
    /// clients from holding connections.
    pub header_read_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request; then it is closed.
    /// Keep it above the idle timeout of a proxy in front (commonly 60 s), so the proxy
    /// never sends a request on a connection the server is closing.
    pub idle_timeout: Duration,
    /// Time a request may take from its head being read to its answer, body included:
    /// then 408 `request-timeout` if its body had not all arrived, else 503 `timeout`
    /// with `Retry-After`. A command cut by it may still have been written: retry it with
    /// the same `Idempotency-Key`.
    pub request_timeout: Duration,
    /// Connections open at once; further ones wait in the listen backlog until one
    /// closes.
    pub max_connections: usize,
    /// Requests being answered at once; further ones are refused at once, 503
    /// `overloaded` with `Retry-After` (load shedding). `/health/*`, `/metrics` and
    /// `/openapi.json` are not counted and never refused.
    pub max_requests: usize,
    /// Requests per second each client may send, keyed by its IP address (an IPv6 client
    /// by its /64); further ones get 429 `rate-limited` with `Retry-After`. 0: no
    /// limit. Behind a proxy every request comes from the proxy's address: limit there.
    pub rate_per_s: u32,
    /// Requests a client may send at once before the rate applies (0: `rate_per_s`).
    pub rate_burst: u32,
    /// Bytes of header fields a request may carry, counted as names and values plus 4
    /// per field (`: ` and the line end); beyond, 431 `header-too-large`. More than 100
    /// fields, or a head far beyond this (twice it and `max_uri_bytes`), is refused by
    /// hyper itself: 431 without a body.
    pub max_header_bytes: usize,
    /// Bytes of the request target (path and query); beyond, 414 `uri-too-long`.
    pub max_uri_bytes: usize,
    /// How long a shutdown waits for requests in flight before cutting them.
    pub shutdown_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            request_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_requests: 512,
            rate_per_s: 0,
            rate_burst: 0,
            max_header_bytes: 16 * 1024,
            max_uri_bytes: 8 * 1024,
            shutdown_deadline: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// The largest request head hyper buffers (it refuses a larger one with a bare 431):
    /// room for the shop's own checks to answer with a problem first.
    pub(crate) fn head_buffer(&self) -> usize {
        (2 * (self.max_header_bytes + self.max_uri_bytes)).max(8192)
    }
}
