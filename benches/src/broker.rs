//! The brokers the integration-event workloads (`relay`, `bus-latency`) run on, and the
//! raw clients their throughput is measured against.
//!
//! Each run uses a context of its own (`bench{run id}`), so its broker objects (a
//! JetStream stream, a RabbitMQ exchange and queues) are its own, and
//! [`Session::cleanup`] deletes them afterwards.
//!
//! ```
//! use tessera_benches::broker::Broker;
//! assert_eq!(Broker::parse("memory").unwrap().name(), "memory");
//! let nats = Broker::parse("nats://127.0.0.1:4222").unwrap();
//! assert_eq!(nats.name(), "nats");
//! let rabbit = Broker::parse("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
//! assert_eq!(rabbit.describe(), "amqp://127.0.0.1:5672/%2f");
//! assert!(Broker::parse("kafka://x").is_err());
//! ```

use std::collections::VecDeque;
use std::sync::Arc;

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};

use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, PublisherConfirm,
};
use tessera_nats::NatsBus;
use tessera_projections::integration::{wire, Bus, ConsumerSpec, MemoryBus, Message};
use tessera_rabbitmq::{RabbitBus, RabbitConfig};

/// Publishes awaiting confirmation at once on NATS, for the relay's bus and the raw
/// client alike (`NatsBuilder::max_pending_publishes`' default).
pub const MAX_PENDING: usize = 256;

/// Where the integration events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broker {
    /// NATS JetStream at this URL (`tessera-nats`).
    Nats(String),
    /// RabbitMQ at this URL (`tessera-rabbitmq`).
    Rabbit(String),
    /// The in-memory bus (no broker: what the relay costs on its own).
    Memory,
}

impl Broker {
    /// `nats://…`, `amqp://…` or `memory`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "memory" {
            Ok(Self::Memory)
        } else if s.starts_with("nats://") || s.starts_with("tls://") {
            Ok(Self::Nats(s.to_owned()))
        } else if s.starts_with("amqp://") || s.starts_with("amqps://") {
            Ok(Self::Rabbit(s.to_owned()))
        } else {
            Err(format!(
                "--bus {:?}: expected nats://…, amqp://… or memory",
                redact(s)
            ))
        }
    }

    /// `nats`, `rabbitmq` or `memory`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Nats(_) => "nats",
            Self::Rabbit(_) => "rabbitmq",
            Self::Memory => "memory",
        }
    }

    /// The address without credentials.
    pub fn describe(&self) -> String {
        match self {
            Self::Nats(url) | Self::Rabbit(url) => redact(url),
            Self::Memory => "memory".to_owned(),
        }
    }

    /// A session on this broker for the run `run_id`: its context is `bench{run_id}`.
    pub fn session(&self, run_id: &str) -> Session {
        Session {
            broker: self.clone(),
            run_id: run_id.to_owned(),
            context: format!("bench{run_id}"),
            memory: Arc::new(MemoryBus::new()),
            raw_memory: Arc::new(MemoryBus::new()),
        }
    }
}

/// `url` without user information.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// One run's use of a broker: the context it publishes in, connections, clean-up.
/// Clones share the in-memory buses.
#[derive(Clone)]
pub struct Session {
    broker: Broker,
    run_id: String,
    context: String,
    memory: Arc<MemoryBus>,
    raw_memory: Arc<MemoryBus>,
}

impl Session {
    /// The context the relay publishes in.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The context the raw client publishes in (a destination of its own, so that the
    /// broker's de-duplication does not drop the raw client's copies of the relay's
    /// messages).
    pub fn raw_context(&self) -> String {
        format!("{}raw", self.context)
    }

    /// The consumer of the relay's context (`bench_{run id}`, every subject): the
    /// `bus-latency` inbox's, and on RabbitMQ the queue the relay's messages are routed
    /// to (declared before anything is published, as a deployed consumer's would be).
    pub fn consumer_spec(&self) -> ConsumerSpec {
        ConsumerSpec::new(
            format!("bench_{}", self.run_id),
            self.context.clone(),
            format!("{}.>", self.context),
        )
    }

