//! Trace context in the log: one trace from a request to every step it causes.
//!
//! With the `opentelemetry` feature and a [`tracing-opentelemetry`] layer installed, the
//! [`CommandHandler`](crate::CommandHandler) records the current span's W3C trace
//! context (`traceparent`, `tracestate`) in the metadata of the events it appends, and
//! every reader that acts on an event (projection runners, process managers and their
//! dispatches, relays, inboxes) continues that trace with a span of its own: one trace
//! shows the request, the command, the append, the relay, the broker, the inbox, the
//! saga and the read models that applied it, across processes and restarts (the
//! context is stored with the event).
//!
//! Without the feature, or with no OpenTelemetry layer, [`TraceContext::current`] is
//! `None`, nothing is recorded and readers start no spans for it: tracing costs nothing
//! when it is off.
//!
//! ```
//! use tessera_core::trace::TraceContext;
//! use tessera_core::Metadata;
//!
//! let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
//! let metadata = Metadata::default().with_header("traceparent", traceparent);
//! let context = TraceContext::of(&metadata).expect("a trace context");
//! assert_eq!(context.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
//! ```
//!
//! [`tracing-opentelemetry`]: https://docs.rs/tracing-opentelemetry

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Metadata;

/// The W3C header (and metadata header) naming the trace and the parent span.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C header carrying vendor trace state.
pub const TRACESTATE: &str = "tracestate";

/// A W3C trace context: where in which trace something happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    /// `00-{trace id}-{parent span id}-{flags}`.
    pub traceparent: String,
    /// Vendor state, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The trace context recorded in `metadata`, if any.
    pub fn of(metadata: &Metadata) -> Option<Self> {
        Self::from_headers(&metadata.headers)
    }

    /// The trace context in `headers` (`traceparent`, `tracestate`), if any.
    pub fn from_headers(headers: &BTreeMap<String, String>) -> Option<Self> {
        let traceparent = headers.get(TRACEPARENT)?;
        Some(Self {
            traceparent: traceparent.clone(),
            tracestate: headers.get(TRACESTATE).cloned(),
        })
    }

    /// Writes it into `headers`.
    pub fn write_to(&self, headers: &mut BTreeMap<String, String>) {
        headers.insert(TRACEPARENT.to_owned(), self.traceparent.clone());
        if let Some(state) = &self.tracestate {
            headers.insert(TRACESTATE.to_owned(), state.clone());
        }
    }

    /// Its trace id (32 hex digits), if its `traceparent` is well formed.
    pub fn trace_id(&self) -> Option<&str> {
        let mut parts = self.traceparent.split('-');
        let (_version, trace, span) = (parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        (hex(trace, 32) && hex(span, 16)).then_some(trace)
    }

    /// The trace context of the current span, when it is traced (the `opentelemetry`
    /// feature and an OpenTelemetry layer); otherwise `None`.
    pub fn current() -> Option<Self> {
        Self::of_span(&tracing::Span::current())
    }

    /// The trace context of `span`, when it is traced.
    pub fn of_span(span: &tracing::Span) -> Option<Self> {
        otel::of_span(span)
    }

    /// Makes `span` a child of this context (call it before the span is first entered).
    /// Does nothing when tracing is off or the context is malformed.
    pub fn parent(&self, span: &tracing::Span) {
        otel::parent(span, self);
    }

    /// Links `span` to this context (for work that follows from it but is not part of
    /// it, such as a deadline firing hours after it was set).
    pub fn link(&self, span: &tracing::Span) {
        otel::link(span, self);
    }
}

/// Records the current span's trace context in `metadata` (replacing one there), when
/// the current span is traced.
pub fn inject(metadata: &mut Metadata) {
    if let Some(context) = TraceContext::current() {
        context.write_to(&mut metadata.headers);
    }
}

#[cfg(feature = "opentelemetry")]
mod otel {
    use std::str::FromStr;

    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::TraceContext;

    pub(super) fn of_span(span: &tracing::Span) -> Option<TraceContext> {
        if span.is_disabled() {
            return None;
        }
        let context = span.context();
        let span_ref = context.span();
        let sc = span_ref.span_context();
        if !sc.is_valid() {
            return None;
        }
        let state = sc.trace_state();
        Some(TraceContext {
            traceparent: format!(
                "00-{}-{}-{:02x}",
                sc.trace_id(),
                sc.span_id(),
                sc.trace_flags().to_u8()
            ),
            tracestate: (*state != TraceState::NONE)
                .then(|| state.header())
                .filter(|h| !h.is_empty()),
        })
    }

    fn span_context(context: &TraceContext) -> Option<SpanContext> {
        let mut parts = context.traceparent.trim().split('-');
        let version = parts.next()?;
        let trace = TraceId::from_hex(parts.next()?).ok()?;
        let span = SpanId::from_hex(parts.next()?).ok()?;
        let flags = u8::from_str_radix(parts.next()?, 16).ok()?;
        if version == "ff" || trace == TraceId::INVALID || span == SpanId::INVALID {
            return None;
        }
        let state = context
            .tracestate
            .as_deref()
            .and_then(|s| TraceState::from_str(s).ok())
            .unwrap_or_default();
        Some(SpanContext::new(
            trace,
            span,
            TraceFlags::new(flags),
            true,
            state,
        ))
    }

    pub(super) fn parent(span: &tracing::Span, context: &TraceContext) {
        if let Some(sc) = span_context(context) {
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(sc));
        }
    }

    pub(super) fn link(span: &tracing::Span, context: &TraceContext) {
        if let Some(sc) = span_context(context) {
            span.add_link(sc);
        }
    }
}

#[cfg(not(feature = "opentelemetry"))]
mod otel {
    use super::TraceContext;

    pub(super) fn of_span(_: &tracing::Span) -> Option<TraceContext> {
        None
    }

    pub(super) fn parent(_: &tracing::Span, _: &TraceContext) {}

    pub(super) fn link(_: &tracing::Span, _: &TraceContext) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_malformed_ids_have_no_trace_id() {
        let context = TraceContext {
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
            tracestate: Some("vendor=1".to_owned()),
        };
        let mut headers = BTreeMap::new();
        context.write_to(&mut headers);
        assert_eq!(TraceContext::from_headers(&headers), Some(context));
        let bad = TraceContext {
            traceparent: "00-xyz-00f067aa0ba902b7-01".to_owned(),
            tracestate: None,
        };
        assert_eq!(bad.trace_id(), None);
        assert_eq!(TraceContext::from_headers(&BTreeMap::new()), None);
    }

    #[test]
    fn without_a_traced_span_nothing_is_recorded() {
        let mut metadata = Metadata::default();
        inject(&mut metadata);
        assert!(metadata.is_empty());
    }
}
