//! Claiming held messages: what a context published before any queue wanted it waits in
//! the context's unrouted queue; a consumer declared later moves the messages its
//! filter matches into its own queue, in order.

use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{Confirmation, Connection};
use tessera_projections::integration::{subject_matches, ConsumerSpec};

use crate::config::RabbitConfig;

/// Most held messages one claim looks at.
const CLAIM_SCAN: usize = 100_000;

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
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let hold = ShortString::from(config.unrouted_queue(&spec.context));
    let mut wanted = Vec::new();
    for _ in 0..CLAIM_SCAN {
        // Unacknowledged, the others go back to the hold when the channel closes.
        let options = BasicGetOptions { no_ack: false };
        let Some(got) = channel.basic_get(hold.clone(), options).await? else {
            break;
        };
        if subject_matches(&spec.filter, got.delivery.routing_key.as_str()) {
            wanted.push(got.delivery);
        }
    }
    let mut confirms = Vec::with_capacity(wanted.len());
    for d in &wanted {
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.clone(),
                BasicPublishOptions::default(),
                &d.data,
                d.properties.clone(),
            )
            .await?;
        confirms.push(confirm);
    }
    let mut copied = true;
    for confirm in confirms {
        copied &= matches!(confirm.await?, Confirmation::Ack(_));
    }
    if copied {
        for d in &wanted {
            d.acker.ack(BasicAckOptions::default()).await?;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), channel.close(200, "OK".into())).await;
    Ok(if copied { wanted.len() } else { 0 })
}
