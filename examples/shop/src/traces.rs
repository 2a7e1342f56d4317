//! Traces: export over OTLP when the standard `OTEL_*` variables ask for it, and the
//! HTTP spans that carry the W3C trace context in and out of the shop.
//!
//! Export is on when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
//! is set (OTLP over HTTP/protobuf, e.g. `http://collector:4318`); the exporter reads
//! the other standard variables itself (`OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT`),
//! the batch processor its own (`OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_QUEUE_SIZE`),
//! and `OTEL_SERVICE_NAME` names the service (default `shop` or `shop-{service}`).
//! `OTEL_SDK_DISABLED=true` turns it off. Off, no OpenTelemetry layer is installed:
//! no trace context is recorded and nothing costs anything.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tessera_core::trace::{TraceContext, TRACEPARENT, TRACESTATE};

/// Whether the environment asks for trace export.
pub fn wanted() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The exporting tracer provider: keep it, and [`shutdown`](Self::shutdown) it at exit so the last
/// spans are sent.
pub struct Export {
    provider: SdkTracerProvider,
}

impl Export {
    /// Builds the OTLP exporter and its batch processor for service `service`
    /// (`OTEL_SERVICE_NAME` wins).
    pub fn start(service: &str) -> Result<Self, String> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| format!("cannot start the OTLP trace exporter: {e}"))?;
        let name = std::env::var("OTEL_SERVICE_NAME")
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| service.to_owned());
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(name)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok(Self { provider })
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans.
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        // Without the per-span source location, thread and busy/idle attributes the
        // layer adds by default: seven fewer attributes to build and send per span, and
        // no clock reading at every poll of an instrumented future.
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("tessera-shop"))
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
    }

    /// Sends what is left and stops the exporter.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("shop: the trace exporter did not shut down cleanly: {e}");
        }
    }
}

/// The span of one HTTP request a server answers (`request`), named `{method} {route}`
/// and, when the request carries a `traceparent`, a child of the caller's span.
pub fn server_span(
    method: &axum::http::Method,
    route: &str,
    correlation: uuid::Uuid,
    headers: &HeaderMap,
) -> tracing::Span {
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        %method,
        route = %route,
        correlation_id = %correlation,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    if let Some(context) = incoming(headers) {
        context.parent(&span);
    }
    // Logs inside the request name its trace and span beside the correlation id.
    if let Some(context) = TraceContext::of_span(&span) {
        let mut parts = context.traceparent.split('-').skip(1);
        if let (Some(trace), Some(id)) = (parts.next(), parts.next()) {
            span.record("trace_id", trace);
            span.record("span_id", id);
        }
    }
    span
}

/// Records the answer's status on a span of [`server_span`] or [`client_span`].
pub fn answered(span: &tracing::Span, status: u16, server: bool) {
    span.record("http.response.status_code", status);
    if status >= 500 || (!server && status >= 400) {
        span.record("otel.status_code", "ERROR");
    }
}

/// The span of one call to service `service` (`call`), a child of the current span.
pub fn client_span(method: &axum::http::Method, service: &str, url: &str) -> tracing::Span {
    tracing::info_span!(
        "call",
        otel.name = %method,
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.response.status_code = tracing::field::Empty,
        url.full = %url,
        tessera.service = service,
    )
}

/// Puts `span`'s trace context on an outgoing request's `headers`, when traced.
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    let Some(context) = TraceContext::of_span(span) else {
        return;
    };
    if let Ok(v) = HeaderValue::from_str(&context.traceparent) {
        headers.insert(HeaderName::from_static(TRACEPARENT), v);
    }
    match context.tracestate.as_deref().map(HeaderValue::from_str) {
        Some(Ok(v)) => {
            headers.insert(HeaderName::from_static(TRACESTATE), v);
        }
        _ => {
            headers.remove(TRACESTATE);
        }
    }
}

/// The trace context an incoming request carries, if any.
fn incoming(headers: &HeaderMap) -> Option<TraceContext> {
    let traceparent = headers.get(TRACEPARENT)?.to_str().ok()?;
    Some(TraceContext {
        traceparent: traceparent.to_owned(),
        tracestate: headers
            .get(TRACESTATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use axum::http::Method;
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// With an OpenTelemetry layer, a JSON log line inside a request carries the
    /// request span's `trace_id` and `span_id` beside its correlation id, and a request
    /// with a `traceparent` is continued in the caller's trace.
    #[test]
    fn json_logs_name_the_trace_and_span_of_the_request() {
        let provider = SdkTracerProvider::builder().build();
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(move || writer.clone()),
            );
        let caller = "4bf92f3577b34da6a3ce929d0e0e4736";
        let mut headers = HeaderMap::new();
        headers.insert(
            TRACEPARENT,
            HeaderValue::from_str(&format!("00-{caller}-00f067aa0ba902b7-01")).unwrap(),
        );
        let correlation = uuid::Uuid::new_v4();
        let context = tracing::subscriber::with_default(subscriber, || {
            let span = server_span(&Method::POST, "/v1/orders", correlation, &headers);
            span.in_scope(|| tracing::warn!("inside"));
            TraceContext::of_span(&span).expect("traced")
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
        let span = &line["span"];
        assert_eq!(span["trace_id"], caller, "{line}");
        assert_eq!(span["correlation_id"], correlation.to_string());
        let own = context.traceparent.split('-').nth(2).unwrap();
        assert_eq!(span["span_id"], own);
        assert_ne!(
            own, "00f067aa0ba902b7",
            "a span of its own, child of the caller's"
        );
    }
}
