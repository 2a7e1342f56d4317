//! A durable consumer: a quorum queue read with manual acknowledgements and a prefetch
//! window.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection};
use tessera_projections::integration::{wire, BusError, Consumer, Delivery, Message, MessageError};

use crate::acker::RabbitAcker;
use crate::connection::Slot;

/// The header a quorum queue sets on a redelivery: how often the message was returned.
const DELIVERY_COUNT: &str = "x-delivery-count";

/// What a consumer and its deliveries share.
pub(crate) struct Link {
    /// Where its connection came from (to drop it when it stops answering).
    pub(crate) slot: Arc<Slot>,
    pub(crate) connection: Arc<Connection>,
    pub(crate) channel: Channel,
    /// The consumer's name.
    pub(crate) consumer: String,
    /// Its queue.
    pub(crate) queue: ShortString,
    /// Deliveries not settled yet (acknowledged or returned).
    pub(crate) in_flight: AtomicU64,
    pub(crate) dead_letter_queue: ShortString,
    pub(crate) confirm_timeout: Duration,
    /// A settlement got no answer: the connection is silent.
    pub(crate) silent: AtomicBool,
}

impl Link {
    /// How long a settlement may take: written to a live socket, it takes no time.
    pub(crate) fn settle_timeout(&self) -> Duration {
        self.confirm_timeout.min(SETTLE_TIMEOUT)
    }
}

/// Counts one delivery in flight until dropped: when its delivery is settled.
pub(crate) struct InFlight(pub(crate) Arc<Link>);

impl InFlight {
    pub(crate) fn new(link: &Arc<Link>) -> Self {
        link.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(link))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Longest wait for an acknowledgement to be sent.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// An open consumer of one queue.
pub(crate) struct RabbitConsumer {
    pub(crate) link: Arc<Link>,
    pub(crate) stream: lapin::Consumer,
    pub(crate) described: String,
}

impl RabbitConsumer {
    fn lost(&self, what: &str) -> BusError {
        BusError::Unavailable(format!(
            "consumer {} at {}: {what}",
            self.link.consumer, self.described
        ))
    }
}

#[async_trait]
impl Consumer for RabbitConsumer {
    async fn next(&mut self, wait: Duration) -> Result<Option<Delivery>, BusError> {
        if self.link.silent.load(Ordering::SeqCst) {
            // Reopening the consumer connects anew.
            self.link.slot.discard(&self.link.connection).await;
            return Err(self.lost("the connection stopped answering"));
        }
        let delivery = match tokio::time::timeout(wait, self.stream.next()).await {
            // A link lost without a word to the consumer: say so, so it is reopened.
            Err(_) if !self.link.channel.status().connected() => {
                return Err(self.lost("channel closed"))
            }
            Err(_) => return Ok(None),
            Ok(None) => return Err(self.lost("cancelled by the broker")),
            Ok(Some(Err(e))) => return Err(self.lost(&e.to_string())),
            Ok(Some(Ok(d))) => d,
        };
        let attempt = attempt(&delivery);
        let body = Bytes::from(delivery.data);
        let message = decode(&delivery.properties, body.clone());
        let acker = RabbitAcker::new(
            Arc::clone(&self.link),
            delivery.acker,
            delivery.properties,
            body,
        );
        Ok(Some(Delivery::new(message, attempt, Box::new(acker))))
    }

    /// The messages ready in its queue plus its deliveries handed out and not settled
    /// yet (prefetched ones not taken yet are not counted).
    async fn lag(&mut self) -> Result<Option<u64>, BusError> {
        let options = QueueDeclareOptions {
            passive: true,
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let declare = self.link.channel.queue_declare(
            self.link.queue.clone(),
            options,
            FieldTable::default(),
        );
        let ready = match tokio::time::timeout(self.link.settle_timeout(), declare).await {
            Ok(Ok(queue)) => u64::from(queue.message_count()),
            Ok(Err(e)) => return Err(self.lost(&e.to_string())),
            Err(_) => return Err(self.lost("no answer to a queue query")),
        };
        Ok(Some(ready + self.link.in_flight.load(Ordering::SeqCst)))
    }
}

/// A header value as text, if it is one.
fn text(value: &AMQPValue) -> Option<Cow<'_, str>> {
    match value {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok().map(Cow::Borrowed),
        AMQPValue::ShortString(s) => Some(Cow::Borrowed(s.as_str())),
        _ => None,
    }
}

/// A header value as a whole number, if it is one.
fn number(value: &AMQPValue) -> Option<i64> {
    match *value {
        AMQPValue::ShortShortInt(n) => Some(n.into()),
        AMQPValue::ShortShortUInt(n) => Some(n.into()),
        AMQPValue::ShortInt(n) => Some(n.into()),
        AMQPValue::ShortUInt(n) => Some(n.into()),
        AMQPValue::LongInt(n) => Some(n.into()),
        AMQPValue::LongUInt(n) => Some(n.into()),
        AMQPValue::LongLongInt(n) => Some(n),
        _ => None,
    }
}

/// Which delivery this is: the quorum queue's count of returns plus one; on a classic
/// queue, 2 for any redelivery.
fn attempt(d: &lapin::message::Delivery) -> u32 {
    let count = d
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(DELIVERY_COUNT))
        .and_then(number);
    match count {
        Some(n) => u32::try_from(n.saturating_add(1)).unwrap_or(u32::MAX),
        None if d.redelivered => 2,
        None => 1,
    }
}

/// Whether the wire format reads header `name`: Tessera's own and `Content-Type`, not
/// what brokers and other producers add (`x-death`, `x-delivery-count`, ...) nor the
/// dead-letter notes.
fn wire_header(name: &str) -> bool {
    let tessera = name
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("Tessera-"));
    let dead = name
        .get(..20)
        .is_some_and(|p| p.eq_ignore_ascii_case("Tessera-Dead-Letter-"));
    (tessera && !dead) || name.eq_ignore_ascii_case(wire::header::CONTENT_TYPE)
}

/// The message the AMQP headers (string values) and body carry; the `content_type`
/// property stands in for a missing `Content-Type` header.
pub(crate) fn decode(properties: &BasicProperties, body: Bytes) -> Result<Message, MessageError> {
    let empty = FieldTable::default();
    let table = properties.headers().as_ref().unwrap_or(&empty);
    let mut headers: Vec<(&str, Cow<'_, str>)> = table
        .into_iter()
        .filter(|(k, _)| wire_header(k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str(), text(v)?)))
        .collect();
    let has_type = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case(wire::header::CONTENT_TYPE));
    if let (false, Some(ct)) = (has_type, properties.content_type()) {
        headers.push((wire::header::CONTENT_TYPE, Cow::Borrowed(ct.as_str())));
    }
    wire::from_headers(headers.iter().map(|(k, v)| (*k, v.as_ref())), body)
}

#[cfg(test)]
mod tests {
    use super::wire_header;

    #[test]
    fn only_wire_headers_are_read() {
        assert!(wire_header("Tessera-Id"));
        assert!(wire_header("tessera-h-traceparent"));
        assert!(wire_header("content-type"));
        assert!(!wire_header("Tessera-Dead-Letter-Reason"));
        assert!(!wire_header("x-death"));
        assert!(!wire_header("x-delivery-count"));
        assert!(!wire_header("Täs"));
    }
}