    /// The same for the raw client's context.
    fn raw_consumer_spec(&self) -> ConsumerSpec {
        let context = self.raw_context();
        let filter = format!("{context}.>");
        ConsumerSpec::new(format!("bench_{}_raw", self.run_id), context, filter)
    }

    /// A new connection to the broker as Tessera's bus (each "service" opens its own;
    /// in memory they share the one bus).
    pub async fn bus(&self) -> Result<Arc<dyn Bus>, String> {
        match &self.broker {
            Broker::Nats(url) => {
                let bus = NatsBus::builder(url.clone())
                    .max_pending_publishes(MAX_PENDING)
                    .connect()
                    .await
                    .map_err(|e| e.to_string())?;
                // Created up front, as a deployed service's stream would be.
                bus.ensure_context(&self.context)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Arc::new(bus))
            }
            Broker::Rabbit(url) => {
                let bus = RabbitBus::connect(url).await.map_err(|e| e.to_string())?;
                bus.declare_consumer(&self.consumer_spec())
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Arc::new(bus))
            }
            Broker::Memory => Ok(self.memory.clone()),
        }
    }

    /// Most publishes the relay's bus has awaiting confirmation when the runner hands
    /// it `batch_size` events: on NATS at most [`MAX_PENDING`]; `RabbitBus` sends a
    /// whole batch before it awaits the first confirmation. The raw client is given the
    /// same window.
    pub fn window(&self, batch_size: usize) -> usize {
        match self.broker {
            Broker::Nats(_) => batch_size.clamp(1, MAX_PENDING),
            Broker::Rabbit(_) | Broker::Memory => batch_size.max(1),
        }
    }

    /// The raw client, connected, its destination created like the bus's.
    pub async fn raw(&self) -> Result<RawPublisher, String> {
        match &self.broker {
            Broker::Nats(url) => {
                let js = nats_connect(url).await?;
                let context = self.raw_context();
                let name = nats_stream(&context);
                // The configuration `NatsBus` gives a context's stream.
                let config = stream::Config {
                    name: name.clone(),
                    subjects: vec![format!("{context}.>")],
                    storage: stream::StorageType::File,
                    retention: stream::RetentionPolicy::Limits,
                    duplicate_window: std::time::Duration::from_secs(120),
                    num_replicas: 1,
                    ..Default::default()
                };
                js.get_or_create_stream(config)
                    .await
                    .map_err(|e| format!("creating stream {name}: {e}"))?;
                Ok(RawPublisher::Nats {
                    js,
                    stream: name,
                    context,
                })
            }
            Broker::Rabbit(url) => {
                // The same exchange, hold and queue as the relay's, declared by the bus.
                let spec = self.raw_consumer_spec();
                RabbitBus::connect(url)
                    .await
                    .map_err(|e| e.to_string())?
                    .declare_consumer(&spec)
                    .await
                    .map_err(|e| e.to_string())?;
                let connection = amqp_connect(url).await?;
                let channel = connection
                    .create_channel()
                    .await
                    .map_err(|e| e.to_string())?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(RawPublisher::Rabbit {
                    _connection: connection,
                    channel,
                    exchange: RabbitConfig::default().exchange(&spec.context),
                    context: spec.context,
                })
            }
            Broker::Memory => Ok(RawPublisher::Memory {
                bus: self.raw_memory.clone(),
                context: self.raw_context(),
            }),
        }
    }

    /// Messages the broker holds in the relay's context and in the raw client's, when it
    /// can tell (to check that every one arrived).
    pub async fn stored(&self) -> Result<(Option<u64>, Option<u64>), String> {
        match &self.broker {
            Broker::Nats(url) => {
                let js = nats_connect(url).await?;
                let mut counts = [None, None];
                for (i, context) in [self.context.clone(), self.raw_context()]
                    .iter()
                    .enumerate()
                {
                    if let Ok(mut s) = js.get_stream(nats_stream(context)).await {
                        let info = s.info().await.map_err(|e| e.to_string())?;
                        counts[i] = Some(info.state.messages);
                    }
                }
                Ok((counts[0], counts[1]))
            }
            Broker::Rabbit(url) => {
                let connection = amqp_connect(url).await?;
                let mut counts = [None, None];
                for (i, spec) in [self.consumer_spec(), self.raw_consumer_spec()]
                    .iter()
                    .enumerate()
                {
                    let channel = connection
                        .create_channel()
                        .await
                        .map_err(|e| e.to_string())?;
                    let passive = QueueDeclareOptions {
                        passive: true,
                        durable: true,
                        ..QueueDeclareOptions::default()
                    };
                    let name = ShortString::from(spec.name.clone());
                    if let Ok(q) = channel
                        .queue_declare(name, passive, FieldTable::default())
                        .await
                    {
                        counts[i] = Some(u64::from(q.message_count()));
                    }
                }
                Ok((counts[0], counts[1]))
            }
            Broker::Memory => Ok((
                Some(self.memory.messages(&self.context).len() as u64),
                Some(self.raw_memory.messages(&self.raw_context()).len() as u64),
            )),
        }
    }

    /// Deletes what the run made on the broker (its streams, with their consumers).
    pub async fn cleanup(&self) -> Result<(), String> {
        match &self.broker {
            Broker::Nats(url) => {
                let js = nats_connect(url).await?;
                for context in [self.context.clone(), self.raw_context()] {
                    // Absent when the run never made it.
                    let _ = js.delete_stream(nats_stream(&context)).await;
                }
                Ok(())
            }
            Broker::Rabbit(url) => {
                let connection = amqp_connect(url).await?;
                let config = RabbitConfig::default();
                for spec in [self.consumer_spec(), self.raw_consumer_spec()] {
                    let c = &spec.context;
                    let queues = [
                        spec.name.clone(),
                        config.unrouted_queue(c),
                        config.dead_letter_queue(c),
                    ];
                    let exchanges = [config.exchange(c), config.unrouted_queue(c)];
                    let all = queues.into_iter().map(|q| (q, true));
                    for (name, queue) in all.chain(exchanges.into_iter().map(|e| (e, false))) {
                        // A channel each: a failed delete closes its channel.
                        let Ok(channel) = connection.create_channel().await else {
                            continue;
                        };
                        let _ = if queue {
                            let options = QueueDeleteOptions::default();
                            channel.queue_delete(name.into(), options).await.map(drop)
                        } else {
                            let options = ExchangeDeleteOptions::default();
                            channel.exchange_delete(name.into(), options).await
                        };
                    }
                }
                let _ = connection.close(200, "OK".into()).await;
                Ok(())
            }
            Broker::Memory => Ok(()),
        }
    }
}

