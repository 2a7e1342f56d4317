//! The bus conformance suite against NATS JetStream on the shared server: each case on
//! streams and subjects of its own, removed when it ends.

use std::sync::Arc;

use tessera_bus_conformance::BusFactory;
use tessera_nats::async_nats::HeaderMap;
use tessera_nats::{NatsBuilder, NatsBus};
use tessera_projections::integration::Bus;

use crate::support::{
    connect, delete_streams, delete_streams_blocking, isolated_builder, nats_url,
};

/// A case's buses: all on the shared server under one stream and subject prefix.
struct Nats {
    builder: NatsBuilder,
    prefix: String,
    url: String,
}

impl Nats {
    fn new() -> Self {
        let (builder, prefix) = isolated_builder();
        Self {
            builder,
            prefix,
            url: nats_url(),
        }
    }

    async fn bus(&self) -> NatsBus {
        connect(self.builder.clone(), &self.url).await
    }
}

impl BusFactory for Nats {
    async fn connect(&self) -> Arc<dyn Bus> {
        Arc::new(self.bus().await)
    }

    async fn publish_raw(
        &self,
        context: &str,
        subject: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) {
        let bus = self.bus().await;
        bus.ensure_context(context)
            .await
            .expect("the context's stream");
        let mut map = HeaderMap::new();
        for (name, value) in &headers {
            map.append(name.as_str(), value.as_str());
        }
        bus.jetstream()
            .publish_with_headers(bus.server_subject(subject), map, body.into())
            .await
            .expect("publish")
            .await
            .expect("stored");
    }

    async fn cleanup(&self, _contexts: Vec<String>) {
        delete_streams(&self.url, &self.prefix).await;
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        // Also after a failed case, which never reaches its cleanup.
        delete_streams_blocking(&self.url, &self.prefix);
    }
}

tessera_bus_conformance::bus_conformance_suite!(Nats::new());
