//! Dead letters: messages an inbox gave up on, parked in one stream with their reason.

use async_nats::jetstream;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::HeaderMap;
use futures_util::StreamExt;
use tessera_projections::integration::{BusError, Message, MessageError};

use crate::NatsBus;

/// Header names a dead letter carries besides the message's own headers.
pub mod header {
    /// Why the consumer gave up on it.
    pub const REASON: &str = "Tessera-Dead-Letter-Reason";
    /// The durable consumer that parked it.
    pub const CONSUMER: &str = "Tessera-Dead-Letter-Consumer";
    /// The subject it was consumed from (as published on the server).
    pub const SUBJECT: &str = "Tessera-Dead-Letter-Subject";
    /// How many times it had been delivered.
    pub const DELIVERIES: &str = "Tessera-Dead-Letter-Deliveries";
}

/// Longest reason kept, in characters.
const MAX_REASON: usize = 4_000;

/// A message parked in the dead-letter stream.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The message, or why it is not one Tessera can read (a foreign message is parked
    /// as it came).
    pub message: Result<Message, MessageError>,
    /// Why the consumer gave up on it.
    pub reason: String,
    /// The durable consumer that parked it.
    pub consumer: String,
    /// The subject it was consumed from, as published on the server.
    pub subject: String,
    /// How many times it had been delivered.
    pub deliveries: u32,
}

/// Publishes `message`, delivered to `consumer` of `context`, to the dead-letter stream
/// with `reason`, and waits for JetStream's acknowledgement.
pub(crate) async fn park(
    bus: &NatsBus,
    context: &str,
    consumer: &str,
    message: &jetstream::Message,
    reason: &str,
) -> Result<(), BusError> {
    let stream = bus.ensure_dead_stream().await?;
    let mut headers = HeaderMap::new();
    for (name, values) in message.headers.iter().flat_map(HeaderMap::iter) {
        let name: &str = name.as_ref();
        // JetStream's own (message id, expected stream) are not the dead letter's.
        if name.to_ascii_lowercase().starts_with("nats-") {
            continue;
        }
        for value in values {
            headers.append(name, value.as_str());
        }
    }
    let info = message.info().ok();
    let deliveries = info.as_ref().map_or(1, |i| i.delivered);
    let reason: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON)
        .collect();
    headers.insert(header::REASON, reason.as_str());
    headers.insert(header::CONSUMER, consumer);
    headers.insert(header::SUBJECT, message.subject.as_str());
    headers.insert(header::DELIVERIES, deliveries.to_string());
    // Parking the same stored message twice (a crash between parking and settling)
    // stores it once.
    let id = match &info {
        Some(i) => format!("{}:{}:{consumer}", i.stream, i.stream_sequence),
        None => format!("{}:{consumer}", message.subject),
    };
    let subject = bus.inner.names.dead_subject(context, consumer);
    let publish = PublishMessage::build()
        .payload(message.payload.clone())
        .headers(headers)
        .message_id(id)
        .expected_stream(&stream);
    let failed = |e: &dyn std::fmt::Display| {
        BusError::NotConfirmed(format!(
            "NATS at {}: parking a dead letter on {subject}: {e}",
            bus.inner.url
        ))
    };
    let ack = bus
        .inner
        .js
        .send_publish(subject.clone(), publish)
        .await
        .map_err(|e| failed(&e))?;
    ack.await.map_err(|e| failed(&e))?;
    Ok(())
}

impl NatsBus {
    /// The dead letters parked by consumers of `context`, oldest first.
    pub async fn dead_letters(&self, context: &str) -> Result<Vec<DeadLetter>, BusError> {
        let stream_name = self.inner.names.dead_stream();
        let url = &self.inner.url;
        let failed = |e: &dyn std::fmt::Display| {
            BusError::Unavailable(format!("NATS at {url}: reading dead letters: {e}"))
        };
        let stream = match self.inner.js.get_stream(&stream_name).await {
            Ok(stream) => stream,
            Err(e)
                if matches!(e.kind(), GetStreamErrorKind::JetStream(api)
                    if api.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
            {
                return Ok(Vec::new())
            }
            Err(e) => return Err(failed(&e)),
        };
        let filter = self
            .inner
            .names
            .subject(&format!("{}.{context}.>", crate::names::DEAD_TOKEN));
        // A short-lived consumer of every dead letter of the context, nothing to settle.
        let mut reader: PullConsumer = stream
            .create_consumer(pull::Config {
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::None,
                filter_subject: filter,
                inactive_threshold: std::time::Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(|e| failed(&e))?;
        let total = reader.info().await.map_err(|e| failed(&e))?.num_pending;
        let mut letters = Vec::new();
        while (letters.len() as u64) < total {
            let want = usize::try_from(total - letters.len() as u64).unwrap_or(usize::MAX);
            let mut batch = reader
                .fetch()
                .max_messages(want)
                .messages()
                .await
                .map_err(|e| failed(&e))?;
            let before = letters.len();
            while let Some(m) = batch.next().await {
                letters.push(read(&m.map_err(|e| failed(&e))?));
            }
            if letters.len() == before {
                break;
            }
        }
        let _ = stream.delete_consumer(&reader.cached_info().name).await;
        Ok(letters)
    }
}

/// A stored dead letter as a [`DeadLetter`].
fn read(m: &jetstream::Message) -> DeadLetter {
    let get = |name: &str| {
        m.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    DeadLetter {
        message: crate::consumer::decode(m),
        reason: get(header::REASON),
        consumer: get(header::CONSUMER),
        subject: get(header::SUBJECT),
        deliveries: get(header::DELIVERIES).parse().unwrap_or(0),
    }
}
