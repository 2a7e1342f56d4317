//! Settling a delivery: ack, retry after a delay (a negative acknowledgement with
//! requeue once the delay has passed), or park it in the dead-letter queue.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicPublishOptions};
use lapin::types::{AMQPValue, ShortString};
use lapin::{BasicProperties, Confirmation};
use tessera_projections::integration::{Acker, BusError};

use crate::consumer::{InFlight, Link};
use crate::publish::PERSISTENT;

/// The header carrying why a message was parked.
pub const DEAD_LETTER_REASON: &str = "Tessera-Dead-Letter-Reason";
/// The header naming the consumer that parked a message.
pub const DEAD_LETTER_CONSUMER: &str = "Tessera-Dead-Letter-Consumer";

/// Settles one delivery of a consumer.
pub(crate) struct RabbitAcker {
    link: Arc<Link>,
    /// Counted in flight until settled (for a retry: until the delayed return).
    in_flight: Option<InFlight>,
    acker: lapin::Acker,
    properties: BasicProperties,
    body: Bytes,
    settled: bool,
}

fn requeue() -> BasicNackOptions {
    BasicNackOptions {
        multiple: false,
        requeue: true,
    }
}

impl RabbitAcker {
    pub(crate) fn new(
        link: Arc<Link>,
        acker: lapin::Acker,
        properties: BasicProperties,
        body: Bytes,
    ) -> Self {
        Self {
            in_flight: Some(InFlight::new(&link)),
            link,
            acker,
            properties,
            body,
            settled: false,
        }
    }

    fn unavailable(&self, what: &str) -> BusError {
        BusError::Unavailable(format!(
            "consumer {}: {what}; the message comes again",
            self.link.consumer
        ))
    }

    /// Runs the acknowledgement `op` unless the channel is gone (the broker then
    /// delivers the message again anyway), in bounded time: a request to a connection
    /// that died unnoticed is never answered, and the consumer is then told to reopen.
    async fn settle(
        &self,
        op: impl Future<Output = Result<bool, lapin::Error>>,
    ) -> Result<(), BusError> {
        if !self.link.channel.status().connected() {
            return Err(self.unavailable("channel closed before the settlement"));
        }
        let timeout = self.link.settle_timeout();
        match tokio::time::timeout(timeout, op).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(self.unavailable("channel closed before the settlement")),
            Ok(Err(e)) => Err(self.unavailable(&e.to_string())),
            Err(_) => {
                self.link.silent.store(true, Ordering::SeqCst);
                Err(self.unavailable(&format!("no answer within {timeout:?}")))
            }
        }
    }

    /// Publishes the copy to the dead-letter queue and waits for its confirmation.
    async fn park(&self, reason: &str) -> Result<(), BusError> {
        let mut headers = self.properties.headers().clone().unwrap_or_default();
        headers.insert(
            DEAD_LETTER_REASON.into(),
            AMQPValue::LongString(reason.into()),
        );
        headers.insert(
            DEAD_LETTER_CONSUMER.into(),
            AMQPValue::LongString(self.link.consumer.as_str().into()),
        );
        let properties = self
            .properties
            .clone()
            .with_delivery_mode(PERSISTENT)
            .with_headers(headers);
        let not_confirmed = |e: String| {
            BusError::NotConfirmed(format!(
                "dead letter of consumer {} to {}: {e}",
                self.link.consumer, self.link.dead_letter_queue
            ))
        };
        let publish = async {
            let confirm = self
                .link
                .channel
                .basic_publish(
                    ShortString::from(""),
                    self.link.dead_letter_queue.clone(),
                    BasicPublishOptions::default(),
                    &self.body,
                    properties,
                )
                .await
                .map_err(|e| not_confirmed(e.to_string()))?;
            match confirm.await.map_err(|e| not_confirmed(e.to_string()))? {
                Confirmation::Ack(_) => Ok(()),
                _ => Err(not_confirmed("refused by the broker".to_owned())),
            }
        };
        let timeout = self.link.confirm_timeout;
        match tokio::time::timeout(timeout, publish).await {
            Ok(done) => done,
            Err(_) => {
                self.link.silent.store(true, Ordering::SeqCst);
                Err(not_confirmed(format!("no confirmation within {timeout:?}")))
            }
        }
    }
}

#[async_trait]
impl Acker for RabbitAcker {
    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        self.settled = true;
        self.settle(self.acker.ack(BasicAckOptions::default()))
            .await
    }

    async fn retry(mut self: Box<Self>, delay: Duration) -> Result<(), BusError> {
        self.settled = true;
        if delay.is_zero() {
            return self.settle(self.acker.nack(requeue())).await;
        }
        // The message keeps its place in the prefetch window while it waits; should
        // the channel close meanwhile, the broker requeues it at once.
        let acker = self.acker.clone();
        let timeout = self.link.settle_timeout();
        let in_flight = self.in_flight.take();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tokio::time::timeout(timeout, acker.nack(requeue())).await;
            drop(in_flight);
        });
        Ok(())
    }

    async fn dead_letter(mut self: Box<Self>, reason: &str) -> Result<(), BusError> {
        // Unsettled until parked: on a failure, the drop below returns it to the queue.
        self.park(reason).await?;
        self.settled = true;
        self.settle(self.acker.ack(BasicAckOptions::default()))
            .await
    }
}

impl Drop for RabbitAcker {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // Dropped unsettled: return it to the queue now rather than when the channel
        // closes.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let acker = self.acker.clone();
            let timeout = self.link.settle_timeout();
            let in_flight = self.in_flight.take();
            runtime.spawn(async move {
                let _ = tokio::time::timeout(timeout, acker.nack(requeue())).await;
                drop(in_flight);
            });
        }
    }
}
