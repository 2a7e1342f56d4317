//! The ordering context: orders and their read model.

mod order;
mod view;

pub use order::{
    total_of, Line, Order, OrderCommand, OrderError, OrderEvent, OrderStatus, RejectReason,
};
pub use view::{OrderDoc, OrdersView};

#[cfg(test)]
mod tests;
