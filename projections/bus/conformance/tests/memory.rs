//! The bus conformance suite against the in-memory bus.

use std::sync::Arc;

use tessera_bus_conformance::BusFactory;
use tessera_projections::integration::{Bus, MemoryBus};

/// One shared in-memory broker: every case isolates itself by its own contexts.
struct Memory(MemoryBus);

impl BusFactory for Memory {
    async fn connect(&self) -> Arc<dyn Bus> {
        Arc::new(self.0.clone())
    }

    async fn publish_raw(
        &self,
        context: &str,
        subject: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) {
        self.0.publish_raw(context, subject, headers, body.into());
    }
}

tessera_bus_conformance::bus_conformance_suite!(Memory(MemoryBus::new()));
