//! The shared store conformance suite, each case in a schema of its own.

use std::sync::Arc;

use tessera_conformance::{Browsing, StoreFactory};
use tessera_core::testkit::Forward;
use tessera_core::{AppendOutcome, EventAppender, ExpectedVersion, NewEvent, StoreError, StreamId};
use tessera_postgres::PostgresStore;

use crate::common::{wait_visible, TestDb};

/// A store that drops its schema once the case has let go of it.
#[derive(Clone)]
pub struct SchemaStore {
    store: PostgresStore,
    _db: Arc<TestDb>,
}

pub struct Postgres;

impl StoreFactory for Postgres {
    type Store = SchemaStore;

    async fn create(&self, test_name: &'static str) -> SchemaStore {
        let db = TestDb::new(test_name).await;
        let store = db.store().await;
        SchemaStore {
            store,
            _db: Arc::new(db),
        }
    }

    fn browsing(&self) -> Browsing {
        Browsing::Answers
    }
}

impl Forward for SchemaStore {
    type Inner = PostgresStore;

    fn inner(&self) -> &PostgresStore {
        &self.store
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let outcome = self.store.append(stream, expected, events).await?;
        // Some cases read `head()` right after appending (the idempotency fixture does
        // not wait for visibility). Any transaction running anywhere on the server
        // briefly hides a fresh commit from readers, by design, so wait until it shows.
        wait_visible(&self.store, outcome.position).await;
        Ok(outcome)
    }
}

tessera_conformance::conformance_suite!(Postgres);
