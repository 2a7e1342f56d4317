//! The bus conformance suite against RabbitMQ: each case in a virtual host of its own.

use std::sync::Arc;

use tessera_bus_conformance::BusFactory;
use tessera_projections::integration::Bus;

use crate::support::Broker;

struct Rabbit(Broker);

impl BusFactory for Rabbit {
    async fn connect(&self) -> Arc<dyn Bus> {
        Arc::new(self.0.bus().await)
    }

    async fn publish_raw(
        &self,
        context: &str,
        subject: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) {
        self.0
            .bus()
            .await
            .publish_raw(context, subject, headers, body.into())
            .await
            .expect("publish a raw message");
    }
}

tessera_bus_conformance::bus_conformance_suite!(Rabbit(Broker::open("conformance")));