/// JetStream on a new connection to `url`.
async fn nats_connect(url: &str) -> Result<jetstream::Context, String> {
    let client = async_nats::connect(url)
        .await
        .map_err(|e| format!("NATS at {}: {e}", redact(url)))?;
    Ok(jetstream::new(client))
}

/// The stream `NatsBus` (default prefix) keeps `context`'s messages in.
fn nats_stream(context: &str) -> String {
    format!("TESSERA_{}", context.to_uppercase())
}

/// A lapin connection to `url`.
async fn amqp_connect(url: &str) -> Result<Connection, String> {
    let runtime = lapin::runtime::default_runtime().map_err(|e| e.to_string())?;
    Connection::connect_with_runtime(url, ConnectionProperties::default(), runtime)
        .await
        .map_err(|e| format!("RabbitMQ at {}: {e}", redact(url)))
}

/// A broker's own client, publishing what the relay publishes with the same
/// confirmation settings: the baseline of the `relay` workload.
pub enum RawPublisher {
    /// async-nats JetStream publishes: the same headers (`wire::to_headers`,
    /// `Nats-Msg-Id`, `Nats-Expected-Stream`) and payloads to a stream configured as
    /// `NatsBus` configures one.
    Nats {
        /// JetStream on its own connection.
        js: jetstream::Context,
        /// Its stream.
        stream: String,
        /// The first subject token (the stream's subjects are `{context}.>`).
        context: String,
    },
    /// lapin on a confirm-mode channel: persistent messages with the same properties
    /// and headers as `RabbitBus` sends (message id, content type, `wire::to_headers`),
    /// to an exchange, hold and queue declared by `RabbitBus` as for the relay's
    /// context.
    Rabbit {
        /// Kept open while the channel is used.
        _connection: Connection,
        /// In confirm mode.
        channel: Channel,
        /// The raw context's topic exchange.
        exchange: String,
        /// The raw context (the first token of its routing keys).
        context: String,
    },
    /// Stored in a memory bus of its own (`MemoryBus::publish_raw`).
    Memory {
        /// The bus.
        bus: Arc<MemoryBus>,
        /// The context stored in.
        context: String,
    },
}

