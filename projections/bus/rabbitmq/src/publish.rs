//! Publishing with publisher confirms: a channel in confirm mode, every message of a
//! call sent before the first confirmation is awaited.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tessera_projections::integration::{wire, BusError, Message, MessageKind};

use crate::config::RabbitConfig;
use crate::topology::{self, short};

/// AMQP's delivery mode of a message written to disk by durable queues.
pub(crate) const PERSISTENT: u8 = 2;

/// A message ready to send: where to, with which properties and body.
pub(crate) struct Outgoing {
    /// The context whose exchange it goes to.
    pub(crate) context: String,
    pub(crate) routing_key: ShortString,
    pub(crate) properties: BasicProperties,
    pub(crate) body: Bytes,
}

/// The context whose exchange carries `m`: its source for an event, its target (the
/// subject's first token) for a command.
fn context_of(m: &Message) -> &str {
    match m.kind {
        MessageKind::Event => &m.source,
        MessageKind::Command => m.subject.split('.').next().unwrap_or_default(),
    }
}

/// `headers` as an AMQP table of string values.
pub(crate) fn table(headers: &[(String, String)]) -> Result<FieldTable, BusError> {
    let mut table = FieldTable::default();
    for (name, value) in headers {
        table.insert(
            short("header name", name)?,
            AMQPValue::LongString(value.as_str().into()),
        );
    }
    Ok(table)
}

impl Outgoing {
    /// `m` as a persistent AMQP message carrying the wire headers.
    pub(crate) fn message(m: &Message) -> Result<Self, BusError> {
        let properties = BasicProperties::default()
            .with_delivery_mode(PERSISTENT)
            .with_message_id(ShortString::from(m.id.to_string()))
            .with_content_type(short("content type", &m.content_type)?)
            .with_headers(table(&wire::to_headers(m))?);
        Ok(Self {
            context: context_of(m).to_owned(),
            routing_key: short("subject", &m.subject)?,
            properties,
            body: m.payload.clone(),
        })
    }
}

/// A confirm-mode channel and the exchanges it declared.
pub(crate) struct Publisher {
    pub(crate) connection: Arc<Connection>,
    channel: Channel,
    declared: HashSet<String>,
}

/// Why a publish was not confirmed.
pub(crate) enum Failure {
    /// The broker refused to store some messages (a nack); the channel is fine.
    Nacked(usize),
    /// The broker refused a declaration; the channel is closed.
    Refused(String),
    /// The channel or connection failed, or the confirmations did not come in time:
    /// `stalled` when the connection may be alive but silent.
    Broken { error: String, stalled: bool },
}

impl Publisher {
    /// A confirm-mode channel on `connection`.
    pub(crate) async fn open(connection: Arc<Connection>) -> Result<Self, lapin::Error> {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            connection,
            channel,
            declared: HashSet::new(),
        })
    }

    /// Whether its channel and connection are still open.
    pub(crate) fn usable(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }

    /// Sends every message, then waits for every confirmation, within the confirm
    /// timeout.
    pub(crate) async fn send(
        &mut self,
        config: &RabbitConfig,
        batch: &[Outgoing],
    ) -> Result<(), Failure> {
        let broken = |e: lapin::Error| Failure::Broken {
            error: e.to_string(),
            stalled: false,
        };
        let sending = async {
            for m in batch {
                if !self.declared.contains(&m.context) {
                    topology::exchange(&self.channel, config, &m.context)
                        .await
                        .map_err(|e| {
                            if e.is_amqp_soft_error() {
                                Failure::Refused(e.to_string())
                            } else {
                                broken(e)
                            }
                        })?;
                    self.declared.insert(m.context.clone());
                }
            }
            let mut confirms = Vec::with_capacity(batch.len());
            for m in batch {
                let confirm = self
                    .channel
                    .basic_publish(
                        ShortString::from(config.exchange(&m.context)),
                        m.routing_key.clone(),
                        BasicPublishOptions::default(),
                        &m.body,
                        m.properties.clone(),
                    )
                    .await
                    .map_err(broken)?;
                confirms.push(confirm);
            }
            let mut nacked = 0;
            for confirm in confirms {
                match confirm.await.map_err(broken)? {
                    Confirmation::Ack(_) => {}
                    Confirmation::Nack(_) | Confirmation::NotRequested => nacked += 1,
                }
            }
            match nacked {
                0 => Ok(()),
                n => Err(Failure::Nacked(n)),
            }
        };
        match tokio::time::timeout(config.confirm_timeout, sending).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Broken {
                error: format!("no confirmation within {:?}", config.confirm_timeout),
                stalled: true,
            }),
        }
    }
}
