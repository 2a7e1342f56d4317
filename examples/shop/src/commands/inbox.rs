//! The owner's side: a command inbox that runs each command message through the
//! context's command handler, once, and turns a refusal into an event.

use serde::{Deserialize, Serialize};
use tessera_core::{
    BoxError, CommandError, CommandHandler, CommandOptions, EventStore, ExpectedVersion, Metadata,
    NewEvent, StoreError, StreamId,
};
use tessera_projections::integration::{ConsumerSpec, InboxHandler, Message};
use uuid::Uuid;

use super::{Handled, Owner, RemoteCommand};

/// The category of the streams an owner records its refusals in (`rejection-{order}`).
pub const REJECTION: &str = "rejection";

/// The event type of a refusal.
pub const REJECTED: &str = "CommandRejected";

/// What an owner records, and publishes, when it refuses a command: the saga reads it
/// as it would read the command's failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRejected {
    /// The order.
    pub order_id: Uuid,
    /// The command refused.
    pub command: RemoteCommand,
    /// Why, as text.
    pub reason: String,
}

/// The durable consumer of `context`'s command queue (`{context}.commands.>`), named
/// `{context}_commands`.
pub fn command_consumer(context: &str) -> ConsumerSpec {
    ConsumerSpec {
        // As many as the saga may have in flight, and more for redeliveries.
        max_in_flight: 256,
        ..ConsumerSpec::new(
            format!("{context}_commands"),
            context,
            format!("{context}.commands.>"),
        )
    }
}

/// Runs each command message through the owner's [`CommandHandler`] (its writer lanes
/// and state cache with it) under the message's idempotency key, correlation and
/// causation. A command the aggregate refuses is recorded as a [`CommandRejected`]
/// event whose id derives from the message's, so a redelivery records it once; a
/// transient failure (a conflict, the store unavailable) is an error, and the inbox
/// delivers the message again.
pub struct CommandInbox<A: Owner, S> {
    handler: CommandHandler<A, S>,
    log: S,
    handled: Option<Handled>,
}

impl<A: Owner, S: EventStore> CommandInbox<A, S> {
    /// Commands run by `handler`, refusals appended to `log` (the handler's own store).
    pub fn new(handler: CommandHandler<A, S>, log: S) -> Self {
        Self {
            handler,
            log,
            handled: None,
        }
    }

    /// Tells `handled` of each message handled (for a dispatcher in this process that
    /// waits for its commands to land).
    #[must_use]
    pub fn reporting_to(mut self, handled: Handled) -> Self {
        self.handled = Some(handled);
        self
    }

    async fn reject(
        &self,
        message: &Message,
        command: RemoteCommand,
        reason: String,
    ) -> Result<(), BoxError> {
        let order_id = command.order_id();
        tracing::info!(order_id = %order_id, command = %message.name, %reason, "command rejected");
        let stream = StreamId::from_parts(REJECTION, order_id)?;
        let mut metadata = Metadata::default().caused_by(message.id);
        metadata.correlation_id = message.correlation_id;
        metadata.headers.extend(message.headers.clone());
        let rejected = CommandRejected {
            order_id,
            command,
            reason,
        };
        let event = NewEvent::json(REJECTED, &rejected)?
            .with_id(message.derived_event_id(0))
            .with_metadata(metadata);
        self.log
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await?;
        Ok(())
    }
}

impl<A: Owner, S: EventStore> InboxHandler for CommandInbox<A, S> {
    async fn handle(&self, message: &Message) -> Result<(), BoxError> {
        let command = RemoteCommand::from_message(message)?;
        let Some((id, routed)) = A::route(&command) else {
            return Err(format!("{} is not a command of {}", message.name, A::CONTEXT).into());
        };
        let key = message
            .idempotency_key
            .clone()
            .ok_or("a command message without an idempotency key")?;
        let metadata = Metadata {
            correlation_id: message.correlation_id,
            causation_id: message.causation_id,
            headers: message.headers.clone(),
        };
        let options = CommandOptions::idempotent(key).with_metadata(metadata);
        // Queued: on a coalescing handler (the shop's products), the commands waiting for
        // one aggregate are decided together and appended at once.
        match self.handler.handle_queued(&id, routed, options).await {
            Ok(_) => {}
            // Refusals for good: the aggregate's, a key already used for another
            // request, an id that cannot name a stream.
            Err(CommandError::Rejected(e)) => self.reject(message, command, e.to_string()).await?,
            Err(e @ CommandError::KeyReused { .. })
            | Err(e @ CommandError::Store(StoreError::InvalidStreamId(_))) => {
                self.reject(message, command, e.to_string()).await?;
            }
            // Conflicts, an unavailable store: delivered again after a backoff. Corrupt
            // data too, until it stops the inbox naming the message.
            Err(e) => return Err(e.into()),
        }
        if let Some(handled) = &self.handled {
            handled.done(message.id);
        }
        Ok(())
    }
}
