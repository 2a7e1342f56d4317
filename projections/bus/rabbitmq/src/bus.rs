//! The bus: a publishing connection and a consuming connection to one broker, each
//! opened again on the next call after it was lost.

mod inspect;
mod queue;

use std::sync::Arc;

use async_trait::async_trait;
use lapin::uri::AMQPUri;
use tessera_projections::integration::{Bus, BusError, Consumer, ConsumerSpec, Message};
use tokio::sync::Mutex;

use crate::config::{redact, RabbitConfig};
use crate::connection::Slot;
use crate::publish::{Failure, Outgoing, Publisher};
use crate::topology;

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
    /// Held by a claim of this bus: the broker's claim lock is per connection, and the
    /// consumers of one bus share one.
    claiming: Mutex<()>,
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
                claiming: Mutex::new(()),
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
        self.open_consumer(spec).await
    }

    fn describe(&self) -> String {
        self.inner.described.clone()
    }
}

/// The bus stays object-safe behind `Arc<dyn Bus>`.
fn _object_safe(bus: RabbitBus) -> Box<dyn Bus> {
    Box::new(bus)
}
