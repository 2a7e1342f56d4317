//! Sends the saga's commands to the three contexts' command handlers.

use async_trait::async_trait;
use tessera_core::process::Issued;
use tessera_core::{
    Aggregate, CommandError, CommandHandler, CommandOptions, EventStore, StoreError,
};
use tessera_projections::process::{DispatchError, Dispatcher};
use tracing::Instrument;

use super::{Action, SagaCommand};
use crate::inventory::{Product, ProductCommand};
use crate::ordering::{Order, OrderCommand};
use crate::payment::{DeclineReason, Payment, PaymentCommand};

/// The saga's [`Dispatcher`]: each action goes to its context, with the command's
/// deterministic idempotency key and the order's correlation id.
pub struct ShopDispatcher<S> {
    /// Orders.
    pub orders: CommandHandler<Order, S>,
    /// Products.
    pub products: CommandHandler<Product, S>,
    /// Payments.
    pub payments: CommandHandler<Payment, S>,
}

async fn send<A: Aggregate, S: EventStore>(
    handler: &CommandHandler<A, S>,
    id: &str,
    command: &A::Command,
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
        let order_id = c.order_id;
        let result = async move {
            match &c.action {
                Action::Reserve { sku, quantity } => {
                    send(
                        &self.products,
                        sku,
                        &ProductCommand::Reserve {
                            order_id,
                            quantity: *quantity,
                        },
                        options,
                    )
                    .await
                }
                Action::Release { sku } => {
                    send(
                        &self.products,
                        sku,
                        &ProductCommand::Release { order_id },
                        options,
                    )
                    .await
                }
                Action::RequestPayment { amount_cents } => {
                    let command = PaymentCommand::Request {
                        order_id,
                        amount_cents: *amount_cents,
                    };
                    send(&self.payments, &order, &command, options).await
                }
                Action::TimeOutPayment => {
                    send(
                        &self.payments,
                        &order,
                        &PaymentCommand::Decline(DeclineReason::Timeout),
                        options,
                    )
                    .await
                }
                Action::Refund => {
                    send(&self.payments, &order, &PaymentCommand::Refund, options).await
                }
                Action::Confirm => {
                    send(&self.orders, &order, &OrderCommand::Confirm, options).await
                }
                Action::Reject(reason) => {
                    send(
                        &self.orders,
                        &order,
                        &OrderCommand::Reject(*reason),
                        options,
                    )
                    .await
                }
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
