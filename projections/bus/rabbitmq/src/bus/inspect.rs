//! Looking into the broker and feeding it from outside the relay: dead letters, and
//! messages as another producer would publish them.

use bytes::Bytes;
use lapin::options::BasicGetOptions;
use lapin::types::AMQPValue;
use tessera_projections::integration::{BusError, Message, MessageError};

use super::RabbitBus;
use crate::acker::DEAD_LETTER_REASON;
use crate::consumer::decode;
use crate::publish::{table, Outgoing, PERSISTENT};
use crate::topology::{self, short};

/// Most dead letters [`RabbitBus::dead_letters`] reads.
const DEAD_LETTERS_READ: usize = 10_000;

impl RabbitBus {
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
                .with_delivery_mode(PERSISTENT)
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
