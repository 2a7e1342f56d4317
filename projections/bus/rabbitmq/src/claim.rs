//! Claiming held messages: what a context published before any queue wanted it waits in
//! the context's unrouted queue; a consumer declared later moves the messages its
//! filter matches into its own queue, in order.
//!
//! A claim takes every held message off the hold while it looks, the others' too, and
//! returns those it does not want when done: a second claim of the same context
//! running meanwhile would find the hold empty and miss its own. So claims of one
//! context take turns: a connection claims while it holds the context's claim lock,
//! an exclusive queue (`{prefix}{context}.claiming`) that the broker lets one
//! connection declare at a time and drops with its connection if the claimer dies.
//! The messages it returns go back before it lets go of the lock. The hold gives back
//! returned messages in no promised order, so a claim copies what it wants in the
//! order of the source's log (position, then version; a message that does not decode
//! goes first, to be refused by the inbox at once).

use std::time::Duration;

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Confirmation, Connection, ErrorKind};
use tessera_projections::integration::{subject_matches, ConsumerSpec};

use crate::config::RabbitConfig;

/// Most held messages one claim looks at.
const CLAIM_SCAN: usize = 100_000;

/// How long a claim waits between tries of a lock another connection holds.
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// Whether `e` is the broker refusing an exclusive queue another connection holds.
fn locked(e: &lapin::Error) -> bool {
    matches!(e.kind(), ErrorKind::ProtocolError(p) if matches!(
        p.kind(),
        AMQPErrorKind::Soft(AMQPSoftError::RESOURCELOCKED)
    ))
}

/// Takes `context`'s claim lock for this connection, waiting while another holds it.
/// Returns the channel holding it (give it to [`unlock`]).
async fn lock(connection: &Connection, name: &ShortString) -> Result<Channel, lapin::Error> {
    let options = QueueDeclareOptions {
        exclusive: true,
        ..QueueDeclareOptions::default()
    };
    loop {
        // A refusal closes its channel: each try has a new one.
        let channel = connection.create_channel().await?;
        match channel
            .queue_declare(name.clone(), options, FieldTable::default())
            .await
        {
            Ok(_) => return Ok(channel),
            Err(e) if locked(&e) => tokio::time::sleep(LOCK_RETRY).await,
            Err(e) => return Err(e),
        }
    }
}

/// Lets the next claimer in (a lock not deleted goes with its connection).
async fn unlock(channel: Channel, name: &ShortString) {
    let _ = channel
        .queue_delete(name.clone(), QueueDeleteOptions::default())
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(1), channel.close(200, "OK".into())).await;
}

/// Moves the held messages of `spec`'s context that its filter matches into `queue`:
/// each is copied (with publisher confirms) before it is taken from the hold, so a
/// failure half-way leaves copies the inbox absorbs, never a loss. Returns how many
/// moved.
pub(crate) async fn claim(
    connection: &Connection,
    config: &RabbitConfig,
    spec: &ConsumerSpec,
    queue: &ShortString,
) -> Result<usize, lapin::Error> {
    let name = ShortString::from(config.claim_lock(&spec.context));
    let held = lock(connection, &name).await?;
    let moved = claim_locked(connection, config, spec, queue).await;
    unlock(held, &name).await;
    moved
}

/// [`claim`] under the context's claim lock.
async fn claim_locked(
    connection: &Connection,
    config: &RabbitConfig,
    spec: &ConsumerSpec,
    queue: &ShortString,
) -> Result<usize, lapin::Error> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let hold = ShortString::from(config.unrouted_queue(&spec.context));
    let (mut wanted, mut others) = (Vec::new(), Vec::new());
    for _ in 0..CLAIM_SCAN {
        // Unacknowledged, the others go back to the hold below (or, at the latest,
        // when the channel closes).
        let options = BasicGetOptions { no_ack: false };
        let Some(got) = channel.basic_get(hold.clone(), options).await? else {
            break;
        };
        if subject_matches(&spec.filter, got.delivery.routing_key.as_str()) {
            wanted.push(got.delivery);
        } else {
            others.push(got.delivery);
        }
    }
    // The hold gives back returned messages in no promised order (a claim of another
    // consumer may have returned them): they go to the queue in log order.
    wanted.sort_by_cached_key(|d| {
        crate::consumer::decode(&d.properties, d.data.clone().into())
            .ok()
            .map(|m| (m.position, m.version))
    });
    let mut confirms = Vec::with_capacity(wanted.len());
    for d in &wanted {
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.clone(),
                // Returned, not dropped, if the queue is gone (a late claim may run after
                // its consumer's queue was deleted): then nothing is taken off the hold.
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &d.data,
                d.properties.clone(),
            )
            .await?;
        confirms.push(confirm);
    }
    let mut copied = true;
    for confirm in confirms {
        copied &= matches!(confirm.await?, Confirmation::Ack(None));
    }
    if copied {
        for d in &wanted {
            d.acker.ack(BasicAckOptions::default()).await?;
        }
    }
    // Returned before the lock is let go, so the next claim sees them.
    let back = BasicNackOptions {
        requeue: true,
        ..BasicNackOptions::default()
    };
    for d in &others {
        d.acker.nack(back).await?;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), channel.close(200, "OK".into())).await;
    Ok(if copied { wanted.len() } else { 0 })
}
