//! The inventory context: products with stock, reservations, and their read models.

mod product;
mod view;

pub use product::{Hold, Product, ProductCommand, ProductError, ProductEvent};
pub use view::{HoldDoc, ProductDoc, ProductsView, ReservationDoc, ReservationsView};

/// Whether `sku` is a valid product code: 1 to 64 ASCII letters, digits, `-`, `_`, `.`.
pub fn valid_sku(sku: &str) -> bool {
    !sku.is_empty()
        && sku.len() <= 64
        && sku
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests;
