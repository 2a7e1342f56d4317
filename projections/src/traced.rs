//! Spans that continue the trace an event carries (see [`tessera_core::trace`]).

use tessera_core::trace::{TraceContext, TRACEPARENT};
use tessera_core::RecordedEvent;

/// One span per event of `events` that carries a trace context, each a child of that
/// context: what `subscriber` did with the event shows in the trace of the request that
/// caused it. Nothing is created for events without one (tracing off when they were
/// written). The spans end when the returned vector is dropped, after the work.
pub(crate) fn applying(subscriber: &str, events: &[RecordedEvent]) -> Vec<tracing::Span> {
    events
        .iter()
        .filter_map(|e| {
            let trace = TraceContext::of(&e.metadata)?;
            let span = tracing::info_span!(
                "apply",
                otel.name = %format_args!("apply {subscriber}"),
                tessera.subscriber = subscriber,
                tessera.stream = %e.stream_id,
                tessera.event_type = %e.event_type,
                tessera.position = %e.position,
                tessera.batch_size = events.len(),
            );
            trace.parent(&span);
            Some(span)
        })
        .collect()
}

/// Most links a batch span carries.
const BATCH_LINKS: usize = 32;

/// The span of one batch `subscriber` applies, when any of its events carries a trace
/// context (`None` otherwise: tracing off): a root, with the batch's size, the runner's
/// lag in events (as of its last status refresh) and in seconds (the age of the batch's
/// first event), and links to the traces of its first events, as the messaging
/// conventions have batch processing link to what it processes.
pub(crate) fn batch(
    subscriber: &str,
    events: &[RecordedEvent],
    lag_events: impl FnOnce() -> u64,
) -> Option<tracing::Span> {
    let first = events.first()?;
    // A header lookup, no copy: the usual answer, with tracing off, is no.
    if !events
        .iter()
        .any(|e| e.metadata.headers.contains_key(TRACEPARENT))
    {
        return None;
    }
    let lag_events = lag_events();
    let lag = std::time::SystemTime::now()
        .duration_since(first.recorded_at)
        .unwrap_or_default();
    let span = tracing::info_span!(
        parent: None,
        "batch",
        otel.name = %format_args!("batch {subscriber}"),
        tessera.subscriber = subscriber,
        tessera.batch_size = events.len(),
        tessera.lag_events = lag_events,
        tessera.lag_seconds = lag.as_secs_f64(),
        tessera.from = %first.position,
    );
    for trace in events
        .iter()
        .filter_map(|e| TraceContext::of(&e.metadata))
        .take(BATCH_LINKS)
    {
        trace.link(&span);
    }
    Some(span)
}

/// The `messaging.system` of the bus `described` names (its URL or description).
pub(crate) fn messaging_system(described: &str) -> &'static str {
    if described.starts_with("nats") {
        "nats"
    } else if described.starts_with("amqp") {
        "rabbitmq"
    } else {
        "tessera_memory"
    }
}

/// One producer span per message of `messages` that carries a trace context, each a
/// child of it, and the message's context replaced by its span's: the consumer's span
/// becomes a child of the publish. The spans end when the vector is dropped.
pub(crate) fn publishing(
    system: &'static str,
    messages: &mut [crate::integration::Message],
) -> Vec<tracing::Span> {
    messages
        .iter_mut()
        .filter_map(|m| {
            let trace = TraceContext::from_headers(&m.headers)?;
            let span = tracing::info_span!(
                "publish",
                otel.name = %format_args!("publish {}", m.subject),
                otel.kind = "producer",
                messaging.system = system,
                messaging.operation.type = "send",
                messaging.destination.name = %m.subject,
                messaging.message.id = %m.id,
                tessera.stream = %m.stream,
                tessera.version = m.version,
            );
            trace.parent(&span);
            if let Some(own) = TraceContext::of_span(&span) {
                own.write_to(&mut m.headers);
            }
            Some(span)
        })
        .collect()
}

/// A consumer span continuing the trace `message` carries (`None` when it carries
/// none): the inbox's handling of it, and what that handling appends, join the trace
/// of the publish.
pub(crate) fn processing(
    system: &'static str,
    inbox: &str,
    message: &crate::integration::Message,
) -> Option<tracing::Span> {
    let trace = TraceContext::from_headers(&message.headers)?;
    let span = tracing::info_span!(
        "process",
        otel.name = %format_args!("process {}", message.subject),
        otel.kind = "consumer",
        messaging.system = system,
        messaging.operation.type = "process",
        messaging.destination.name = %message.subject,
        messaging.consumer.group.name = inbox,
        messaging.message.id = %message.id,
        tessera.stream = %message.stream,
        tessera.version = message.version,
    );
    trace.parent(&span);
    Some(span)
}
