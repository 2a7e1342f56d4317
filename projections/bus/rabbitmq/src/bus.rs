//! The bus: a publishing connection and a consuming connection to one broker, each
//! opened again on the next call after it was lost.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use lapin::options::{BasicConsumeOptions, BasicGetOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::AMQPUri;
use tessera_projections::integration::{
    Bus, BusError, Consumer, ConsumerSpec, Message, MessageError,
};
use tokio::sync::Mutex;

use crate::acker::DEAD_LETTER_REASON;
use crate::config::{redact, RabbitConfig};
use crate::connection::Slot;
use crate::consumer::{decode, Link, RabbitConsumer};
use crate::publish::{table, Failure, Outgoing, Publisher};
use crate::topology::{self, short};

/// Most dead letters [`RabbitBus::dead_letters`] reads.
const DEAD_LETTERS_READ: usize = 10_000;

/// A [`Bus`] on RabbitMQ. Clones share its connections. See the [crate](crate) docs
/// for the topology and what a confirmation promises.
#[derive(Clone)]
pub struct RabbitBus {
    inner: Arc<Inner>,
}

struct Inner {
    described: String,
    config: RabbitConfig,
    publishing: Arc<Slot>,
    consuming: Arc<Slot>,
    publisher: Mutex<Option<Publisher>>,
}

