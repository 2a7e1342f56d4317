//! The fulfilment saga's steps: reserve stock line by line, charge, confirm; compensate
//! in reverse on a refusal, a decline, a timeout or a cancellation.

use std::time::{Duration, SystemTime};

use tessera_core::{
    Aggregate, BoxError, CommandError, CommandHandler, CommandOptions, EventStore, Metadata,
    RecordedEvent,
};
use uuid::Uuid;

use super::Deadlines;
use crate::inventory::{Product, ProductCommand};
use crate::ordering::{Line, Order, OrderCommand, OrderStatus, RejectReason};
use crate::payment::{DeclineReason, Payment, PaymentCommand};

/// The saga: the three contexts' command handlers and the deadline store.
pub struct Fulfilment<S> {
    /// Orders.
    pub orders: CommandHandler<Order, S>,
    /// Products.
    pub products: CommandHandler<Product, S>,
    /// Payments.
    pub payments: CommandHandler<Payment, S>,
    /// Payment deadlines.
    pub deadlines: Deadlines,
    /// How long a payment may go unanswered.
    pub payment_timeout: Duration,
}

/// Sends one command for the saga, keyed by the triggering event and the step, carrying
/// the event's correlation id with the event as causation. A refusal is logged, not
/// retried: the aggregate's answer will not change.
async fn send<A: Aggregate, S: EventStore>(
    handler: &CommandHandler<A, S>,
    id: &str,
    command: &A::Command,
    cause: &RecordedEvent,
    step: &str,
) -> Result<bool, BoxError> {
    let metadata = Metadata {
        correlation_id: cause.metadata.correlation_id,
        causation_id: Some(cause.id.0),
        ..Metadata::default()
    };
    let key = format!("fulfilment:{}:{step}", cause.id);
    match handler
        .handle_with(
            id,
            command,
            CommandOptions::idempotent(key).with_metadata(metadata),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(CommandError::Rejected(e)) => {
            tracing::warn!(stream = %format!("{}-{id}", A::CATEGORY), step, error = %e, "saga command refused");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

impl<S: EventStore> Fulfilment<S> {
    async fn order(&self, order_id: Uuid) -> Result<Order, BoxError> {
        Ok(self.orders.load(&order_id.to_string()).await?.state)
    }

    async fn reserve(
        &self,
        order_id: Uuid,
        line: &Line,
        cause: &RecordedEvent,
    ) -> Result<(), BoxError> {
        let command = ProductCommand::Reserve {
            order_id,
            quantity: line.quantity,
        };
        send(
            &self.products,
            &line.sku,
            &command,
            cause,
            &format!("reserve:{}", line.sku),
        )
        .await?;
        Ok(())
    }

    /// Releases the holds of `lines`, last first.
    async fn release(
        &self,
        order_id: Uuid,
        lines: &[Line],
        cause: &RecordedEvent,
    ) -> Result<(), BoxError> {
        for line in lines.iter().rev() {
            let command = ProductCommand::Release { order_id };
            send(
                &self.products,
                &line.sku,
                &command,
                cause,
                &format!("release:{}", line.sku),
            )
            .await?;
        }
        Ok(())
    }

    async fn reject(
        &self,
        order_id: Uuid,
        reason: RejectReason,
        cause: &RecordedEvent,
    ) -> Result<(), BoxError> {
        send(
            &self.orders,
            &order_id.to_string(),
            &OrderCommand::Reject(reason),
            cause,
            "reject",
        )
        .await?;
        Ok(())
    }

    /// Order placed: reserve the first line.
    pub async fn on_placed(
        &self,
        order_id: Uuid,
        lines: &[Line],
        cause: &RecordedEvent,
    ) -> Result<(), BoxError> {
        match lines.first() {
            Some(line) => self.reserve(order_id, line, cause).await,
            None => Ok(()),
        }
    }

    /// A line reserved: reserve the next, or ask for payment after the last.
    pub async fn on_reserved(
        &self,
        order_id: Uuid,
        sku: &str,
        cause: &RecordedEvent,
    ) -> Result<(), BoxError> {
        let order = self.order(order_id).await?;
        let Some(index) = order.lines.iter().position(|l| l.sku == sku) else {
            return Ok(()); // not one of this order's lines
        };
        if order.status != Some(OrderStatus::Pending) {
            // The order moved on without this hold (it should not happen): give it back.
            return self
                .release(order_id, &order.lines[index..=index], cause)
                .await;
        }
        match order.lines.get(index + 1) {
            Some(next) => self.reserve(order_id, next, cause).await,
            None => {
                let command = PaymentCommand::Request {
                    order_id,
                    amount_cents: order.total_cents,
                };
                send(
                    &self.payments,
                    &order_id.to_string(),
                    &command,
                    cause,
                    "pay",
                )
                .await?;
                Ok(())
            }
        }
    }

    /// A line refused for lack of stock: release the lines before it, reject the order.
    pub async fn on_refused(
        &self,
        order_id: Uuid,
        sku: &str,
        cause: &RecordedEvent,
    ) -> Result<(), BoxError> {
        let order = self.order(order_id).await?;
        let index = order
            .lines
            .iter()
            .position(|l| l.sku == sku)
            .unwrap_or(order.lines.len());
        self.release(order_id, &order.lines[..index], cause).await?;
        self.reject(order_id, RejectReason::OutOfStock, cause).await
    }

    /// Payment requested: start its deadline.
    pub async fn on_payment_requested(
        &self,
        order_id: Uuid,
        cause: &RecordedEvent,
    ) -> Result<(), BoxError> {
        let due = cause.recorded_at.max(SystemTime::UNIX_EPOCH) + self.payment_timeout;
        self.deadlines.schedule(order_id, due).await
    }

    /// Payment captured: confirm (or refund, if the order can no longer be confirmed).
    pub async fn on_captured(&self, order_id: Uuid, cause: &RecordedEvent) -> Result<(), BoxError> {
        self.deadlines.cancel(order_id).await?;
        let id = order_id.to_string();
        if !send(&self.orders, &id, &OrderCommand::Confirm, cause, "confirm").await? {
            send(
                &self.payments,
                &id,
                &PaymentCommand::Refund,
                cause,
                "refund",
            )
            .await?;
        }
        Ok(())
    }

    /// Payment declined or timed out: release every line, reject the order.
    pub async fn on_declined(
        &self,
        order_id: Uuid,
        reason: DeclineReason,
        cause: &RecordedEvent,
    ) -> Result<(), BoxError> {
        self.deadlines.cancel(order_id).await?;
        let order = self.order(order_id).await?;
        self.release(order_id, &order.lines, cause).await?;
        let reason = match reason {
            DeclineReason::Declined => RejectReason::PaymentDeclined,
            DeclineReason::Timeout => RejectReason::PaymentTimeout,
        };
        self.reject(order_id, reason, cause).await
    }

    /// A confirmed order cancelled: refund, then release every line.
    pub async fn on_cancelled(
        &self,
        order_id: Uuid,
        cause: &RecordedEvent,
    ) -> Result<(), BoxError> {
        let order = self.order(order_id).await?;
        send(
            &self.payments,
            &order_id.to_string(),
            &PaymentCommand::Refund,
            cause,
            "refund",
        )
        .await?;
        self.release(order_id, &order.lines, cause).await
    }

    /// Fires the deadlines due by `now`: each unanswered payment is declined as timed out
    /// (once: the decline is idempotent, and an answered payment refuses it).
    pub async fn fire_due(&self, now: SystemTime) -> Result<usize, BoxError> {
        let due = self.deadlines.due(now, 100).await?;
        for order_id in &due {
            let options = CommandOptions::idempotent("deadline");
            let command = PaymentCommand::Decline(DeclineReason::Timeout);
            match self
                .payments
                .handle_with(&order_id.to_string(), &command, options)
                .await
            {
                Ok(_) | Err(CommandError::Rejected(_)) => {}
                Err(e) => return Err(e.into()),
            }
            tracing::info!(%order_id, "payment deadline fired");
            self.deadlines.cancel(*order_id).await?;
        }
        Ok(due.len())
    }
}
