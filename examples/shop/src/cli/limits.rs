//! `shop serve`'s flags for the server's limits.

use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::Args;

use crate::server::Limits;

/// Longest of the timeouts and the shutdown deadline, in seconds: an hour.
pub const MAX_TIMEOUT_S: u64 = 3600;
/// Most `--max-connections` and `--max-requests`.
pub const MAX_CONNECTIONS: u64 = 1_000_000;
/// Most `--max-header-bytes`: 256 KiB.
pub const MAX_HEADER_BYTES: u64 = 256 * 1024;
/// Most `--max-uri-bytes`: 32 KiB (hyper refuses a target over 64 KiB itself).
pub const MAX_URI_BYTES: u64 = 32 * 1024;

fn ranged(min: u64, max: u64) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(min..=max)
}

/// The server's limits (defaults in [`Limits::default`]).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Server limits")]
pub struct LimitArgs {
    /// Seconds a client has to send a request's head (request line and headers), from
    /// its first byte or, on a new connection, from connecting; then the connection is
    /// closed (1 to 3600).
    #[arg(long, default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_S))]
    pub header_read_timeout_s: u64,
    /// Seconds a keep-alive connection may wait for its next request before it is
    /// closed; keep it above the idle timeout of a proxy in front, often 60 (1 to 3600).
    #[arg(long, default_value_t = 75,
        value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_S))]
    pub idle_timeout_s: u64,
    /// Seconds a request may take, its body included: then 408 if the body had not
    /// arrived, else 503 with Retry-After. Must exceed --read-wait-ms (1 to 3600).
    #[arg(long, default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_S))]
    pub request_timeout_s: u64,
    /// Connections open at once; more wait in the listen backlog. Keep `ulimit -n`
    /// above it (1 to 1000000).
    #[arg(long, default_value_t = 10_000, value_parser = ranged(1, MAX_CONNECTIONS))]
    pub max_connections: usize,
    /// Requests answered at once; more are refused with 503 and Retry-After. Health,
    /// metrics and OpenAPI routes are not counted (1 to 1000000).
    #[arg(long, default_value_t = 512, value_parser = ranged(1, MAX_CONNECTIONS))]
    pub max_requests: usize,
    /// Requests per second each client IP address (an IPv6 client by its /64) may
    /// send; more get 429 with Retry-After. 0, the default: no limit (behind a proxy
    /// every client has the proxy's address: limit there).
    #[arg(long, default_value_t = 0)]
    pub rate_limit: u32,
    /// Requests a client may send at once before --rate-limit applies (default: the
    /// rate).
    #[arg(long, requires = "rate_limit", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: Option<u32>,
    /// Bytes of header fields a request may carry (names, values and 4 a field); more
    /// get 431 (1024 to 262144).
    #[arg(long, default_value_t = 16 * 1024, value_parser = ranged(1024, MAX_HEADER_BYTES))]
    pub max_header_bytes: usize,
    /// Bytes of a request's target (path and query); more get 414 (256 to 32768).
    #[arg(long, default_value_t = 8 * 1024, value_parser = ranged(256, MAX_URI_BYTES))]
    pub max_uri_bytes: usize,
    /// Seconds a shutdown (SIGTERM, Ctrl-C) waits for requests in flight before cutting
    /// them; readiness answers 503 and new connections are refused meanwhile. Runners
    /// then stop after their current batch (0 to 3600).
    #[arg(long, default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_S))]
    pub shutdown_timeout_s: u64,
}

impl LimitArgs {
    /// The limits these flags give.
    pub fn limits(&self) -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_s),
            idle_timeout: Duration::from_secs(self.idle_timeout_s),
            request_timeout: Duration::from_secs(self.request_timeout_s),
            max_connections: self.max_connections,
            max_requests: self.max_requests,
            rate_per_s: self.rate_limit,
            rate_burst: self.rate_limit_burst.unwrap_or(0),
            max_header_bytes: self.max_header_bytes,
            max_uri_bytes: self.max_uri_bytes,
            shutdown_deadline: Duration::from_secs(self.shutdown_timeout_s),
        }
    }
}