impl std::fmt::Debug for RabbitBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitBus")
            .field("url", &self.inner.described)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl RabbitBus {
    /// Connects to the broker at `url` (`amqp://user:password@host:5672/%2f`) with the
    /// default [`RabbitConfig`].
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        Self::connect_with(url, RabbitConfig::default()).await
    }

    /// Connects to the broker at `url` with `config`. An unreachable broker is
    /// [`BusError::Unavailable`] after at most `config.connect_timeout`, naming the URL
    /// without credentials; an unreadable URL is [`BusError::Refused`].
    pub async fn connect_with(url: &str, config: RabbitConfig) -> Result<Self, BusError> {
        let described = redact(url);
        if let Err(e) = url.parse::<AMQPUri>() {
            let e = if url.contains('@') {
                "unreadable".to_owned()
            } else {
                e
            };
            return Err(BusError::Refused(format!("RabbitMQ URL {described}: {e}")));
        }
        let bus = Self {
            inner: Arc::new(Inner {
                publishing: Arc::new(Slot::new(url, &described, "tessera publisher")),
                consuming: Arc::new(Slot::new(url, &described, "tessera consumers")),
                described,
                config,
                publisher: Mutex::new(None),
            }),
        };
        bus.inner.publishing.get(&bus.inner.config).await?;
        Ok(bus)
    }

    /// Its settings.
    pub fn config(&self) -> &RabbitConfig {
        &self.inner.config
    }

    fn unavailable(&self, e: lapin::Error) -> BusError {
        BusError::Unavailable(format!("RabbitMQ at {}: {e}", self.inner.described))
    }

    /// Maps a declaration's failure: a refusal by the broker, or a lost link.
    fn declaring(&self, e: lapin::Error) -> BusError {
        if e.is_amqp_soft_error() {
            BusError::Refused(format!("RabbitMQ at {}: {e}", self.inner.described))
        } else {
            self.unavailable(e)
        }
    }

    /// `op` on `connection`, within the connect timeout: a connection that died
    /// unnoticed never answers, and is dropped so that the next call connects anew.
    async fn bounded<T>(
        &self,
        slot: &Slot,
        connection: &Arc<lapin::Connection>,
        op: impl std::future::Future<Output = T>,
    ) -> Result<T, BusError> {
        self.bounded_by(self.inner.config.connect_timeout, slot, connection, op)
            .await
    }

    /// The same within `timeout`.
    async fn bounded_by<T>(
        &self,
        timeout: std::time::Duration,
        slot: &Slot,
        connection: &Arc<lapin::Connection>,
        op: impl std::future::Future<Output = T>,
    ) -> Result<T, BusError> {
        match tokio::time::timeout(timeout, op).await {
            Ok(done) => Ok(done),
            Err(_) => {
                slot.discard(connection).await;
                Err(BusError::Unavailable(format!(
                    "RabbitMQ at {}: no answer within {timeout:?}",
                    self.inner.described
                )))
            }
        }
    }

    async fn send(&self, batch: &[Outgoing]) -> Result<(), BusError> {
        let mut slot = self.inner.publisher.lock().await;
        // Taken out while in use: a publish abandoned half-way leaves no channel with
        // confirmations outstanding behind.
        let mut publisher = match slot.take() {
            Some(p) if p.usable() => p,
            _ => {
                let connection = self.inner.publishing.get(&self.inner.config).await?;
                let opening = Publisher::open(Arc::clone(&connection));
                self.bounded(&self.inner.publishing, &connection, opening)
                    .await?
                    .map_err(|e| self.unavailable(e))?
            }
        };
        match publisher.send(&self.inner.config, batch).await {
            Ok(()) => {
                *slot = Some(publisher);
                Ok(())
            }
            Err(Failure::Nacked(n)) => {
                *slot = Some(publisher);
                Err(BusError::NotConfirmed(format!(
                    "RabbitMQ at {} refused {n} of {} messages",
                    self.inner.described,
                    batch.len()
                )))
            }
            Err(Failure::Refused(e)) => Err(BusError::Refused(format!(
                "RabbitMQ at {}: {e}",
                self.inner.described
            ))),
            Err(Failure::Broken { error, stalled }) => {
                if stalled {
                    self.inner.publishing.discard(&publisher.connection).await;
                }
                Err(BusError::NotConfirmed(format!(
                    "RabbitMQ at {}: {error}",
                    self.inner.described
                )))
            }
        }
    }

    /// Declares the durable queue of `spec` and binds it, without consuming: RabbitMQ
    /// routes a message to the queues bound when it is published, so a consumer that
    /// must see messages published before it first runs is declared beforehand (at
    /// deployment, or by the publishing side).
    pub async fn declare_consumer(&self, spec: &ConsumerSpec) -> Result<(), BusError> {
        topology::check(&self.inner.config, spec)?;
        let connection = self.inner.consuming.get(&self.inner.config).await?;
        let (channel, _) = self.open_queue(&connection, spec).await?;
        let _ = tokio::time::timeout(
            self.inner.config.connect_timeout,
            channel.close(200, "OK".into()),
        )
        .await;
        Ok(())
    }

    /// Declares `spec`'s queue and binds it, moving into it first what its context
    /// holds for want of a queue: the held messages before the bind, so that they come
    /// ahead of what the binding routes, and a second time after it, for what came in
    /// between. Returns the channel to go on with.
    async fn open_queue(
        &self,
        connection: &Arc<lapin::Connection>,
        spec: &ConsumerSpec,
    ) -> Result<(lapin::Channel, lapin::types::ShortString), BusError> {
        let config = &self.inner.config;
        let slot = &self.inner.consuming;
        let declaring = async {
            let channel = connection.create_channel().await?;
            topology::consumer(connection, channel, config, spec).await
        };
        let (channel, queue) = self
            .bounded(slot, connection, declaring)
            .await?
            .map_err(|e| self.declaring(e))?;
        self.claim(connection, spec, &queue).await?;
        self.bounded(slot, connection, topology::bind(&channel, config, spec))
            .await?
            .map_err(|e| self.declaring(e))?;
        self.claim(connection, spec, &queue).await?;
        Ok((channel, queue))
    }

    /// Moves the messages held for want of a queue that `spec` wants into its queue.
    async fn claim(
        &self,
        connection: &Arc<lapin::Connection>,
        spec: &ConsumerSpec,
        queue: &lapin::types::ShortString,
    ) -> Result<(), BusError> {
        let config = &self.inner.config;
        let claiming = crate::claim::claim(connection, config, spec, queue);
        let slot = &self.inner.consuming;
        let moved = self
            .bounded_by(config.confirm_timeout, slot, connection, claiming)
            .await?
            .map_err(|e| self.declaring(e))?;
        if moved > 0 {
            tracing::info!(consumer = %spec.name, moved, "claimed messages published before the consumer's queue existed");
        }
        Ok(())
    }

    /// Publishes a message that no Tessera relay wrote (any string headers and body) to
    /// `context`'s exchange under `subject`, as another producer on the broker might;
    /// for tests of foreign messages.
    pub async fn publish_raw(
        &self,
        context: &str,
        subject: &str,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> Result<(), BusError> {
        topology::check_context(&self.inner.config, context)?;
        let outgoing = Outgoing {
            context: context.to_owned(),
            routing_key: short("subject", subject)?,
            properties: lapin::BasicProperties::default()
                .with_delivery_mode(crate::publish::PERSISTENT)
                .with_headers(table(&headers)?),
            body,
        };
        self.send(std::slice::from_ref(&outgoing)).await
    }

    /// The messages parked in `context`'s dead-letter queue (at most the first 10,000),
    /// each with the reason it was parked: the `Tessera-Dead-Letter-Reason` header, or
    /// `delivery limit` for a message the broker parked after its last delivery. They
    /// stay in the queue.
    pub async fn dead_letters(
        &self,
        context: &str,
    ) -> Result<Vec<(Result<Message, MessageError>, String)>, BusError> {
        topology::check_context(&self.inner.config, context)?;
        let connection = self.inner.consuming.get(&self.inner.config).await?;
        let reading = async {
            let channel = connection.create_channel().await?;
            let (channel, queue) =
                topology::dead_letter_queue(&connection, channel, &self.inner.config, context)
                    .await?;
            let mut found = Vec::new();
            while found.len() < DEAD_LETTERS_READ {
                // Read without acknowledging: closing the channel puts them all back.
                let options = BasicGetOptions { no_ack: false };
                let Some(got) = channel.basic_get(queue.clone(), options).await? else {
                    break;
                };
                let d = got.delivery;
                let reason = d
                    .properties
                    .headers()
                    .as_ref()
                    .and_then(|h| h.inner().get(DEAD_LETTER_REASON))
                    .and_then(|v| match v {
                        AMQPValue::LongString(s) => Some(s.to_string()),
                        _ => None,
                    })
                    .unwrap_or_else(|| "delivery limit".to_owned());
                found.push((decode(&d.properties, Bytes::from(d.data)), reason));
            }
            channel.close(200, "OK".into()).await?;
            Ok(found)
        };
        self.bounded(&self.inner.consuming, &connection, reading)
            .await?
            .map_err(|e| self.declaring(e))
    }
}

