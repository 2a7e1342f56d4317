//! The broker contract: publish with confirmation, consume durably with explicit
//! acknowledgement. Adapters implement it for NATS JetStream, RabbitMQ and memory.

use std::time::Duration;

use async_trait::async_trait;

use super::{BusError, Message, MessageError};

/// A durable consumer: which messages of which context it reads, under which name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    /// The durable name (unique per broker): the broker keeps its position and
    /// unacknowledged messages across restarts of the consumer.
    pub name: String,
    /// The context whose messages it reads (a JetStream stream, a RabbitMQ exchange).
    pub context: String,
    /// Subject pattern within the context, dot-separated tokens: `*` matches one token,
    /// a final `>` the rest (`ordering.>`, `inventory.commands.>`).
    pub filter: String,
    /// Most messages delivered and not yet acknowledged.
    pub max_in_flight: usize,
    /// Deliveries of one message before the broker stops offering it (the inbox stops
    /// or dead-letters it before that).
    pub max_deliveries: u32,
}

impl ConsumerSpec {
    /// A consumer named `name` of every message of `context` matching `filter`, 64 in
    /// flight, up to 1,000 deliveries each.
    pub fn new(
        name: impl Into<String>,
        context: impl Into<String>,
        filter: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            context: context.into(),
            filter: filter.into(),
            max_in_flight: 64,
            max_deliveries: 1_000,
        }
    }
}

/// A broker.
///
/// Async-trait, so that a service chooses its broker at run time (`Arc<dyn Bus>`).
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes `messages` in order to their subjects in their source context and
    /// returns once the broker confirmed each of them as stored. On an error, any of
    /// them may or may not be stored: the caller publishes them again, and the broker
    /// drops repeats by message id where it can (consumers absorb the rest).
    async fn publish(&self, messages: &[Message]) -> Result<(), BusError>;

    /// Opens (creating if needed) the durable consumer `spec`.
    async fn consume(&self, spec: &ConsumerSpec) -> Result<Box<dyn Consumer>, BusError>;

    /// The broker's address, without credentials (for errors, logs and status).
    fn describe(&self) -> String;
}

/// An open durable consumer.
#[async_trait]
pub trait Consumer: Send + 'static {
    /// The next delivery, waiting up to `wait` (`None`: nothing arrived in time).
    async fn next(&mut self, wait: Duration) -> Result<Option<Delivery>, BusError>;

    /// Messages the broker holds for this consumer that it has not acknowledged yet
    /// (waiting and in flight), if the broker can tell: the inbox's lag.
    async fn lag(&mut self) -> Result<Option<u64>, BusError> {
        Ok(None)
    }
}

/// One delivery of a message: settle it with [`ack`](Delivery::ack),
/// [`retry`](Delivery::retry) or [`dead_letter`](Delivery::dead_letter); dropped
/// unsettled, the broker delivers it again.
pub struct Delivery {
    /// The message, or why it is not one Tessera can read.
    pub message: Result<Message, MessageError>,
    /// Which delivery of the message this is (1 for the first).
    pub attempt: u32,
    acker: Box<dyn Acker>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("message", &self.message)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// A delivery settled through `acker` (for adapters).
    pub fn new(
        message: Result<Message, MessageError>,
        attempt: u32,
        acker: Box<dyn Acker>,
    ) -> Self {
        Self {
            message,
            attempt,
            acker,
        }
    }

    /// Done with: the broker forgets it.
    pub async fn ack(self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    /// Not now: deliver it again after `delay`.
    pub async fn retry(self, delay: Duration) -> Result<(), BusError> {
        self.acker.retry(delay).await
    }

    /// Given up on: park it in the dead-letter destination with `reason`, and forget it
    /// here.
    pub async fn dead_letter(self, reason: &str) -> Result<(), BusError> {
        self.acker.dead_letter(reason).await
    }
}

/// How an adapter settles one delivery.
#[async_trait]
pub trait Acker: Send + 'static {
    /// Acknowledges it.
    async fn ack(self: Box<Self>) -> Result<(), BusError>;
    /// Asks for it again after `delay`.
    async fn retry(self: Box<Self>, delay: Duration) -> Result<(), BusError>;
    /// Parks it with `reason` in the dead-letter destination, then acknowledges it.
    async fn dead_letter(self: Box<Self>, reason: &str) -> Result<(), BusError>;
}

/// The subject `pattern` (`*` one token, final `>` the rest) matches `subject`.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut subject = subject.split('.');
    for token in pattern.split('.') {
        match (token, subject.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (t, Some(s)) if t == s => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

/// Compile-time check that the broker traits stay object-safe.
fn _object_safe(_: Box<dyn Bus>, _: Box<dyn Consumer>, _: Box<dyn Acker>) {}
