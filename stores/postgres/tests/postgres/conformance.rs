//! The shared store conformance suite, each case in a schema of its own.

use std::sync::Arc;

use tessera_conformance::StoreFactory;
use tessera_core::{
    AppendOutcome, EventAppender, EventFilter, EventId, EventReader, ExpectedVersion, NewEvent,
    Position, ReadAll, ReadStream, RecordedEvent, StoreError, StreamId, Subscription, Version,
};
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
}

impl EventAppender for SchemaStore {
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

impl EventReader for SchemaStore {
    async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.store.read_stream(stream, read).await
    }

    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        self.store.read_all(read).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        self.store.stream_version(stream).await
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.store.head().await
    }

    async fn find_event(
        &self,
        stream: &StreamId,
        id: EventId,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        self.store.find_event(stream, id).await
    }

    async fn count_events(
        &self,
        after: Position,
        up_to: Position,
        filter: &EventFilter,
    ) -> Result<Option<u64>, StoreError> {
        self.store.count_events(after, up_to, filter).await
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> Subscription {
        self.store.subscribe(after, filter)
    }
}

tessera_conformance::conformance_suite!(Postgres);