#[async_trait]
impl Bus for RabbitBus {
    async fn publish(&self, messages: &[Message]) -> Result<(), BusError> {
        if messages.is_empty() {
            return Ok(());
        }
        let batch = messages
            .iter()
            .map(Outgoing::message)
            .collect::<Result<Vec<_>, _>>()?;
        for m in &batch {
            topology::check_context(&self.inner.config, &m.context)?;
        }
        self.send(&batch).await
    }

    async fn consume(&self, spec: &ConsumerSpec) -> Result<Box<dyn Consumer>, BusError> {
        topology::check(&self.inner.config, spec)?;
        let config = &self.inner.config;
        let connection = self.inner.consuming.get(config).await?;
        let prefetch = u16::try_from(spec.max_in_flight.max(1)).unwrap_or(u16::MAX);
        let (channel, queue) = self.open_queue(&connection, spec).await?;
        let subscribing = async {
            channel
                .basic_qos(prefetch, BasicQosOptions::default())
                .await?;
            // For the copies that dead_letter publishes.
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            let options = BasicConsumeOptions::default();
            channel
                .basic_consume(queue.clone(), "".into(), options, FieldTable::default())
                .await
        };
        let stream = self
            .bounded(&self.inner.consuming, &connection, subscribing)
            .await?
            .map_err(|e| self.declaring(e))?;
        let link = Link {
            slot: Arc::clone(&self.inner.consuming),
            connection,
            channel,
            consumer: spec.name.clone(),
            queue,
            in_flight: AtomicU64::new(0),
            dead_letter_queue: config.dead_letter_queue(&spec.context).into(),
            confirm_timeout: config.confirm_timeout,
            silent: AtomicBool::new(false),
        };
        Ok(Box::new(RabbitConsumer {
            link: Arc::new(link),
            stream,
            described: self.inner.described.clone(),
        }))
    }

    fn describe(&self) -> String {
        self.inner.described.clone()
    }
}

/// The bus stays object-safe behind `Arc<dyn Bus>`.
fn _object_safe(bus: RabbitBus) -> Box<dyn Bus> {
    Box::new(bus)
}