impl RawPublisher {
    /// Publishes `messages` in order without waiting for each confirmation, at most
    /// `window` awaiting one (see [`Session::window`]), and returns once each is
    /// confirmed.
    pub async fn publish(&self, messages: &[Message], window: usize) -> Result<(), String> {
        let window = window.max(1);
        match self {
            Self::Nats {
                js,
                stream,
                context,
            } => {
                let mut pending: VecDeque<PublishAckFuture> = VecDeque::with_capacity(window);
                for m in messages {
                    let publish = PublishMessage::build()
                        .payload(m.payload.clone())
                        .headers(nats_headers(m)?)
                        .message_id(m.id.to_string())
                        .expected_stream(stream);
                    if pending.len() >= window {
                        if let Some(ack) = pending.pop_front() {
                            ack.await.map_err(|e| format!("raw publish: {e}"))?;
                        }
                    }
                    let ack = js
                        .send_publish(raw_subject(context, &m.subject), publish)
                        .await
                        .map_err(|e| format!("raw publish: {e}"))?;
                    pending.push_back(ack);
                }
                while let Some(ack) = pending.pop_front() {
                    ack.await.map_err(|e| format!("raw publish: {e}"))?;
                }
                Ok(())
            }
            Self::Rabbit {
                channel,
                exchange,
                context,
                ..
            } => {
                let exchange = ShortString::from(exchange.clone());
                let mut pending: VecDeque<PublisherConfirm> = VecDeque::with_capacity(window);
                for m in messages {
                    let properties = BasicProperties::default()
                        .with_delivery_mode(2)
                        .with_message_id(ShortString::from(m.id.to_string()))
                        .with_content_type(ShortString::from(m.content_type.clone()))
                        .with_headers(amqp_headers(m));
                    if pending.len() >= window {
                        if let Some(confirm) = pending.pop_front() {
                            confirmed(confirm.await)?;
                        }
                    }
                    let confirm = channel
                        .basic_publish(
                            exchange.clone(),
                            ShortString::from(raw_subject(context, &m.subject)),
                            BasicPublishOptions::default(),
                            &m.payload,
                            properties,
                        )
                        .await
                        .map_err(|e| format!("raw publish: {e}"))?;
                    pending.push_back(confirm);
                }
                while let Some(confirm) = pending.pop_front() {
                    confirmed(confirm.await)?;
                }
                Ok(())
            }
            Self::Memory { bus, context } => {
                for m in messages {
                    bus.publish_raw(context, &m.subject, wire::to_headers(m), m.payload.clone());
                }
                Ok(())
            }
        }
    }
}

/// `subject` moved to `context` (its first token replaced).
fn raw_subject(context: &str, subject: &str) -> String {
    match subject.split_once('.') {
        Some((_, rest)) => format!("{context}.{rest}"),
        None => format!("{context}.{subject}"),
    }
}

/// A publisher confirmation as a result.
fn confirmed(confirmation: lapin::Result<Confirmation>) -> Result<(), String> {
    match confirmation.map_err(|e| format!("raw publish: {e}"))? {
        Confirmation::Ack(_) => Ok(()),
        other => Err(format!("raw publish not confirmed: {other:?}")),
    }
}

/// `m`'s headers as an AMQP table of strings, as `RabbitBus` sends them.
fn amqp_headers(m: &Message) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in wire::to_headers(m) {
        table.insert(
            ShortString::from(name),
            AMQPValue::LongString(value.as_str().into()),
        );
    }
    table
}

/// `m`'s headers as NATS headers, built by the function `NatsBus` uses, so the
/// baseline does the same work per message as the relay's adapter.
fn nats_headers(m: &Message) -> Result<HeaderMap, String> {
    tessera_nats::headers(m).map_err(|e| e.to_string())
}
