//! Declaring exchanges, queues and bindings: every declaration is idempotent, so each
//! publisher and consumer declares what it uses.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ErrorKind, ExchangeKind};
use tessera_projections::integration::{BusError, ConsumerSpec};

use crate::config::{binding_key, RabbitConfig};

/// A name or key as AMQP's short string (at most 255 bytes), or why not.
pub(crate) fn short(what: &str, value: &str) -> Result<ShortString, BusError> {
    ShortString::try_new(value)
        .map_err(|_| BusError::Refused(format!("{what} {value:?} is longer than 255 bytes")))
}

/// The durable topic exchange of `context`, with its hold for unrouted messages: a
/// fanout exchange set as the topic exchange's alternate exchange, and a durable
/// quorum queue bound to it, both named `{prefix}{context}.unrouted`.
pub(crate) async fn exchange(
    channel: &Channel,
    config: &RabbitConfig,
    context: &str,
) -> Result<ShortString, lapin::Error> {
    let options = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let hold = ShortString::from(config.unrouted_queue(context));
    channel
        .exchange_declare(
            hold.clone(),
            ExchangeKind::Fanout,
            options,
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(hold.clone(), durable(), quorum())
        .await?;
    channel
        .queue_bind(
            hold.clone(),
            hold.clone(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let name = ShortString::from(config.exchange(context));
    let mut args = FieldTable::default();
    args.insert(
        "alternate-exchange".into(),
        AMQPValue::LongString(hold.as_str().into()),
    );
    channel
        .exchange_declare(name.clone(), ExchangeKind::Topic, options, args)
        .await?;
    Ok(name)
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

/// Whether `e` is the broker refusing a declaration whose arguments differ from those
/// of the existing queue (or that it does not support).
fn refused(e: &lapin::Error) -> bool {
    matches!(e.kind(), ErrorKind::ProtocolError(p) if matches!(
        p.kind(),
        AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)
    ))
}

/// Declares the durable queue `name` with `args` on top of the quorum type; when the
/// broker refuses (a queue of that name exists with other arguments or type, or the
/// broker has no quorum queues) the existing queue is used as it is, on a new channel
/// (the refusal closed the first).
async fn queue(
    connection: &Connection,
    channel: Channel,
    name: &ShortString,
    extra: FieldTable,
) -> Result<Channel, lapin::Error> {
    let mut args = quorum();
    for (k, v) in &extra {
        args.insert(k.clone(), v.clone());
    }
    match channel.queue_declare(name.clone(), durable(), args).await {
        Ok(_) => Ok(channel),
        Err(e) if refused(&e) => {
            tracing::warn!(queue = %name, error = %e, "queue exists with other arguments; using it as it is");
            let channel = connection.create_channel().await?;
            let passive = QueueDeclareOptions {
                passive: true,
                ..durable()
            };
            channel
                .queue_declare(name.clone(), passive, FieldTable::default())
                .await?;
            Ok(channel)
        }
        Err(e) => Err(e),
    }
}

/// The dead-letter queue of `context` (a durable quorum queue reached through the
/// default exchange).
pub(crate) async fn dead_letter_queue(
    connection: &Connection,
    channel: Channel,
    config: &RabbitConfig,
    context: &str,
) -> Result<(Channel, ShortString), lapin::Error> {
    let name = ShortString::from(config.dead_letter_queue(context));
    let channel = queue(connection, channel, &name, FieldTable::default()).await?;
    Ok((channel, name))
}

/// The consumer's exchange, dead-letter queue and queue (not bound yet: see [`bind`]).
/// Returns the channel to go on with (a new one when a declaration was refused).
pub(crate) async fn consumer(
    connection: &Connection,
    channel: Channel,
    config: &RabbitConfig,
    spec: &ConsumerSpec,
) -> Result<(Channel, ShortString), lapin::Error> {
    exchange(&channel, config, &spec.context).await?;
    let (channel, dead) = dead_letter_queue(connection, channel, config, &spec.context).await?;
    let queue_name = ShortString::from(spec.name.as_str());
    let mut args = FieldTable::default();
    // Delivered `max_deliveries` times, the broker parks it in the dead-letter queue
    // rather than dropping it (the quorum queue's delivery limit counts returns).
    let limit = i32::try_from(spec.max_deliveries.saturating_sub(1)).unwrap_or(i32::MAX);
    args.insert("x-delivery-limit".into(), AMQPValue::LongInt(limit));
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(LongString::from("")),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(LongString::from(dead.as_str())),
    );
    let channel = queue(connection, channel, &queue_name, args).await?;
    Ok((channel, queue_name))
}

/// Binds the consumer's queue to its context's exchange, with its filter as the key.
pub(crate) async fn bind(
    channel: &Channel,
    config: &RabbitConfig,
    spec: &ConsumerSpec,
) -> Result<(), lapin::Error> {
    channel
        .queue_bind(
            ShortString::from(spec.name.as_str()),
            ShortString::from(config.exchange(&spec.context)),
            ShortString::from(binding_key(&spec.filter)),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

/// Checks that `context` names an exchange and queues: not empty, no dots (the first
/// token of a subject), short enough for AMQP.
pub(crate) fn check_context(config: &RabbitConfig, context: &str) -> Result<(), BusError> {
    if context.is_empty() || context.contains('.') {
        return Err(BusError::Refused(format!(
            "context {context:?}: a name without dots is needed"
        )));
    }
    // The longest of its names.
    short("unrouted queue", &config.unrouted_queue(context))?;
    short("dead-letter queue", &config.dead_letter_queue(context))?;
    Ok(())
}

/// Checks the names a consumer needs before sending any of them.
pub(crate) fn check(config: &RabbitConfig, spec: &ConsumerSpec) -> Result<(), BusError> {
    check_context(config, &spec.context)?;
    short("consumer name", &spec.name)?;
    short("filter", &binding_key(&spec.filter))?;
    if spec.name.is_empty() {
        return Err(BusError::Refused("a consumer needs a name".to_owned()));
    }
    Ok(())
}
