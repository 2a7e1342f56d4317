//! The conformance suite against the embedded in-memory store.

use std::time::Duration;

use tessera_conformance::StoreFactory;
use tessera_core::{MemoryStore, SubscriptionConfig};

/// Fresh in-memory stores; small subscription batches so catch-up takes several reads.
struct Memory;

impl StoreFactory for Memory {
    type Store = MemoryStore;

    async fn create(&self, _test_name: &'static str) -> MemoryStore {
        MemoryStore::with_config(SubscriptionConfig {
            batch_size: 7,
            buffer: 16,
            poll_interval: Duration::from_millis(100),
            ..SubscriptionConfig::default()
        })
    }
}

tessera_conformance::conformance_suite!(Memory);
