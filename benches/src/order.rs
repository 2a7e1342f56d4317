//! The benchmark aggregate: a small order that takes one line per command.

use serde::{Deserialize, Serialize};
use tessera_core::{Aggregate, DomainEvent};

/// An order with a running total.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct BenchOrder {
    /// Lines added so far.
    pub lines: u64,
    /// Sum of line totals.
    pub total_cents: u64,
}

/// Adds one line.
#[derive(Debug, Clone)]
pub struct AddLine {
    /// Product.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// Price of one.
    pub unit_price_cents: u64,
}

impl AddLine {
    /// A line whose event serializes to about 150 bytes of JSON.
    pub fn sample(n: u64) -> Self {
        Self {
            sku: format!("SKU-{:08}", n % 100_000_000),
            quantity: 1 + u32::try_from(n % 7).unwrap_or(0),
            unit_price_cents: 1999,
        }
    }
}

/// The order's events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BenchOrderEvent {
    /// A line was added.
    #[serde(rename = "LineAdded")]
    LineAdded {
        /// Product.
        sku: String,
        /// How many.
        quantity: u32,
        /// Price of one.
        unit_price_cents: u64,
        /// Running total after this line.
        total_cents: u64,
        /// Free text, to bring the event to a realistic size.
        note: String,
    },
}

impl DomainEvent for BenchOrderEvent {}

/// Why a line is refused.
#[derive(Debug, thiserror::Error)]
pub enum BenchOrderError {
    /// A line of zero items.
    #[error("quantity must be positive")]
    ZeroQuantity,
}

impl Aggregate for BenchOrder {
    const CATEGORY: &'static str = "benchorder";
    type Command = AddLine;
    type Event = BenchOrderEvent;
    type Error = BenchOrderError;
    type Services = ();

    fn apply(&mut self, event: &BenchOrderEvent) {
        let BenchOrderEvent::LineAdded { total_cents, .. } = event;
        self.lines += 1;
        self.total_cents = *total_cents;
    }

    fn decide(&self, cmd: &AddLine, (): &()) -> Result<Vec<BenchOrderEvent>, BenchOrderError> {
        if cmd.quantity == 0 {
            return Err(BenchOrderError::ZeroQuantity);
        }
        let line = u64::from(cmd.quantity) * cmd.unit_price_cents;
        Ok(vec![BenchOrderEvent::LineAdded {
            sku: cmd.sku.clone(),
            quantity: cmd.quantity,
            unit_price_cents: cmd.unit_price_cents,
            total_cents: self.total_cents + line,
            note: "gift wrap, leave at the front door".to_owned(),
        }])
    }
}

/// One encoded sample event, as stored (for raw baselines and batch appends).
pub fn sample_event(n: u64) -> tessera_core::NewEvent {
    let order = BenchOrder::default();
    let mut events = order.decide(&AddLine::sample(n), &()).unwrap_or_default();
    let event = events.pop().unwrap_or(BenchOrderEvent::LineAdded {
        sku: String::new(),
        quantity: 1,
        unit_price_cents: 1,
        total_cents: 1,
        note: String::new(),
    });
    let (ty, data) = event.encode().unwrap_or((
        "LineAdded",
        tessera_core::EventData::from_trusted_json("{}"),
    ));
    tessera_core::NewEvent::new(ty, data)
}
