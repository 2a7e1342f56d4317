//! `/metrics`: the shop's own counters, rendered as Prometheus text by hand, followed by
//! what the libraries and the shop record through the `metrics` facade, rendered by the
//! `metrics-exporter-prometheus` recorder installed once per process ([`install`]; its
//! recorder only, with no HTTP listener of its own: the API serves the text).
//!
//! The series written by hand are per app (a test process runs several), and they
//! stay as they were; where the recorder holds a family of the same name (the runner and
//! inbox figures the libraries also record), the hand-written one is served and the
//! recorder's left out, so no family appears twice.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The process's recorder, if this process installed it.
static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Buckets of the latency histograms (names ending `_seconds`), in seconds.
const SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets of the other histograms (events per append, batch and group sizes).
const SIZES: [f64; 10] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// Installs the Prometheus recorder as the process's global `metrics` recorder, once,
/// with a thread that runs its upkeep (histograms drained into their buckets) every
/// few seconds. If another recorder is installed already, the shop renders none.
pub fn install() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets(&SIZES)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS));
            let handle = match built.and_then(PrometheusBuilder::install_recorder) {
                Ok(handle) => handle,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed; /metrics shows the shop's own series only");
                    return None;
                }
            };
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no metrics upkeep thread; histograms drain when scraped");
            }
            Some(handle)
        })
        .as_ref()
}

/// Appends the recorder's rendering to `out`, leaving out every family `out` already
/// declares (`# TYPE name ...`).
pub fn render_recorded(out: &mut String) {
    let Some(handle) = install() else { return };
    let written: HashSet<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let mut skip = false;
    for line in handle.render().lines() {
        let family = line
            .strip_prefix("# TYPE ")
            .or_else(|| line.strip_prefix("# HELP "))
            .and_then(|l| l.split_whitespace().next());
        if let Some(family) = family {
            skip = written.contains(family);
        }
        if !skip && !line.is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
}

/// The class of an HTTP status: `2xx`, `4xx`...
fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

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
        drop(http);
        metrics::histogram!(
            "shop_http_request_duration_seconds",
            "method" => method,
            "route" => route.to_owned(),
            "status_class" => status_class(status),
        )
        .record(seconds);
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
