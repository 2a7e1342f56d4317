//! How domain errors and command failures read as problems.

use tessera_core::CommandError;

use super::Problem;
use crate::inventory::ProductError;
use crate::ordering::OrderError;
use crate::payment::PaymentError;

/// How a domain error reads as a problem.
pub trait DomainProblem: std::error::Error + Send + Sync + 'static {
    /// The problem.
    fn problem(&self) -> Problem;
}

impl DomainProblem for OrderError {
    fn problem(&self) -> Problem {
        match self {
            OrderError::NotFound => Problem::not_found("no such order"),
            OrderError::AlreadyPlaced => {
                Problem::conflict("order-exists", "Order exists", self.to_string())
            }
            OrderError::Transition { .. } => Problem::conflict(
                "order-state",
                "Order is not in a state that allows this",
                self.to_string(),
            ),
            OrderError::NoLines => Problem::invalid("lines: an order needs at least one line"),
            OrderError::BadLine { index, reason } => {
                Problem::invalid(format!("lines[{index}]: {reason}"))
            }
            OrderError::TotalTooLarge => Problem::invalid("lines: the order total is too large"),
        }
    }
}

impl DomainProblem for ProductError {
    fn problem(&self) -> Problem {
        match self {
            ProductError::NotFound => Problem::not_found("no such product"),
            ProductError::AlreadyExists => Problem::conflict(
                "product-exists",
                "Product exists",
                "a product with this sku exists",
            ),
            ProductError::Invalid { field, rule } => {
                Problem::invalid(format!("{field}: must be {rule}"))
            }
            ProductError::Overflow => Problem::invalid("quantity: stock would overflow"),
        }
    }
}

impl DomainProblem for PaymentError {
    fn problem(&self) -> Problem {
        match self {
            PaymentError::NotFound => Problem::not_found("no such payment"),
            _ => Problem::conflict(
                "payment-state",
                "Payment is not in a state that allows this",
                self.to_string(),
            ),
        }
    }
}

impl<E: DomainProblem> From<CommandError<E>> for Problem {
    fn from(e: CommandError<E>) -> Self {
        match e {
            CommandError::Rejected(e) => e.problem(),
            CommandError::Conflict { .. } => Problem::conflict(
                "concurrency-conflict",
                "Concurrent changes",
                format!("{e}; retry the request"),
            ),
            CommandError::Store(s) => Problem::store(&s),
            CommandError::KeyReused { .. } => {
                Problem::key_reused("Idempotency-Key: this key was used for a different request")
            }
            other => Problem::internal(other),
        }
    }
}
