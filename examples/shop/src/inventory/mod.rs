//! The inventory context: products with stock, reservations, and their read models.

mod product;
mod view;

pub use product::{Hold, Product, ProductCommand, ProductError, ProductEvent};
pub use view::{HoldDoc, ProductDoc, ProductsView, ReservationDoc, ReservationsView};

/// Whether `sku` is a valid product code: 1 to 64 ASCII letters, digits, `-`, `_`, `.`,
/// starting with a letter or digit (so `.` and `..`, which clients normalise out of
/// URL paths, are not product codes).
pub fn valid_sku(sku: &str) -> bool {
    sku.len() <= 64
        && sku.starts_with(|c: char| c.is_ascii_alphanumeric())
        && sku
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests;
