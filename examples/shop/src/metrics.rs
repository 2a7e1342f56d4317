//! Counters for `/metrics`, rendered as Prometheus text by hand.
//!
//! Hand-rolled rather than `metrics` + `metrics-exporter-prometheus`: the shop needs a
//! handful of counters, and the exporter would bring its own HTTP stack and a dozen
//! crates to a 2-core build.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// (method, route, status) → (requests, seconds spent).
type HttpCounters = BTreeMap<(&'static str, String, u16), (u64, f64)>;

/// The methods counted by name; any other is counted as `other`.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// The shop's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    http: Mutex<HttpCounters>,
    /// Orders placed through the API (replays not counted).
    pub orders_placed: AtomicU64,
}

impl Metrics {
    /// Counts one request and its duration. Labels come from closed sets, so clients
    /// cannot grow the counters: a method outside the standard ones is `other`, and
    /// `route` is a route template or `unmatched`.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = METHODS
            .into_iter()
            .find(|m| *m == method)
            .unwrap_or("other");
        let mut http = self
            .http
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = http.entry((method, route.to_owned(), status)).or_default();
        entry.0 += 1;
        entry.1 += seconds;
    }

    /// The counters as Prometheus text.
    pub fn render(&self, out: &mut String) {
        let http = self
            .http
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        out.push_str("# HELP shop_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE shop_http_requests_total counter\n");
        for ((m, r, s), (n, _)) in http.iter() {
            let _ = writeln!(
                out,
                "shop_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{s}\"}} {n}",
                escape(r)
            );
        }
        out.push_str(
            "# HELP shop_http_request_seconds_sum Time spent answering, by route and status.\n",
        );
        out.push_str("# TYPE shop_http_request_seconds_sum counter\n");
        for ((m, r, s), (_, secs)) in http.iter() {
            let _ = writeln!(out, "shop_http_request_seconds_sum{{method=\"{m}\",route=\"{}\",status=\"{s}\"}} {secs}", escape(r));
        }
        out.push_str("# HELP shop_orders_placed_total Orders placed.\n# TYPE shop_orders_placed_total counter\n");
        let _ = writeln!(
            out,
            "shop_orders_placed_total {}",
            self.orders_placed.load(Ordering::Relaxed)
        );
    }
}

/// Escapes a label value.
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
