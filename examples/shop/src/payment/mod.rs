//! The payment context: payments, the gateway worker, and the payments read model.

mod aggregate;
mod processor;
mod view;

pub use aggregate::{
    DeclineReason, Payment, PaymentCommand, PaymentError, PaymentEvent, PaymentStatus,
};
pub use processor::{worker_filter, PaymentProcessor};
pub use view::{PaymentDoc, PaymentsView};

#[cfg(test)]
mod tests;
