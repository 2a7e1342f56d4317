//! A consumer's queue: declared, filled with what its context held for it, bound,
//! and consumed.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::types::{FieldTable, ShortString};
use tessera_projections::integration::{BusError, Consumer, ConsumerSpec};

use super::RabbitBus;
use crate::consumer::{Link, RabbitConsumer};
use crate::topology;

/// How long after a consumer's queue opened it looks at the hold again
/// ([`RabbitBus::claim_late`]).
const LATE_CLAIMS: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(4),
];

impl RabbitBus {
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
    ) -> Result<(lapin::Channel, ShortString), BusError> {
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
        queue: &ShortString,
    ) -> Result<(), BusError> {
        let config = &self.inner.config;
        // One claim at a time on this bus's connection; the broker's lock (in `claim`)
        // keeps other connections out.
        let _turn = self.inner.claiming.lock().await;
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

    /// Claims again a few times after the queue opened, in the background: a message
    /// the broker routed to the hold just before the bind can show there only after the
    /// claim that followed the bind looked (the hold is a quorum queue: a message is
    /// visible once its log entry commits, which under load takes milliseconds), and
    /// would otherwise wait there until the next consumer of its context opens. It
    /// arrives after messages routed to the queue directly; the inbox holds those back
    /// until it (per-stream order). A claim finds an empty hold cheaply.
    fn claim_late(
        &self,
        connection: &Arc<lapin::Connection>,
        spec: &ConsumerSpec,
        queue: &ShortString,
    ) {
        let bus = self.clone();
        let (connection, spec, queue) = (Arc::clone(connection), spec.clone(), queue.clone());
        tokio::spawn(async move {
            for wait in LATE_CLAIMS {
                tokio::time::sleep(wait).await;
                if let Err(e) = bus.claim(&connection, &spec, &queue).await {
                    tracing::debug!(consumer = %spec.name, error = %e, "a late claim of held messages failed");
                    return;
                }
            }
        });
    }

    /// Opens `spec`'s queue ([`Self::open_queue`]) and consumes it.
    pub(super) async fn open_consumer(
        &self,
        spec: &ConsumerSpec,
    ) -> Result<Box<dyn Consumer>, BusError> {
        topology::check(&self.inner.config, spec)?;
        let config = &self.inner.config;
        let connection = self.inner.consuming.get(config).await?;
        let prefetch = u16::try_from(spec.max_in_flight.max(1)).unwrap_or(u16::MAX);
        let (channel, queue) = self.open_queue(&connection, spec).await?;
        self.claim_late(&connection, spec, &queue);
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
}
