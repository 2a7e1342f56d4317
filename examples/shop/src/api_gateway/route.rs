//! Which service owns a `/v1/…` path, and the route template it is counted under.

use super::Service;

/// A route of the shop's API, read from a request's path (percent-encoded as sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/v1/products`
    Products,
    /// `/v1/products/{sku}`
    Product,
    /// `/v1/products/{sku}/restock`
    Restock,
    /// `/v1/orders`
    Orders,
    /// `/v1/orders/{order_id}`
    Order(&'a str),
    /// `/v1/orders/{order_id}/cancel`
    Cancel(&'a str),
    /// `/v1/payments/{order_id}`
    Payment(&'a str),
    /// `/v1/reservations/{order_id}`
    Reservation(&'a str),
    /// `/v1/admin/projections`
    AdminStatus,
    /// `/v1/admin/projections/{name}/rebuild`
    AdminRebuild(&'a str),
    /// Any other path under `/v1/` (sent to ordering, which answers 404 or 405 as the
    /// all-in-one API does).
    Other,
}

impl<'a> Route<'a> {
    /// The route of `path`, which starts with `/v1/`.
    pub fn of(path: &'a str) -> Self {
        let rest = path.strip_prefix("/v1/").unwrap_or_default();
        let segments: Vec<&str> = rest.split('/').collect();
        match segments.as_slice() {
            ["products"] => Self::Products,
            ["products", sku] if !sku.is_empty() => Self::Product,
            ["products", sku, "restock"] if !sku.is_empty() => Self::Restock,
            ["orders"] => Self::Orders,
            ["orders", id] if !id.is_empty() => Self::Order(id),
            ["orders", id, "cancel"] if !id.is_empty() => Self::Cancel(id),
            ["payments", id] if !id.is_empty() => Self::Payment(id),
            ["reservations", id] if !id.is_empty() => Self::Reservation(id),
            ["admin", "projections"] => Self::AdminStatus,
            ["admin", "projections", name, "rebuild"] if !name.is_empty() => {
                Self::AdminRebuild(name)
            }
            _ => Self::Other,
        }
    }

    /// The service that answers it. An admin status is asked of all three; a rebuild
    /// goes to the context its projection's name starts with (`ordering_…`).
    pub fn owner(self) -> Service {
        match self {
            Self::Products | Self::Product | Self::Restock | Self::Reservation(_) => {
                Service::Inventory
            }
            Self::Payment(_) => Service::Payment,
            Self::AdminRebuild(name) => Service::ALL
                .into_iter()
                .find(|s| name.starts_with(&format!("{}_", s.as_str())))
                .unwrap_or(Service::Ordering),
            Self::Orders | Self::Order(_) | Self::Cancel(_) | Self::AdminStatus | Self::Other => {
                Service::Ordering
            }
        }
    }

    /// Whether it needs the admin token rather than a customer's JWT.
    pub fn is_admin(self) -> bool {
        matches!(self, Self::AdminStatus | Self::AdminRebuild(_))
    }

    /// The route template, for metrics: a closed set, whatever clients send.
    pub fn template(self) -> &'static str {
        match self {
            Self::Products => "/v1/products",
            Self::Product => "/v1/products/{sku}",
            Self::Restock => "/v1/products/{sku}/restock",
            Self::Orders => "/v1/orders",
            Self::Order(_) => "/v1/orders/{order_id}",
            Self::Cancel(_) => "/v1/orders/{order_id}/cancel",
            Self::Payment(_) => "/v1/payments/{order_id}",
            Self::Reservation(_) => "/v1/reservations/{order_id}",
            Self::AdminStatus => "/v1/admin/projections",
            Self::AdminRebuild(_) => "/v1/admin/projections/{name}/rebuild",
            Self::Other => "unmatched",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Route, Service};

    #[test]
    fn each_path_goes_to_its_owner() {
        for (path, route, owner) in [
            ("/v1/products", Route::Products, Service::Inventory),
            ("/v1/products/tea", Route::Product, Service::Inventory),
            (
                "/v1/products/tea/restock",
                Route::Restock,
                Service::Inventory,
            ),
            ("/v1/orders", Route::Orders, Service::Ordering),
            ("/v1/orders/o1", Route::Order("o1"), Service::Ordering),
            (
                "/v1/orders/o1/cancel",
                Route::Cancel("o1"),
                Service::Ordering,
            ),
            ("/v1/payments/o1", Route::Payment("o1"), Service::Payment),
            (
                "/v1/reservations/o1",
                Route::Reservation("o1"),
                Service::Inventory,
            ),
            (
                "/v1/admin/projections",
                Route::AdminStatus,
                Service::Ordering,
            ),
            (
                "/v1/admin/projections/payment_payments/rebuild",
                Route::AdminRebuild("payment_payments"),
                Service::Payment,
            ),
            (
                "/v1/admin/projections/inventory_products/rebuild",
                Route::AdminRebuild("inventory_products"),
                Service::Inventory,
            ),
            ("/v1/orders/", Route::Other, Service::Ordering),
            ("/v1/nothing", Route::Other, Service::Ordering),
        ] {
            assert_eq!(Route::of(path), route, "{path}");
            assert_eq!(route.owner(), owner, "{path}");
        }
        assert!(Route::of("/v1/admin/projections").is_admin());
        assert!(!Route::of("/v1/orders").is_admin());
    }
}
