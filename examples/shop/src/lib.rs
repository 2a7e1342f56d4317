//! The library half of the `shop` binary: the three bounded contexts (ordering,
//! inventory, payment), the fulfilment saga, the HTTP API and the CLI, so tests can
//! start a shop in process. The binary's documentation (`src/main.rs`) says how to run
//! it; this is the same shop driven from code:
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use shop::app::{memory_parts, App};
//! use shop::fulfilment::Fulfilment;
//! use shop::inventory::ProductCommand;
//! use shop::ordering::{Line, OrderCommand, OrderStatus};
//! use shop::settings::Settings;
//!
//! let settings = Settings::default();
//! let saga = Fulfilment { payment_timeout: settings.payment_timeout };
//! let app = App::start(settings, memory_parts("", saga));
//!
//! let tea = ProductCommand::Add { sku: "tea".into(), name: "Tea".into(), price_cents: 450, initial_stock: 3 };
//! app.products.handle("tea", &tea).await.unwrap();
//! let order_id = uuid::Uuid::new_v4();
//! let lines = vec![Line { sku: "tea".into(), quantity: 2, unit_price_cents: 450 }];
//! let place = OrderCommand::Place {
//!     order_id, customer_id: "c1".into(), lines, correlation_id: None,
//! };
//! app.orders.handle(&order_id.to_string(), &place).await.unwrap();
//!
//! // The saga reserves the stock, charges the payment and confirms; the read model follows.
//! let confirmed = async {
//!     loop {
//!         match app.views.orders.get(&order_id.to_string()).await.unwrap() {
//!             Some(order) if order.status == OrderStatus::Confirmed => break order,
//!             _ => tokio::time::sleep(Duration::from_millis(10)).await,
//!         }
//!     }
//! };
//! let order = tokio::time::timeout(Duration::from_secs(10), confirmed).await.unwrap();
//! assert_eq!(order.total_cents, 900);
//! app.shutdown().await;
//! # });
//! ```

pub mod api;
pub mod api_gateway;
pub mod app;
pub mod catalogue;
pub mod cli;
pub mod commands;
pub mod fulfilment;
pub mod gateway;
pub mod inventory;
pub mod jwt;
pub mod metrics;
pub mod ordering;
pub mod payment;
pub mod secret;
pub mod server;
pub mod service;
pub mod settings;
pub mod traces;
