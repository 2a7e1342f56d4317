//! The shop split into services: which bounded context a process runs, and the broker
//! between them.
//!
//! `shop serve` with no `--service` runs all three contexts in one process (the
//! embedded default). `shop serve --service ordering|inventory|payment --database-url
//! URL --bus URL` runs one of them: its own store, read models, relays and inboxes in
//! its own database, and the bus a broker (`nats://…` or `amqp://…`). What each owns:
//!
//! | service | its log and read models | publishes | consumes |
//! |---|---|---|---|
//! | ordering | orders, the fulfilment saga, a catalogue copy | saga commands (`inventory.commands.*`, `payment.commands.*`) | inventory's and payment's outcomes; inventory's catalogue |
//! | inventory | products, stock, reservations | `inventory.product.*` outcomes, `inventory.catalogue.ProductAdded` | `inventory.commands.*` |
//! | payment | payments (and the payment worker's checkpoint) | `payment.payment.*` outcomes | `payment.commands.*` |
//!
//! Ordering prices an order from its **catalogue**: a copy of inventory's
//! `ProductAdded` events, kept in its own database by an inbox (see
//! [`crate::catalogue`]), so pricing needs no call to inventory. A product is priceable
//! in ordering as soon as its event crossed the broker (milliseconds); an order naming it
//! before then is refused as an unknown product (422), as it would be a moment before the
//! product was added.

use std::sync::Arc;

use tessera_core::BoxError;
use tessera_projections::integration::Bus;

/// One service of the split shop: a bounded context with its own process and database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Service {
    /// Orders and the fulfilment saga.
    Ordering,
    /// Products, stock and reservations.
    Inventory,
    /// Payments.
    Payment,
}

impl Service {
    /// All three, in the order they are reported.
    pub const ALL: [Service; 3] = [Service::Ordering, Service::Inventory, Service::Payment];

    /// Lower-case name, also its context's: `ordering`, `inventory`, `payment`.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Ordering => "ordering",
            Service::Inventory => "inventory",
            Service::Payment => "payment",
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a process running `service` (`None`: all three) runs `context`.
pub fn runs(service: Option<Service>, context: &str) -> bool {
    service.is_none_or(|s| s.as_str() == context)
}

/// A connection to the broker at `url` (`nats://…` for NATS JetStream, `amqp://…` for
/// RabbitMQ), its streams, subjects or exchanges prefixed with `prefix` (empty in
/// production; tests isolate themselves with one). An unreachable broker is an error
/// naming the URL without its credentials.
pub async fn connect_bus(url: &str, prefix: &str) -> Result<Arc<dyn Bus>, BoxError> {
    if url.starts_with("nats://") || url.starts_with("tls://") {
        let mut builder = tessera_nats::NatsBus::builder(url);
        if !prefix.is_empty() {
            builder = builder
                .stream_prefix(prefix.to_uppercase())
                .subject_prefix(prefix);
        }
        Ok(Arc::new(builder.connect().await?))
    } else if url.starts_with("amqp://") || url.starts_with("amqps://") {
        let mut config = tessera_rabbitmq::RabbitConfig::default();
        if !prefix.is_empty() {
            config = config.with_prefix(format!("{prefix}."));
        }
        Ok(Arc::new(
            tessera_rabbitmq::RabbitBus::connect_with(url, config).await?,
        ))
    } else {
        Err(
            "--bus: give nats://host:port (NATS JetStream) or amqp://user:pass@host:port/vhost \
             (RabbitMQ)"
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_runs_its_own_context_only_and_all_in_one_runs_all() {
        for context in ["ordering", "inventory", "payment"] {
            assert!(runs(None, context));
        }
        assert!(runs(Some(Service::Payment), "payment"));
        assert!(!runs(Some(Service::Payment), "ordering"));
        assert!(!runs(Some(Service::Ordering), "inventory"));
    }

    #[tokio::test]
    async fn a_bus_url_of_another_scheme_is_refused_with_what_to_give() {
        let error = connect_bus("http://127.0.0.1:4222", "").await.err();
        let error = error.expect("refused").to_string();
        assert!(
            error.contains("nats://") && error.contains("amqp://"),
            "{error}"
        );
    }
}
