//! Durable pull consumers, and settling their deliveries.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::{self, AckKind};
use async_trait::async_trait;
use futures_util::StreamExt;
use tessera_projections::integration::{
    wire, Acker, BusError, Consumer, ConsumerSpec, Delivery, Message, MessageError,
};
use tokio::task::JoinHandle;

use crate::names;
use crate::NatsBus;

/// Most messages taken per fetch (fewer when the consumer allows fewer in flight).
const MAX_BATCH: usize = 256;
/// Longest a single waiting pull stays open on the server.
const LONG_POLL: Duration = Duration::from_secs(5);
/// Shortest waiting pull worth sending.
const MIN_POLL: Duration = Duration::from_millis(10);

/// Opens (creating or updating) the durable pull consumer `spec`.
pub(crate) async fn open(bus: &NatsBus, spec: &ConsumerSpec) -> Result<NatsConsumer, BusError> {
    names::check_consumer(&spec.name)?;
    let stream_name = bus.ensure_context(&spec.context).await?;
    let url = &bus.inner.url;
    let filter = bus.inner.names.subject(&spec.filter);
    let config = pull::Config {
        durable_name: Some(spec.name.clone()),
        name: Some(spec.name.clone()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: bus.inner.settings.ack_wait,
        max_deliver: i64::from(spec.max_deliveries.max(1)),
        filter_subject: filter.clone(),
        max_ack_pending: i64::try_from(spec.max_in_flight.max(1)).unwrap_or(i64::MAX),
        ..Default::default()
    };
    let refused =
        |what: String| BusError::Refused(format!("NATS at {url}: consumer {}: {what}", spec.name));
    let unavailable = |what: String| {
        BusError::Unavailable(format!("NATS at {url}: consumer {}: {what}", spec.name))
    };
    let stream = bus
        .inner
        .js
        .get_stream_no_info(&stream_name)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    // An existing consumer keeps its filter (as the memory bus does); its limits follow
    // the spec.
    match stream.consumer_info(&spec.name).await {
        Ok(info) if info.config.filter_subject != filter => {
            return Err(refused(format!(
                "exists on stream {stream_name} with filter {}, not {filter}",
                info.config.filter_subject
            )))
        }
        Ok(_) | Err(_) => {}
    }
    let consumer: PullConsumer =
        stream
            .create_consumer(config)
            .await
            .map_err(|e| match e.kind() {
                jetstream::stream::ConsumerErrorKind::JetStream(api) => {
                    refused(format!("stream {stream_name} refused it: {api}"))
                }
                _ => unavailable(e.to_string()),
            })?;
    Ok(NatsConsumer {
        bus: bus.clone(),
        name: spec.name.clone(),
        context: spec.context.clone(),
        batch: spec.max_in_flight.clamp(1, MAX_BATCH),
        consumer,
        shared: Arc::new(Shared::default()),
        pulling: None,
    })
}

/// An open durable pull consumer.
///
/// It takes what is available in one fetch (a pull that does not wait) into a buffer
/// and hands it out one by one; when nothing is, it sends a pull for one message that
/// waits on the server (at most [`LONG_POLL`]). Each pull runs in a task of its own to
/// its end, so that a [`next`](Consumer::next) given up on (a timeout, a `select!`)
/// loses nothing: what the pull brings lands in the buffer. Dropped, the consumer gives
/// its buffer back (a negative acknowledgement each, also for what a pull still under
/// way brings), so a consumer opened again gets those at once.
pub(crate) struct NatsConsumer {
    bus: NatsBus,
    name: String,
    context: String,
    batch: usize,
    consumer: PullConsumer,
    shared: Arc<Shared>,
    /// The pull under way, if any.
    pulling: Option<JoinHandle<Result<(), String>>>,
}

/// What a consumer and its pulls share.
#[derive(Default)]
struct Shared {
    /// Pulled, not yet handed out.
    buffer: Mutex<VecDeque<jetstream::Message>>,
    /// The consumer is gone: what a pull brings is given back.
    closed: AtomicBool,
}

impl Shared {
    fn buffer(&self) -> std::sync::MutexGuard<'_, VecDeque<jetstream::Message>> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One pull: every message available now (up to `batch`), or, with `wait`, one message
/// waiting up to that long on the server; into the buffer as each arrives.
async fn pull(
    consumer: PullConsumer,
    shared: Arc<Shared>,
    batch: usize,
    wait: Option<Duration>,
    timeout: Duration,
) -> Result<(), String> {
    let result = pull_into(&consumer, &shared, batch, wait, timeout).await;
    if shared.closed.load(Ordering::SeqCst) {
        give_back(std::mem::take(&mut *shared.buffer()));
    }
    result
}

async fn pull_into(
    consumer: &PullConsumer,
    shared: &Shared,
    batch: usize,
    wait: Option<Duration>,
    timeout: Duration,
) -> Result<(), String> {
    let mut messages = match wait {
        None => consumer.fetch().max_messages(batch).messages().await,
        Some(poll) => {
            consumer
                .batch()
                .max_messages(1)
                .expires(poll)
                .messages()
                .await
        }
    }
    .map_err(|e| e.to_string())?;
    // The server ends the pull itself (at once, with a message, or at its expiry); the
    // limit is for a server that is gone.
    let limit = wait.map_or(timeout, |poll| poll + timeout);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, messages.next()).await {
            Ok(Some(Ok(message))) => shared.buffer().push_back(message),
            Ok(None) => return Ok(()),
            Ok(Some(Err(e))) if is_busy(&*e) => {
                tokio::time::sleep(MIN_POLL).await;
                return Ok(());
            }
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Err(_) => return Err(format!("pull not answered within {limit:?}")),
        }
    }
}

