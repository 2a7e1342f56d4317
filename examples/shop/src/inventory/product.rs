//! The product aggregate: stock on hand, reserved per order, never negative.
//!
//! Invariant: `reserved + available = on_hand` and `available >= 0`. A reservation is
//! made once per order: asking again for the same order changes nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tessera_core::{Aggregate, DomainEvent};
use uuid::Uuid;

/// What a product can be asked to do. Serialized, it is the fingerprint of a keyed
/// request (a retry sends the same command).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ProductCommand {
    /// Add a new product to the catalogue.
    Add {
        /// The product code (also in the stream id).
        sku: String,
        /// Display name.
        name: String,
        /// Unit price.
        price_cents: i64,
        /// Stock on hand to start with.
        initial_stock: i64,
    },
    /// Add stock.
    Restock {
        /// How many (at least 1).
        quantity: i64,
    },
    /// Hold stock for an order.
    Reserve {
        /// The order.
        order_id: Uuid,
        /// How many.
        quantity: i64,
    },
    /// Give back what an order holds.
    Release {
        /// The order.
        order_id: Uuid,
    },
}

/// What happens to a product. Serde names are the stored event types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductEvent {
    /// A product was added.
    #[serde(rename = "ProductAdded")]
    Added {
        /// The product code.
        sku: String,
        /// Display name.
        name: String,
        /// Unit price.
        price_cents: i64,
        /// Stock on hand to start with.
        initial_stock: i64,
    },
    /// Stock was added.
    #[serde(rename = "ProductRestocked")]
    Restocked {
        /// How many.
        quantity: i64,
    },
    /// Stock is held for an order.
    #[serde(rename = "StockReserved")]
    Reserved {
        /// The product.
        sku: String,
        /// The order.
        order_id: Uuid,
        /// How many.
        quantity: i64,
    },
    /// An order's hold was given back.
    #[serde(rename = "ReservationReleased")]
    Released {
        /// The product.
        sku: String,
        /// The order.
        order_id: Uuid,
        /// How many.
        quantity: i64,
    },
    /// An order asked for more than was available.
    #[serde(rename = "ReservationRejected")]
    Rejected {
        /// The product.
        sku: String,
        /// The order.
        order_id: Uuid,
        /// How many it asked for.
        requested: i64,
        /// How many were available.
        available: i64,
    },
}

impl DomainEvent for ProductEvent {}

/// Why a product refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    /// `Add` on a product that exists.
    #[error("product already exists")]
    AlreadyExists,
    /// Any command but `Add` on a product that does not exist.
    #[error("product not found")]
    NotFound,
    /// A quantity below 1 (or below 0 for initial stock).
    #[error("{field} must be {rule}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// Stock would overflow.
    #[error("stock would overflow")]
    Overflow,
}

/// An order's hold on this product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hold {
    /// Holding this many.
    Held(i64),
    /// Given back.
    Released,
    /// Refused for lack of stock.
    Rejected,
}

/// A product's state.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Product {
    /// Whether it was added.
    pub exists: bool,
    /// The product code.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Unit price.
    pub price_cents: i64,
    /// Stock owned.
    pub on_hand: i64,
    /// Stock held for orders.
    pub reserved: i64,
    /// Each order's hold.
    pub holds: BTreeMap<Uuid, Hold>,
}

impl Product {
    /// Stock free to reserve.
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

impl Aggregate for Product {
    const CATEGORY: &'static str = "product";
    type Command = ProductCommand;
    type Event = ProductEvent;
    type Error = ProductError;
    type Services = ();

    fn apply(&mut self, event: &ProductEvent) {
        match event {
            ProductEvent::Added {
                sku,
                name,
                price_cents,
                initial_stock,
            } => {
                self.exists = true;
                self.sku.clone_from(sku);
                self.name.clone_from(name);
                self.price_cents = *price_cents;
                self.on_hand = *initial_stock;
            }
            ProductEvent::Restocked { quantity } => self.on_hand += quantity,
            ProductEvent::Reserved {
                order_id, quantity, ..
            } => {
                self.reserved += quantity;
                self.holds.insert(*order_id, Hold::Held(*quantity));
            }
            ProductEvent::Released {
                order_id, quantity, ..
            } => {
                self.reserved -= quantity;
                self.holds.insert(*order_id, Hold::Released);
            }
            ProductEvent::Rejected { order_id, .. } => {
                self.holds.insert(*order_id, Hold::Rejected);
            }
        }
    }

    fn decide(&self, command: &ProductCommand, (): &()) -> Result<Vec<ProductEvent>, ProductError> {
        let invalid = |field, rule| Err(ProductError::Invalid { field, rule });
        if let ProductCommand::Add {
            sku,
            name,
            price_cents,
            initial_stock,
        } = command
        {
            // The request's own faults first: they are the same whether it exists.
            if *price_cents < 0 {
                return invalid("price_cents", "at least 0");
            }
            if *initial_stock < 0 {
                return invalid("initial_stock", "at least 0");
            }
            if self.exists {
                return Err(ProductError::AlreadyExists);
            }
            return Ok(vec![ProductEvent::Added {
                sku: sku.clone(),
                name: name.clone(),
                price_cents: *price_cents,
                initial_stock: *initial_stock,
            }]);
        }
        if !self.exists {
            return Err(ProductError::NotFound);
        }
        match command {
            ProductCommand::Add { .. } => Err(ProductError::AlreadyExists),
            ProductCommand::Restock { quantity } => {
                if *quantity < 1 {
                    return invalid("quantity", "at least 1");
                }
                self.on_hand
                    .checked_add(*quantity)
                    .ok_or(ProductError::Overflow)?;
                Ok(vec![ProductEvent::Restocked {
                    quantity: *quantity,
                }])
            }
            ProductCommand::Reserve { order_id, quantity } => {
                if *quantity < 1 {
                    return invalid("quantity", "at least 1");
                }
                if self.holds.contains_key(order_id) {
                    return Ok(vec![]); // decided once per order
                }
                let available = self.available();
                if *quantity > available {
                    return Ok(vec![ProductEvent::Rejected {
                        sku: self.sku.clone(),
                        order_id: *order_id,
                        requested: *quantity,
                        available,
                    }]);
                }
                Ok(vec![ProductEvent::Reserved {
                    sku: self.sku.clone(),
                    order_id: *order_id,
                    quantity: *quantity,
                }])
            }
            ProductCommand::Release { order_id } => match self.holds.get(order_id) {
                Some(Hold::Held(quantity)) => Ok(vec![ProductEvent::Released {
                    sku: self.sku.clone(),
                    order_id: *order_id,
                    quantity: *quantity,
                }]),
                _ => Ok(vec![]),
            },
        }
    }
}
