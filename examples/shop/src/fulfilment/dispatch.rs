//! Sends the saga's commands: to inventory and payment as command messages on the bus,
//! to ordering through its command handler.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tessera_core::process::Issued;
use tessera_core::{CommandError, CommandHandler, CommandOptions, EventStore, StoreError};
use tessera_projections::integration::Bus;
use tessera_projections::process::{DispatchError, Dispatcher};
use tracing::Instrument;
use uuid::Uuid;

use super::{Action, SagaCommand};
use crate::commands::{Handled, RemoteCommand};
use crate::ordering::{Order, OrderCommand};

/// How long a dispatch waits for a command to land at its owner in this process before
/// it counts as a transient failure (and is dispatched again, landing once).
const LANDING: Duration = Duration::from_secs(10);

/// The saga's [`Dispatcher`]: each action goes to its context with the command's
/// deterministic idempotency key and the order's correlation id.
///
/// Reserve and Release go to inventory, RequestPayment, TimeOutPayment and Refund to
/// payment, as command messages published on the bus: a dispatch is done when the bus
/// confirmed the publish, and a bus error is transient. With [`handled`](Self::handled)
/// set (the owners run in this process, all-in-one) it is done only once the owner
/// handled the command, as a call would be. Confirm and Reject are calls to the
/// ordering command handler.
pub struct ShopDispatcher<S> {
    /// Orders.
    pub orders: CommandHandler<Order, S>,
    /// The bus to inventory and payment.
    pub bus: Arc<dyn Bus>,
    /// When set, what the owners in this process handled: a dispatch waits for its
    /// command to be among them.
    pub handled: Option<Handled>,
}

/// Where an action goes: a command message to another context, or ordering's own
/// command handler.
pub(crate) enum Route {
    /// To inventory or payment, over the bus.
    Remote(RemoteCommand),
    /// To ordering.
    Local(OrderCommand),
}

/// Where `action` of `order_id` goes, as what.
pub(crate) fn route(order_id: Uuid, action: &Action) -> Route {
    Route::Remote(match action {
        Action::Reserve { sku, quantity } => RemoteCommand::Reserve {
            order_id,
            sku: sku.clone(),
            quantity: *quantity,
        },
        Action::Release { sku } => RemoteCommand::Release {
            order_id,
            sku: sku.clone(),
        },
        Action::RequestPayment { amount_cents } => RemoteCommand::RequestPayment {
            order_id,
            amount_cents: *amount_cents,
        },
        Action::TimeOutPayment => RemoteCommand::TimeOutPayment { order_id },
        Action::Refund => RemoteCommand::Refund { order_id },
        Action::Confirm => return Route::Local(OrderCommand::Confirm),
        Action::Reject(reason) => return Route::Local(OrderCommand::Reject(*reason)),
    })
}

/// The action `command` was sent for: how the saga reads an owner's refusal of it.
pub(crate) fn action_of(command: &RemoteCommand) -> Action {
    match command {
        RemoteCommand::Reserve { sku, quantity, .. } => Action::Reserve {
            sku: sku.clone(),
            quantity: *quantity,
        },
        RemoteCommand::Release { sku, .. } => Action::Release { sku: sku.clone() },
        RemoteCommand::RequestPayment { amount_cents, .. } => Action::RequestPayment {
            amount_cents: *amount_cents,
        },
        RemoteCommand::TimeOutPayment { .. } => Action::TimeOutPayment,
        RemoteCommand::Refund { .. } => Action::Refund,
    }
}

async fn call(
    handler: &CommandHandler<Order, impl EventStore>,
    id: &str,
    command: &OrderCommand,
    options: CommandOptions,
) -> Result<(), DispatchError> {
    match handler.handle_with(id, command, options).await {
        Ok(_) => Ok(()),
        Err(CommandError::Rejected(e)) => Err(DispatchError::rejected(e)),
        Err(e @ CommandError::Conflict { .. }) => Err(DispatchError::transient(e)),
        Err(CommandError::Store(e @ StoreError::Unavailable { .. })) => {
            Err(DispatchError::transient(e))
        }
        // Corrupt data or a bug: retrying may still help after a fix and restart.
        Err(e) => Err(DispatchError::transient(e)),
    }
}

impl<S: EventStore> ShopDispatcher<S> {
    /// Publishes `command` with `options`' key, correlation, causation and headers; with
    /// [`Self::handled`], waits until its owner handled it.
    async fn send(
        &self,
        command: &RemoteCommand,
        options: CommandOptions,
    ) -> Result<(), DispatchError> {
        let key = options.idempotency_key.as_deref().unwrap_or_default();
        let metadata = options.metadata;
        let mut message = command
            .message(key, metadata.correlation_id)
            .map_err(DispatchError::rejected)?;
        message.causation_id = metadata.causation_id;
        // The message's own trace context (this dispatch's span) wins over the
        // reacted-to event's, which the metadata carries.
        let traced = std::mem::replace(&mut message.headers, metadata.headers);
        message.headers.extend(traced);
        let wait = self.handled.as_ref().map(|h| h.expect(message.id));
        self.bus
            .publish(std::slice::from_ref(&message))
            .await
            .map_err(DispatchError::transient)?;
        if let Some(wait) = wait {
            if !wait.until_handled(LANDING).await {
                let target = command.target();
                let error = format!("{} not handled by {target} in {LANDING:?}", message.name);
                return Err(DispatchError::transient(error));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl<S: EventStore> Dispatcher<SagaCommand> for ShopDispatcher<S> {
    async fn dispatch(&self, issued: &Issued<SagaCommand>) -> Result<(), DispatchError> {
        let mut options = issued.options();
        let c = &issued.command;
        if c.correlation_id.is_some() {
            options.metadata.correlation_id = c.correlation_id;
        }
        let span = tracing::info_span!(
            "saga_command",
            order_id = %c.order_id,
            action = ?c.action,
            correlation_id = %show(options.metadata.correlation_id),
            causation_id = %show(options.metadata.causation_id),
        );
        let order = c.order_id.to_string();
        let result = async move {
            match route(c.order_id, &c.action) {
                Route::Remote(command) => self.send(&command, options).await,
                Route::Local(command) => call(&self.orders, &order, &command, options).await,
            }
        }
        .instrument(span.clone())
        .await;
        span.in_scope(|| match &result {
            Ok(()) => tracing::debug!("saga command dispatched"),
            Err(e) => tracing::info!(error = %e, "saga command not dispatched"),
        });
        result
    }
}

/// A UUID for a log field, or `-`.
pub(crate) fn show(id: Option<uuid::Uuid>) -> String {
    id.map_or_else(|| "-".to_owned(), |u| u.to_string())
}
