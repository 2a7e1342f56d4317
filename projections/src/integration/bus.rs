//! The broker contract: publish with confirmation, consume durably with explicit
//! acknowledgement. Adapters implement it for NATS JetStream, RabbitMQ and memory.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
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

    /// Sends `messages` in order, as [`publish`](Bus::publish) does, but returns once
    /// they are sent, with their [`Confirmation`] to await apart: the caller can send
    /// its next messages meanwhile (the [`Relay`](super::Relay) sends one batch ahead of
    /// its confirmations). Messages of a later `send` on the same bus are sent after
    /// these. An error means some of them may not have been sent (any of them may or
    /// may not be stored), as does an error of the confirmation; either way the caller
    /// sends them again. An adapter may wait, before sending, for confirmations of
    /// earlier sends to arrive (a window of unconfirmed messages); it never waits for
    /// the caller to await them.
    ///
    /// The default publishes them and returns a [settled](Confirmation::is_settled)
    /// confirmation, so an adapter without pipelining needs nothing more.
    async fn send(&self, messages: &[Message]) -> Result<Confirmation, BusError> {
        self.publish(messages).await?;
        Ok(Confirmation::confirmed())
    }

    /// Opens (creating if needed) the durable consumer `spec`.
    async fn consume(&self, spec: &ConsumerSpec) -> Result<Box<dyn Consumer>, BusError>;

    /// The broker's address, without credentials (for errors, logs and status).
    fn describe(&self) -> String;
}

/// The broker's confirmation of the messages of one [`Bus::send`]: resolves to `Ok`
/// once the broker confirmed each of them as stored, or to the error of the first it
/// could not confirm (from there on, any of them may or may not be stored). Dropped
/// unawaited, nothing is undone: the messages stay sent.
#[must_use = "a confirmation tells whether the messages were stored"]
pub struct Confirmation(Outcome);

enum Outcome {
    /// Known already (`None` once handed out).
    Settled(Option<Result<(), BusError>>),
    /// Still to come.
    Pending(Pin<Box<dyn Future<Output = Result<(), BusError>> + Send + 'static>>),
}

impl Confirmation {
    /// Every message is confirmed already.
    pub fn confirmed() -> Self {
        Self(Outcome::Settled(Some(Ok(()))))
    }

    /// A confirmation that failed already.
    pub fn failed(error: BusError) -> Self {
        Self(Outcome::Settled(Some(Err(error))))
    }

    /// A confirmation that `future` delivers.
    pub fn pending(future: impl Future<Output = Result<(), BusError>> + Send + 'static) -> Self {
        Self(Outcome::Pending(Box::pin(future)))
    }

    /// Whether the outcome is known without waiting ([`confirmed`](Self::confirmed),
    /// [`failed`](Self::failed)): a caller has nothing to gain from keeping it
    /// outstanding.
    pub fn is_settled(&self) -> bool {
        matches!(self.0, Outcome::Settled(_))
    }
}

impl Future for Confirmation {
    type Output = Result<(), BusError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Outcome::Settled(outcome) => Poll::Ready(outcome.take().unwrap_or_else(|| {
                Err(BusError::NotConfirmed(
                    "the confirmation was awaited after it resolved".into(),
                ))
            })),
            Outcome::Pending(future) => future.as_mut().poll(cx),
        }
    }
}

impl std::fmt::Debug for Confirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.0 {
            Outcome::Settled(Some(Ok(()))) => "confirmed",
            Outcome::Settled(Some(Err(_))) => "failed",
            Outcome::Settled(None) => "handed out",
            Outcome::Pending(_) => "pending",
        };
        f.debug_tuple("Confirmation").field(&state).finish()
    }
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

/// Compile-time check that a confirmation can be awaited in a spawned task.
fn _confirmation_is_send(c: Confirmation) -> impl Future<Output = Result<(), BusError>> + Send {
    c
}