/// The server has no room for the pull now (as many messages out as the consumer
/// allows, or as many pulls waiting): nothing to deliver yet.
fn is_busy(e: &(dyn std::error::Error + Send + Sync)) -> bool {
    let text = e.to_string();
    text.contains("Exceeded MaxAckPending") || text.contains("Exceeded MaxWaiting")
}

impl NatsConsumer {
    fn unavailable(&self, e: impl std::fmt::Display) -> BusError {
        BusError::Unavailable(format!(
            "NATS at {}: consumer {}: {e}",
            self.bus.inner.url, self.name
        ))
    }

    fn delivery(&self, message: jetstream::Message) -> Delivery {
        let attempt = message
            .info()
            .map_or(1, |info| u32::try_from(info.delivered).unwrap_or(u32::MAX));
        let decoded = decode(&message);
        let acker = NatsAcker {
            bus: self.bus.clone(),
            consumer: self.name.clone(),
            context: self.context.clone(),
            message: Some(message),
        };
        Delivery::new(decoded, attempt, Box::new(acker))
    }
}

#[async_trait]
impl Consumer for NatsConsumer {
    async fn next(&mut self, wait: Duration) -> Result<Option<Delivery>, BusError> {
        let deadline = tokio::time::Instant::now() + wait;
        // First what is there now; then wait on the server.
        let mut fetched = false;
        loop {
            let next = self.shared.buffer().pop_front();
            if let Some(message) = next {
                return Ok(Some(self.delivery(message)));
            }
            if self.pulling.is_none() {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let wait = if !fetched {
                    None
                } else if left >= MIN_POLL {
                    Some(left.min(LONG_POLL))
                } else {
                    return Ok(None);
                };
                self.pulling = Some(tokio::spawn(pull(
                    self.consumer.clone(),
                    Arc::clone(&self.shared),
                    self.batch,
                    wait,
                    self.bus.inner.settings.request_timeout,
                )));
            }
            let Some(pulling) = self.pulling.as_mut() else {
                continue;
            };
            // Past the deadline the pull goes on; the next call finds what it brought.
            let Ok(done) = tokio::time::timeout_at(deadline, pulling).await else {
                return Ok(None);
            };
            self.pulling = None;
            fetched = true;
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(self.unavailable(e)),
                Err(e) => return Err(self.unavailable(e)),
            }
        }
    }

    async fn lag(&mut self) -> Result<Option<u64>, BusError> {
        let info = self.consumer.info().await.map_err(|e| {
            BusError::Unavailable(format!(
                "NATS at {}: consumer {}: {e}",
                self.bus.inner.url, self.name
            ))
        })?;
        // Not delivered yet, and delivered but not acknowledged (held here included).
        Ok(Some(info.num_pending + info.num_ack_pending as u64))
    }
}

impl Drop for NatsConsumer {
    fn drop(&mut self) {
        // A pull under way sees this when it ends, and gives back what it brought.
        self.shared.closed.store(true, Ordering::SeqCst);
        give_back(std::mem::take(&mut *self.shared.buffer()));
    }
}

/// Asks JetStream to deliver `messages` again at once (negative acknowledgements), if
/// a runtime is there to send them; else they come again after the ack wait.
fn give_back(messages: impl IntoIterator<Item = jetstream::Message>) {
    let messages: Vec<_> = messages.into_iter().collect();
    if messages.is_empty() {
        return;
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let client = messages[0].context.client();
            for message in &messages {
                let _ = message.ack_with(AckKind::Nak(None)).await;
            }
            // Out on the wire before this last handle on the connection goes.
            let _ = client.flush().await;
        });
    }
}

/// The integration message `message` carries, or why it carries none.
pub(crate) fn decode(message: &jetstream::Message) -> Result<Message, MessageError> {
    let headers = message.headers.iter().flat_map(|map| {
        map.iter()
            .flat_map(|(name, values)| values.iter().map(move |v| (name.as_ref(), v.as_str())))
    });
    wire::from_headers(headers, message.payload.clone())
}

/// Settles one delivery. Dropped unsettled, it asks JetStream to deliver the message
/// again at once (a negative acknowledgement); if even that cannot be sent (the process
/// died), JetStream delivers it again after the ack wait.
struct NatsAcker {
    bus: NatsBus,
    consumer: String,
    context: String,
    /// `None` once settled.
    message: Option<jetstream::Message>,
}

impl NatsAcker {
    /// Sends `kind` and waits for JetStream to confirm it received it.
    async fn settle(mut self: Box<Self>, kind: AckKind) -> Result<(), BusError> {
        let Some(message) = self.message.take() else {
            return Ok(());
        };
        message.double_ack_with(kind).await.map_err(|e| {
            BusError::Unavailable(format!(
                "NATS at {}: consumer {}: settling a delivery ({kind:?}): {e}",
                self.bus.inner.url, self.consumer
            ))
        })
    }
}

#[async_trait]
impl Acker for NatsAcker {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        self.settle(AckKind::Ack).await
    }

    async fn retry(self: Box<Self>, delay: Duration) -> Result<(), BusError> {
        let delay = (!delay.is_zero()).then_some(delay);
        self.settle(AckKind::Nak(delay)).await
    }

    async fn dead_letter(self: Box<Self>, reason: &str) -> Result<(), BusError> {
        if let Some(message) = &self.message {
            crate::dead::park(&self.bus, &self.context, &self.consumer, message, reason).await?;
        }
        // Parked: JetStream stops delivering it here.
        self.settle(AckKind::Term).await
    }
}

impl Drop for NatsAcker {
    fn drop(&mut self) {
        give_back(self.message.take());
    }
}
