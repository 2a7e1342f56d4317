//! The conformance suite, on every test run: against an in-process [`FakeServer`] per
//! test, or, when `EVENTSTOREDB_URL` is set, against that server (each test under its
//! own stream prefix). With `--features live-server` the variable is required.
//!
//! The store passes event ids through, so EventStoreDB's idempotency applies, and the
//! suite asserts EventStoreDB's behaviour where it differs from the strict rules
//! ([`Idempotency::EventStoreDb`]).

use tessera_conformance::{Idempotency, StoreFactory};
use tessera_eventstoredb::EventStoreDbStore;

use tessera_eventstoredb_fake::FakeServer;

pub struct Esdb;

impl StoreFactory for Esdb {
    type Store = EventStoreDbStore;

    async fn create(&self, test_name: &'static str) -> EventStoreDbStore {
        let prefix = format!(
            "t{}_{test_name}_",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let url = match std::env::var("EVENTSTOREDB_URL") {
            Ok(url) => url,
            Err(_) if cfg!(feature = "live-server") => panic!(
                "EVENTSTOREDB_URL must name a running EventStoreDB (e.g. esdb://127.0.0.1:2113?tls=false)"
            ),
            Err(_) => {
                let fake = FakeServer::start().await;
                // Another application's event, outside the prefix and not JSON: the
                // store must neither see it nor fail on it.
                fake.write_raw("foreign-1", "Foreign", b"\x00\x01binary");
                fake.url()
            }
        };
        EventStoreDbStore::connect_with_prefix(&url, &prefix).expect("connect")
    }

    fn idempotency(&self) -> Idempotency {
        Idempotency::EventStoreDb
    }
}

tessera_conformance::conformance_suite!(Esdb);
