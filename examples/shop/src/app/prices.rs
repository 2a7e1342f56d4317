//! The unit prices of products, remembered once seen: a product's price is set when it
//! is added and no command changes it (products are never removed), so a price read
//! once stays true. Pricing an order then reads no product state, not even the
//! handler's cache: under a flash sale the product's cached state is held by its
//! coalesced reservation batch most of the time, and a pricing read that found it held
//! loaded the product from its snapshot and events (0.22 loads per order, the largest
//! single cost of the sale's hot path in BENCHMARKS.md, "Session 16").

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Most prices remembered; past it the book starts afresh (prices are read again).
const CAPACITY: usize = 100_000;

/// Prices by sku.
///
/// ```
/// use shop::app::Prices;
/// let prices = Prices::default();
/// assert_eq!(prices.get("lamp"), None);
/// prices.remember("lamp", 1_999);
/// assert_eq!(prices.get("lamp"), Some(1_999));
/// ```
#[derive(Debug, Default)]
pub struct Prices {
    by_sku: Mutex<HashMap<String, i64>>,
}

impl Prices {
    /// The price of `sku`, if seen.
    pub fn get(&self, sku: &str) -> Option<i64> {
        self.lock().get(sku).copied()
    }

    /// Remembers the price of an existing product.
    pub fn remember(&self, sku: &str, price_cents: i64) {
        let mut by_sku = self.lock();
        if by_sku.len() >= CAPACITY && !by_sku.contains_key(sku) {
            by_sku.clear();
        }
        by_sku.insert(sku.to_owned(), price_cents);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.by_sku.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
